"""The email parser's structure parse (``email_structure.structure``: the standard library's
feed parser with the payload-end search answered from the text's tail (``_TailEol``), each
multipart's boundary matched without a compile (``_Boundary``) and each run of base64 lines
handed to it as one line (``_lines``)) against the standard library's own ``BytesParser`` with
the same policy: the same tree of parts (headers, payloads, preambles, epilogues, defects) on
the corpora, on any bytes, on generated multiparts whose lines end in every way (``\\r\\n``,
``\\n``, ``\\r``, none) around their boundaries, where the parser trims the line break a
boundary owns, and on messages full of base64 lines in every place a parser reads lines
(header blocks, bodies, preambles, epilogues, delivery reports, attached messages), some runs
spoilt. And each shortcut against what it stands for: the tail search and the boundary match
against the regular expressions, the runs handed over as one line against what makes that
safe."""

from __future__ import annotations

import email.feedparser
import io
import re
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpkit.channels import email_structure
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
    """Parse ``raw`` with both (``structure`` as ``parse`` calls it, with its runs of base64
    lines handed over as one whatever the message's size, and so with its boundaries
    compiled); assert the trees are equal."""
    expected = BytesParser(policy=email_structure.POLICY).parsebytes(raw)
    found = email_structure.structure(raw)
    merged = email_structure.structure(raw, merge_from=0)
    compiled = email_structure.structure(raw, merge_from=0, compile_from=0)
    for tree in (found, merged, compiled):
        assert shape(tree) == shape(expected)
        assert _written(tree) == _written(expected)
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
    parsegen = email_structure._FEED_PARSER._parsegen  # type: ignore[attr-defined]
    assert isinstance(parsegen.__globals__["NLCRE_eol"], email_structure._TailEol)
    # Where the standard parse compiles each multipart's boundary (before 3.13), _Re stands in
    # for its re; where it does not (3.13 on), its re is kept.
    compiles = "re" in email.feedparser.FeedParser._parsegen.__code__.co_names  # type: ignore[attr-defined]
    assert isinstance(parsegen.__globals__["re"], email_structure._Re) is compiles
    compiling = email_structure._COMPILING_FEED_PARSER._parsegen  # type: ignore[attr-defined]
    assert isinstance(compiling.__globals__["NLCRE_eol"], email_structure._TailEol)
    assert compiling.__globals__["re"] is re


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
    assert _found(email_structure._TailEol().search(text)) == _found(NLCRE_EOL.search(text))


# ------------------------------------------------------------------ the boundary match

SEPARATORS = st.text(
    st.sampled_from(["-", "=", "_", ".", "+", "*", "?", "(", ")", "[", "\\", "a", "Z", " ", "é"]),
    min_size=1,
    max_size=10,
).map(lambda text: "--" + text)
TAILS = st.text(st.sampled_from(["-", " ", "\t", "\r", "\n", "x"]), max_size=8)
GROUPS = ("end", "ws", "linesep")


def _boundary_expression(separator: str) -> str:
    """The expression email.feedparser compiles for a multipart's separator, written out."""
    return (
        "(?P<sep>" + re.escape(separator) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
    )


def _groups(match: re.Match[str] | None) -> object:
    return None if match is None else [match.group(g) for g in GROUPS]


@SETTINGS
@given(SEPARATORS, st.one_of(TAILS, st.text(max_size=20)), st.booleans())
@example("--b", "--  \r\n", True)
@example("--b", "\n\n", True)
@example("--b", "--\r\r", True)
@example("--b", " \t\n", True)
@example("--b", "--\n", True)
@example("--b", "", False)
def test_boundary_match_is_the_regular_expression(
    separator: str, tail: str, at_start: bool
) -> None:
    """Whether a line matches, and the groups the feed parser reads (``end``, ``linesep``,
    and ``ws``), as the expression it compiles would find them."""
    line = separator + tail if at_start else tail
    compiled = email_structure._Re().compile(_boundary_expression(separator))
    assert isinstance(compiled, email_structure._Boundary)
    expected = re.compile(_boundary_expression(separator)).match(line)
    assert _groups(compiled.match(line)) == _groups(expected)


