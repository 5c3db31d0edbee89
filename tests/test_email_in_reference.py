"""The email parser against its reference (``email_in_reference``: the parser before it read
each header once): equal InboundMessages, or the same error, on the corpus (tests/data/email/
and the bench's), on any bytes, on mutated real messages and on generated MIME messages
(parameters in every form: quoted, RFC 2231 with charsets and continuations, encoded words,
comments; nested multiparts, dispositions, transfer encodings). The parser keeps parsed
header values across messages, so every check parses twice: a warm cache changes nothing."""

from __future__ import annotations

import base64
import importlib.util
import random
import sys
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import email_in_reference as reference
from helpkit.channels import email_in, email_structure
from helpkit.ports import InboundMessage

CORPUS = Path(__file__).parent / "data" / "email"
BENCH_CORPUS = Path(__file__).resolve().parent.parent / "bench" / "email_corpus.py"
RECEIVED = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _outcome(parse: object, raw: bytes, **options: object) -> InboundMessage | tuple[str, str]:
    try:
        return parse(raw, received_at=RECEIVED, **options)  # type: ignore[operator,no-any-return]
    except (email_in.EmailParseError, reference.EmailParseError) as exc:
        return ("EmailParseError", str(exc))


def same(raw: bytes, **options: object) -> InboundMessage | tuple[str, str]:
    """Parse ``raw`` with both parsers (the new one twice); assert the outcomes are equal."""
    expected = _outcome(reference.parse, raw, **options)
    first = _outcome(email_in.parse, raw, **options)
    again = _outcome(email_in.parse, raw, **options)
    assert first == expected
    assert again == expected
    return first


