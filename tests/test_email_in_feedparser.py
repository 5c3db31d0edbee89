"""The email parser's structure parse (``email_in._structure``: the standard library's feed
parser with the payload-end search answered from the text's tail, :class:`email_in._TailEol`)
against the standard library's own ``BytesParser`` with the same policy: the same tree of
parts (headers, payloads, preambles, epilogues, defects) on the corpora, on any bytes, and on
generated multiparts whose lines end in every way (``\\r\\n``, ``\\n``, ``\\r``, none) around
their boundaries, where the parser trims the line break a boundary owns. And the tail search
itself against the regular expression it stands for."""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpkit.channels import email_in
from test_email_in_reference import _bench_corpus, messages

CORPUS = Path(__file__).parent / "data" / "email"
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NLCRE_EOL = re.compile(r"(\r\n|\r|\n)\Z")  # email.feedparser's, written out


def _found(match: object) -> str | None:
    return None if match is None else str(match.group(0))  # type: ignore[attr-defined]


def shape(message: Message) -> object:
    """Everything the structure parse decides about ``message`` and its parts."""
    payload = message.get_payload()
    return (
        type(message).__name__,
        list(message.raw_items()),
        message.get_unixfrom(),
        message.preamble,
        message.epilogue,
        [type(d).__name__ for d in message.defects],
        [shape(p) for p in payload if isinstance(p, Message)]
        if isinstance(payload, list)
        else payload,
    )


def same_structure(raw: bytes) -> Message:
    """Parse ``raw`` with both; assert the trees are equal."""
    expected = BytesParser(policy=email_in._POLICY).parsebytes(raw)
    found = email_in._structure(raw)
    assert shape(found) == shape(expected)
    assert _written(found) == _written(expected)
    return found


def _written(message: Message) -> bytes | str:
    """The message written back (or the error writing it back raised)."""
    try:
        return message.as_bytes()
    except Exception as exc:  # the generator refuses some headers (CR or LF in an address)
        return type(exc).__name__


def test_the_fast_feed_parser_is_in_use() -> None:
    """On this Python the parser is the standard one with the tail search swapped in (were it
    not, ``_structure`` would be the standard parser and this file would prove nothing)."""
    parsegen = email_in._FEED_PARSER._parsegen  # type: ignore[attr-defined]
    assert isinstance(parsegen.__globals__["NLCRE_eol"], email_in._TailEol)


# ------------------------------------------------------------------ the tail search

LINE_TEXT = st.text(st.sampled_from(["a", " ", "\r", "\n", "-", "é", "\x00"]), max_size=12)


@SETTINGS
@given(st.one_of(LINE_TEXT, st.text(max_size=40)))
@example("")
@example("\r\n")
@example("\n\r")
@example("a\r\r\n")
@example("a\n\n")
@example("\r")
def test_tail_search_is_the_regular_expression(text: str) -> None:
    assert _found(email_in._TailEol().search(text)) == _found(NLCRE_EOL.search(text))


# ------------------------------------------------------------------ whole messages


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.eml")))
def test_every_corpus_file(name: str) -> None:
    same_structure((CORPUS / name).read_bytes())


def test_the_bench_corpus(tmp_path: Path) -> None:
    _bench_corpus().write_corpus(tmp_path, 300, 11)  # type: ignore[attr-defined]
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 300
    for path in files:
        same_structure(path.read_bytes())


@SETTINGS
@given(st.binary(max_size=2000))
def test_any_bytes(raw: bytes) -> None:
    same_structure(raw)


@SETTINGS
@given(messages())
def test_generated_messages(raw: bytes) -> None:
    same_structure(raw)


ENDINGS = st.sampled_from(["\r\n", "\n", "\r", ""])
BODY_LINE = st.sampled_from(["", "text", "QUJDRA==", "  indented", "--not-the-boundary", "x\x00"])


@st.composite
def multiparts(draw: st.DrawFn, depth: int = 0) -> str:
    """A multipart whose every line ends as drawn: preamble, parts (some nested, some with
    several blank lines before the boundary), maybe a close boundary, an epilogue."""
    boundary = draw(st.sampled_from(["b1", "==x==", "a b"])) + str(depth)
    lines = [
        f"Content-Type: multipart/{draw(st.sampled_from(['mixed', 'alternative']))}; "
        f'boundary="{boundary}"',
        "",
    ]
    lines += draw(st.lists(BODY_LINE, max_size=3))  # the preamble
    for _ in range(draw(st.integers(0, 3))):
        trailing = draw(st.sampled_from(["", " ", "  \t"]))
        lines.append(f"--{boundary}{trailing}")
        if depth < 2 and draw(st.booleans()):
            lines += draw(multiparts(depth + 1)).split("\n")
        else:
            lines += [draw(st.sampled_from(["Content-Type: text/plain", "X-A: b", ""])), ""]
            lines += draw(st.lists(BODY_LINE, max_size=4))
    if draw(st.booleans()):
        lines.append(f"--{boundary}--")
        lines += draw(st.lists(BODY_LINE, max_size=3))  # the epilogue
    return "\n".join(lines)


@st.composite
def line_ending_messages(draw: st.DrawFn) -> bytes:
    lines = ["From: a@b.example", "Subject: s", *draw(multiparts()).split("\n")]
    out = "".join(line + draw(ENDINGS) for line in lines)
    return out.encode("utf-8", "surrogateescape")


@SETTINGS
@given(line_ending_messages())
@example(
    b'From: a@b.example\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\npre\r\n--b\r\n'
    b"\r\nbody\r\r\n--b--\r\nepi\n\r"
)
def test_every_line_ending_around_boundaries(raw: bytes) -> None:
    same_structure(raw)


@SETTINGS
@given(line_ending_messages())
def test_parse_is_unchanged_by_the_structure_parse(raw: bytes) -> None:
    """The whole InboundMessage too: ``parse`` over these messages equals its reference."""
    from test_email_in_reference import same

    same(raw)


def test_parts_made_for_multiparts_without_parts_keep_their_own_text() -> None:
    """Two multiparts whose boundaries never start (each read as one text part, made by the
    walk): the second's empty text is its own, not the first's (the walk keys what it has
    worked out by part id, so the parts it makes are held till it ends; found by the
    line-ending messages above: the text came out twice)."""
    from test_email_in_reference import same

    raw = (
        b"From: a@b.example\rSubject: s\r\n"
        b'Content-Type: multipart/mixed; boundary="a b0"\r\n\n--a b0\r\n'
        b'Content-Type: multipart/alternative; boundary="a b1"\r\r\n'
        b"--a b1  \tContent-Type: text/plain\r\r\n--a b0\r"
        b'Content-Type: multipart/alternative; boundary="a b1"\n\r\n'
        b"--a b0\r\nContent-Type: text/plain\r\n\n"
    )
    message = same(raw)
    assert not isinstance(message, tuple)
    assert message.body == "--a b1  \tContent-Type: text/plain"