def test_other_expressions_are_compiled_by_re() -> None:
    assert isinstance(email_structure._Re().compile(r"(\r\n|\r|\n)"), re.Pattern)
    assert email_structure._Re().escape("a.b") == re.escape("a.b")


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


# ------------------------------------------------------------------ runs of base64 lines

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
HEADER_RE = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")  # email.feedparser's headerRE
BREAKS = st.sampled_from(["\r\n", "\n", "\r"])
SPOILT = st.sampled_from(
    ["", "QUJD-RA==", "Subject: x", " QUJD", "\tQUJD", "--b0", "--b1--", "QUJD\rRA==", "From QUJD"]
)
Pairs = list[tuple[str, str]]


@st.composite
def base64_lines(draw: st.DrawFn) -> Pairs:
    """(line, line break) pairs as a base64 body has them (as wide as each other, the last
    maybe shorter, ending alike), now and then one spoilt: another width or line break (or
    none), empty, a ``-`` or ``:`` in it, a break inside it (one line as wide as before, cut
    in two or three), a boundary, a header line."""
    width = draw(st.sampled_from([8, 16, 17, 76]))
    count = draw(st.integers(1, 8))
    ending = draw(BREAKS)
    pairs: Pairs = []
    for index in range(count):
        offset = draw(st.integers(0, 63))
        line = (B64 * 3)[offset : offset + width]
        if index == count - 1 and draw(st.booleans()):
            line = line[: draw(st.integers(1, width))] + draw(st.sampled_from(["", "=", "=="]))
        end = ending
        if draw(st.integers(0, 7)) == 0:
            end = draw(ENDINGS)
        spoil = draw(st.integers(0, 7))
        if spoil == 0:
            line = draw(SPOILT)
        elif spoil == 1 and index:  # a break inside, as wide as before: only a count finds it
            brk = draw(st.sampled_from(["\n", "\r", "\r\n", "\n\n", "\r\r", "\n\r"]))
            last = max(0, len(line) - len(brk))
            at = draw(st.one_of(st.sampled_from([0, last]), st.integers(0, last)))
            line = line[:at] + brk + line[at + len(brk) :]
        pairs.append((line, end))
    return pairs


@st.composite
def base64_parts(draw: st.DrawFn, depth: int = 0) -> Pairs:
    """A part (headers, a line break, a body) with base64 lines wherever the parser reads
    lines: right after its headers (no blank line), as its body, in a multipart's preamble
    and epilogue, between a delivery report's header blocks, as an attached message."""

    def line(text: str) -> tuple[str, str]:
        return (text, draw(st.sampled_from(["\r\n", "\r\n", "\n", "\r", ""])))

    kind = draw(st.sampled_from(["leaf", "multipart", "report", "message"]))
    if kind == "multipart" and depth < 2:
        boundary = f"b{depth}"
        pairs = [line(f'Content-Type: multipart/mixed; boundary="{boundary}"'), line("")]
        if draw(st.booleans()):
            pairs += draw(base64_lines())  # the preamble
        for _ in range(draw(st.integers(0, 3))):
            pairs.append(line(f"--{boundary}"))
            pairs += draw(base64_parts(depth + 1))
        if draw(st.booleans()):
            pairs.append(line(f"--{boundary}--"))
            if draw(st.booleans()):
                pairs += draw(base64_lines())  # the epilogue
        return pairs
    if kind == "report":
        pairs = [line("Content-Type: message/delivery-status"), line("")]
        for _ in range(draw(st.integers(1, 3))):
            block = draw(st.sampled_from(["headers", "base64", "both"]))
            if block in ("headers", "both"):
                pairs += [line("Action: failed"), line("Status: 5.1.1")]
            if block in ("base64", "both"):
                pairs += draw(base64_lines())
            pairs.append(line(""))
        return pairs
    if kind == "message" and depth < 2:
        pairs = [line("Content-Type: message/rfc822"), line("")]
        if draw(st.booleans()):
            return pairs + draw(base64_lines())  # a message that starts with base64
        return [*pairs, line("Subject: inner"), *draw(base64_parts(depth + 1))]
    pairs = [line("Content-Type: application/pdf"), line("Content-Transfer-Encoding: base64")]
    if draw(st.booleans()):
        pairs.append(line(""))
    return pairs + draw(base64_lines())