# ------------------------------------------------------------------ the corpora


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.eml")))
def test_every_corpus_file(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    same(raw)
    same(raw, strip_quotes=False)
    same(raw, max_parts=2, max_depth=2, max_part_bytes=100)


def _bench_corpus() -> object:
    spec = importlib.util.spec_from_file_location("email_corpus_under_test", BENCH_CORPUS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_bench_corpus(tmp_path: Path) -> None:
    corpus = _bench_corpus()
    corpus.write_corpus(tmp_path, 300, 7)  # type: ignore[attr-defined]
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 300
    parsed = [same(path.read_bytes()) for path in files]
    assert all(isinstance(m, InboundMessage) for m in parsed)


# ------------------------------------------------------------------ any bytes, mutations


@SETTINGS
@given(st.binary(max_size=2000))
@example(b"From: a@b.example\nContent-Type: multipart/mixed\n\n")
@example(b"From: a@b.example\nContent-Type: text/plain; charset=punycode\n\n" + b"\xff" * 50)
@example(b"From: =?utf-16?b?//4=?= <a@b.example>\n\n")
@example(b"From: a@b.example\nSubject: x\x00y\x0bz\n\n")
@example(b"From: a@b.example\nSubject: x \t\nX-Y: \t=?utf-8?q?a?=\t\n\n")
def test_any_bytes(raw: bytes) -> None:
    same(raw)


def _mutate(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data) + 1)
        kind = rng.choice(["flip", "insert", "delete", "truncate", "crlf", "param"])
        if kind == "flip" and data:
            data[at % len(data)] ^= rng.randrange(1, 256)
        elif kind == "insert":
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
        elif kind == "delete":
            del data[at : at + rng.randint(1, 40)]
        elif kind == "truncate":
            del data[at:]
        elif kind == "crlf":
            data[at:at] = b"\r\n"
        else:
            data[at:at] = rng.choice([b";", b'"', b"(", b"*0*=utf-8''%C3%A9", b"=?utf-8?q?x?="])
    return bytes(data)


@SETTINGS
@given(
    name=st.sampled_from(sorted(p.name for p in CORPUS.glob("*.eml"))),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_mutated_corpus_files(name: str, seed: int) -> None:
    same(_mutate((CORPUS / name).read_bytes(), random.Random(seed)))


# ------------------------------------------------------------------ generated MIME

TOKEN = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
CHARSETS = st.sampled_from(
    ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "UTF-8", "x-unknown", "koi8-r", ""]
)


def _encoded_word(text: str, charset: str) -> str:
    data = text.encode("utf-8", "surrogatepass")
    return f"=?{charset or 'utf-8'}?b?{base64.b64encode(data).decode('ascii')}?="


@st.composite
def file_names(draw: st.DrawFn) -> str:
    """A ``filename``/``name`` parameter in one of the forms mail programs write."""
    name = draw(TEXT)
    form = draw(st.sampled_from(["plain", "quoted", "rfc2231", "continued", "encoded", "junk"]))
    key = draw(st.sampled_from(["filename", "name"]))
    if form == "plain":
        return f"{key}={draw(TOKEN)}"
    if form == "quoted":
        escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
        return f'{key}="{escaped}"'
    quoted = "".join(f"%{b:02X}" for b in name.encode("utf-8", "surrogatepass"))
    charset = draw(CHARSETS)
    if form == "rfc2231":
        return f"{key}*={charset}'{draw(st.sampled_from(['', 'en', 'fr']))}'{quoted}"
    if form == "continued":
        half = len(quoted) // 2 // 3 * 3
        return f"{key}*0*={charset}''{quoted[:half]}; {key}*1*={quoted[half:]}"
    if form == "encoded":
        return f'{key}="{_encoded_word(name, draw(CHARSETS))}"'
    return f"{key}{draw(st.sampled_from(['', '*', '*0', '**']))}={draw(TEXT)}"


@st.composite
def parts(draw: st.DrawFn, depth: int = 0) -> bytes:
    """One MIME part (headers, blank line, body), maybe a multipart of more."""
    multipart = depth < 3 and draw(st.booleans())
    lines: list[str] = []
    if multipart:
        boundary = draw(TOKEN) + str(depth)
        subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "digest"]))
        comment = draw(st.sampled_from(["", " (comment)", ' ; report-type="delivery-status"']))
        quote = draw(st.sampled_from(['"', ""]))
        lines.append(
            f"Content-Type: multipart/{subtype}{comment}; boundary={quote}{boundary}{quote}"
        )
        children = draw(st.lists(parts(depth + 1), min_size=0, max_size=3))
        body = b"preamble\r\n"
        for child in children:
            body += f"--{boundary}\r\n".encode() + child + b"\r\n"
        if draw(st.booleans()):
            body += f"--{boundary}--\r\n".encode()
        head = "\r\n".join(lines).encode("utf-8", "surrogateescape")
        return head + b"\r\n\r\n" + body
    ctype = draw(
        st.sampled_from(
            [
                "text/plain",
                "text/html",
                "TEXT/Plain",
                "image/png",
                "application/pdf",
                "message/rfc822",
                "message/delivery-status",
                "text",
                "x/y/z",
                "",
            ]
        )
    )
    params = []
    if draw(st.booleans()):
        quote = draw(st.sampled_from(["", '"']))
        params.append(f"charset={quote}{draw(CHARSETS)}{quote}")
    if draw(st.booleans()):
        params.append(draw(file_names()))
    lines.append(f"Content-Type: {ctype}" + "".join(f"; {p}" for p in params))
    if draw(st.booleans()):
        disposition = draw(st.sampled_from(["attachment", "inline", "Attachment", "weird", ""]))
        extra = f"; {draw(file_names())}" if draw(st.booleans()) else ""
        lines.append(f"Content-Disposition: {disposition}{extra}")
    if draw(st.booleans()):
        lines.append(f"Content-ID: <{draw(TOKEN)}@x>")
    encoding = draw(st.sampled_from(["", "base64", "quoted-printable", "8bit", "7bit", "bogus"]))
    if encoding:
        lines.append(f"Content-Transfer-Encoding: {encoding}")
    text = draw(TEXT)
    if encoding == "base64" and draw(st.booleans()):
        body = base64.b64encode(text.encode("utf-8", "surrogatepass"))
    elif encoding == "quoted-printable":
        body = text.encode("utf-8", "surrogatepass").replace(b"=", b"=3D") + b"=C3=A9=\r\nx"
    else:
        body = text.encode(draw(st.sampled_from(["utf-8", "latin-1"])), "replace")
    head = "\r\n".join(lines).encode("utf-8", "surrogateescape")
    return head + b"\r\n\r\n" + body


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    sender = draw(
        st.sampled_from(
            [
                "Ana <ana@acme.example>",
                f'"{draw(TEXT)}" <b@x.example>',
                f"{_encoded_word(draw(TEXT), draw(CHARSETS))} <c@x.example>",
                "not an address",
                "",
            ]
        )
    )
    head = [
        f"From: {sender}",
        f"To: support@help.example, {draw(TOKEN)}@y.example",
        f"Subject: {draw(st.sampled_from(['', 'Re: ', 'AW: [#12] ']))}{draw(TEXT)}",
        f"Message-ID: <{draw(TOKEN)}@z.example>",
    ]
    if draw(st.booleans()):
        head.append(f"Cc: {_encoded_word(draw(TEXT), 'utf-8')} <cc@y.example>")
    if draw(st.booleans()):
        head.append(f"References: <a@b> <{draw(TOKEN)}@c>")
    if draw(st.booleans()):
        head.append(f"In-Reply-To: <{draw(TOKEN)}@c>")
    if draw(st.booleans()):
        head.append("MIME-Version: 1.0")
    encoded = "\r\n".join(head).encode("utf-8", "surrogateescape")
    return encoded + b"\r\n" + draw(parts())