@st.composite
def base64_messages(draw: st.DrawFn) -> bytes:
    pairs = [("From: a@b.example", "\r\n"), ("Subject: s", "\r\n"), *draw(base64_parts())]
    return "".join(text + end for text, end in pairs).encode("ascii")


@SETTINGS
@given(base64_messages())
@example(b"From: a@b.example\r\nContent-Type: text/plain\r\n" + b"QUJDREVGR0hJSktMTU5P\r\n" * 3)
@example(
    b"From: a@b.example\r\nContent-Type: message/delivery-status\r\n\r\n"
    + b"QUJDREVGR0hJSktMTU5P\n" * 3
    + b"\nAction: failed\n\n"
)
@example(
    b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n--b0\r\n\r\n'
    + b"QUJDREVGR0hJSktMTU5P\n" * 4
    + b"QUJDRA==\r\n--b0--\r\n"
)
def test_base64_lines_everywhere(raw: bytes) -> None:
    same_structure(raw)


@SETTINGS
@given(base64_messages())
def test_parse_is_unchanged_by_base64_lines_as_one(raw: bytes) -> None:
    from test_email_in_reference import same

    same(raw)


RUN_LINE = b"QUJDREVGR0hJSktMTU5P"


@settings(SETTINGS, max_examples=1000)
@given(st.one_of(base64_messages(), base64_messages(), line_ending_messages(), st.binary()))
@example(b"X: y\r\n\r\n" + RUN_LINE + b"\r\n\r" + RUN_LINE[1:] + b"\r\n" + RUN_LINE + b"\r\n--")
@example(b"X: y\r\n\r\n" + RUN_LINE + b"\r\n" + RUN_LINE[:5] + b"\r\r" + RUN_LINE[7:] + b"\r\n")
@example(b"X: y\n\n" + RUN_LINE + b"\n\n" + RUN_LINE[1:] + b"\n" + RUN_LINE + b"\n--")
@example(b"X: y\n\n" + RUN_LINE + b"\n" + RUN_LINE + b"\r\n\n--")
@example(b"X: y\n\n" + RUN_LINE + b"\n\r" + RUN_LINE[1:] + b"\n" + RUN_LINE + b"\n--")
def test_lines_handed_over_as_one_are_a_safe_run(raw: bytes) -> None:
    """What ``_lines`` hands over is the text's lines as the feed parser cuts them, some
    consecutive ones joined; joined lines are whole, none empty or starting with ``--``, the
    first no header line (so no header block, boundary or blank line is hidden in a run)."""
    text = raw.decode("ascii", "surrogateescape")
    handed = email_structure._lines(text, raw)
    assert "".join(handed) == text
    cut = [io.StringIO(piece, newline="").readlines() for piece in handed]
    assert [line for lines in cut for line in lines] == io.StringIO(text, newline="").readlines()
    for lines in cut:
        if len(lines) > 1:
            assert not HEADER_RE.match(lines[0])
            for line in lines:
                assert line[:1] not in ("", "\r", "\n")
                assert not line.startswith("--")
                assert line.endswith(("\r", "\n"))


def test_an_attachment_is_handed_over_in_few_lines(tmp_path: Path) -> None:
    """The bench corpus's messages with attachments (some 900 lines of base64 each, every
    line but a part's last ending in ``\\n``, the last in ``\\r\\n``) reach the parser in a
    few dozen lines: the runs are found and taken whole, not line by line."""
    entries = _bench_corpus().write_corpus(tmp_path, 300, 11)  # type: ignore[attr-defined]
    attached = [e.file for e in entries if e.category == "new_attachment"]
    assert attached
    for name in attached:
        raw = (tmp_path / name).read_bytes()
        text = raw.decode("ascii", "surrogateescape")
        assert len(email_structure._lines(text, raw)) < 60 < text.count("\n")