@SETTINGS
@given(messages())
def test_generated_messages(raw: bytes) -> None:
    same(raw)


@SETTINGS
@given(messages(), st.integers(min_value=0, max_value=2**32))
def test_generated_messages_mutated(raw: bytes, seed: int) -> None:
    same(_mutate(raw, random.Random(seed)))


def test_the_same_header_values_across_messages_answer_alike() -> None:
    """One header value, seen in many messages in any order: the cache gives each message
    the reading the reference gives it alone."""
    rng = random.Random(5)
    files = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    for _ in range(60):
        same(rng.choice(files))


# ------------------------------------------------------------------ plain Content-Type values

MIME_TOKENS = st.sampled_from(["multipart", "Multipart", "text", "application", "x.y+z-1_"])
PARAM_NAMES = st.sampled_from(["boundary", "Boundary", "charset", "report-type", "name", "a_1"])
PARAM_VALUES = st.text(st.characters(min_codepoint=9, max_codepoint=127), max_size=12)
SEPARATORS = st.sampled_from(["; ", "; ", ";", " ; ", ";\t", ";  "])


@st.composite
def content_types(draw: st.DrawFn) -> str:
    """Content-Type values, most in the plain form (``type/subtype; name="value"``) or near
    it: unquoted values, any printable ASCII inside the quotes (``"``, ``\\``, ``;``, ``=?``),
    names given twice, other separators, control characters."""
    value = f"{draw(MIME_TOKENS)}/{draw(MIME_TOKENS)}"
    for _ in range(draw(st.integers(0, 3))):
        text = draw(PARAM_VALUES)
        quoted = draw(st.booleans())
        value += f"{draw(SEPARATORS)}{draw(PARAM_NAMES)}=" + (f'"{text}"' if quoted else text)
    return value


def _reading(header: object) -> tuple[object, ...]:
    """What a header object tells, but its type."""
    return (
        str(header),
        dict(header.params),  # type: ignore[attr-defined]
        header.content_type,  # type: ignore[attr-defined]
        header.maintype,  # type: ignore[attr-defined]
        header.subtype,  # type: ignore[attr-defined]
        [type(d).__name__ for d in header.defects],  # type: ignore[attr-defined]
        header.name,  # type: ignore[attr-defined]
    )


def _answers(message: Message) -> tuple[object, ...]:
    return (
        message.get_content_type(),
        message.get_params(),
        message.get_boundary(),
        message.get_param("charset"),
        message.get_param("name"),
        message.get_content_charset(),
        message.get_filename(),
    )


@SETTINGS
@given(content_types())
@example('multipart/report; report-type=delivery-status; boundary="r1x"')
@example('multipart/mixed; boundary="a"; Boundary="b"')
@example('multipart/mixed; boundary="=?utf-8?q?x?="')
@example("text/plain")
def test_plain_content_types_read_as_the_header_object(value: str) -> None:
    """A Content-Type read through the parser's policy reads as ``email.policy.default``'s
    header object: its text, and every attribute (a plain value's are the object's own,
    built when asked); and a message with it answers the message's questions alike."""
    import email.policy
    from email.parser import BytesParser

    found = email_structure.POLICY.header_fetch_parse("Content-Type", value)
    expected = email.policy.default.header_fetch_parse("Content-Type", value)
    assert _reading(found) == _reading(expected)
    raw = f"Content-Type: {value}\r\n\r\nbody\r\n".encode("ascii", "surrogateescape")
    ours = BytesParser(policy=email_structure.POLICY).parsebytes(raw)
    theirs = BytesParser(policy=email.policy.default).parsebytes(raw)
    for message in (ours, theirs):
        message.set_default_type("text/plain")
    assert _answers(ours) == _answers(theirs)


def test_a_plain_content_type_is_not_parsed() -> None:
    """The multipart Content-Type of the bench's messages with attachments (a boundary of
    their own) and of its bounces (``report-type=delivery-status`` unquoted) are plain."""
    for value in (
        'multipart/mixed; boundary="b18x"',
        'multipart/report; report-type=delivery-status; boundary="r37x"',
    ):
        found = email_structure.POLICY.header_fetch_parse("Content-Type", value)
        assert isinstance(found, email_structure._PlainContentType)
