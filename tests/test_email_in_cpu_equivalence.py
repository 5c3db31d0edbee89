"""The email parser after its CPU work (a plain Content-Type's charset read from its parsed
parameters, an ASCII payload decoded with one header lookup, address and encoded header
readings kept with their notes, a part's content type remembered) against what it replaced.

Oracles: ``email_in_reference`` (the frozen parser the module in ``src`` was held equal to
before this change, reading every header through ``email.policy.default``) for whole
messages; and, for the helpers changed, the code they replaced, frozen below as it stood
(``_old_charset``, ``_old_payload``) or the standard library's own method
(``EmailMessage.get_content_type``). Every message is parsed more than once and in varied
order, so that a kept reading must give each message the notes the oracle gives it alone."""

from __future__ import annotations

import base64
import binascii
import copy
import importlib.util
import random
import sys
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import email_in_reference as reference
from helpkit.channels import email_in, email_structure
from helpkit.ports import InboundMessage
from test_email_in_reference import _mutate, content_types, messages

CORPUS = Path(__file__).parent / "data" / "email"
BENCH_CORPUS = Path(__file__).resolve().parent.parent / "bench" / "email_corpus.py"
RECEIVED = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _outcome(parse: object, raw: bytes, **options: object) -> InboundMessage | tuple[str, str]:
    try:
        return parse(raw, received_at=RECEIVED, **options)  # type: ignore[operator,no-any-return]
    except (email_in.EmailParseError, reference.EmailParseError) as exc:
        return ("EmailParseError", str(exc))


def same(raw: bytes, **options: object) -> None:
    """``raw`` parsed by the reference and, twice, by ``email_in``: equal outcomes."""
    expected = _outcome(reference.parse, raw, **options)
    assert _outcome(email_in.parse, raw, **options) == expected
    assert _outcome(email_in.parse, raw, **options) == expected


# ------------------------------------------------------------------ whole messages


def _bench_files(tmp_path: Path, count: int, seed: int) -> list[bytes]:
    spec = importlib.util.spec_from_file_location("email_corpus_for_cpu_test", BENCH_CORPUS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    module.write_corpus(tmp_path, count, seed)
    return [p.read_bytes() for p in sorted(tmp_path.glob("*.eml"))]


def test_the_bench_corpus_in_order_and_shuffled(tmp_path: Path) -> None:
    """The bench's kinds of mail (plain, HTML, attachments, replies, auto-replies, bounces,
    duplicates), in order, then shuffled, then with the limits small."""
    files = _bench_files(tmp_path, 400, 11)
    assert len(files) == 400
    for raw in files:
        same(raw)
    random.Random(3).shuffle(files)
    for raw in files[:150]:
        same(raw)
    for raw in files[:60]:
        same(raw, strip_quotes=False)
        same(raw, max_parts=2, max_depth=1, max_part_bytes=300)


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.eml")))
def test_every_corpus_file(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    same(raw)
    same(raw, max_parts=3, max_depth=2, max_part_bytes=64)


@SETTINGS
@given(st.lists(messages(), min_size=1, max_size=4), st.integers(0, 2**32))
def test_generated_messages_in_any_order(raws: list[bytes], seed: int) -> None:
    """A few generated messages (sharing sender names and charsets), each parsed, then all
    again in another order, then mutated: the kept readings give each the oracle's answer."""
    for raw in raws:
        same(raw)
    rng = random.Random(seed)
    rng.shuffle(raws)
    for raw in raws:
        same(raw, max_part_bytes=rng.choice([1, 40, 10_000]))
        same(_mutate(raw, rng))


HEADER_VALUES = st.sampled_from(
    [
        "Ana <ana@acme.example>",
        "=?utf-8?q?Chlo=C3=A9?= <c@x.example>",
        "=?x-unknown?q?Chlo=E9?= <c@x.example>",
        "=?iso-8859-1?b?SW7os3M=?= <i@x.example>",
        "=?utf-8?b?!!?= <bad@x.example>",
        "not an address, <> , x@",
        '"M\u00fcller" <m@x.example>',
        "=?utf-8?q?a?= =?utf-8?q?b?=\r\n <ab@x.example>, other@y.example",
        "",
    ]
)


@SETTINGS
@given(st.lists(st.tuples(HEADER_VALUES, HEADER_VALUES, HEADER_VALUES), min_size=1, max_size=6))
def test_kept_address_and_header_readings_tell_their_notes_each_time(
    heads: list[tuple[str, str, str]],
) -> None:
    """The same From, To, Cc and Subject values (some with notes: unknown charsets, bytes
    that are not UTF-8, entries that are not addresses) in message after message."""
    for sender, to, subject in heads:
        raw = (
            f"From: {sender}\r\nTo: {to}\r\nCc: {sender}, {to}\r\nSubject: {subject}\r\n"
            f"Reply-To: {to}\r\n\r\nHello\r\n"
        ).encode("utf-8", "surrogateescape")
        same(raw)
        same(raw.replace("\u00fc".encode(), b"\xfc"))  # the same, as 8-bit Latin-1


# ------------------------------------------------------------------ the charset


def _old_charset(part: Message) -> str | None:
    """``email_in._charset`` before this change."""
    try:
        found = part.get_param("charset")
    except Exception:
        return None
    if isinstance(found, tuple):
        found = found[2]
    return found if isinstance(found, str) else None


def _part(head: str, body: bytes = b"body\r\n") -> Message:
    raw = head.encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body
    return BytesParser(policy=email_structure.POLICY).parsebytes(raw)


@SETTINGS
@given(content_types())
@example("text/plain; charset=utf-8")
@example('text/plain; Charset="ISO-8859-1"; format=flowed')
@example('text/plain; name="a;b"; charset="x"')
@example('text/plain; charset="a"; CHARSET="b"')
@example("text/plain; charset*=utf-8''%41")
@example('text/plain; charset=" utf-8 "')
def test_the_charset_is_get_params(value: str) -> None:
    part = _part(f"Content-Type: {value}")
    assert email_in._charset(part) == _old_charset(part)
    params = email_structure.plain_params(part.get("content-type"))
    if params is not None:
        for name, _ in params:
            assert dict(params)[name] == part.get_param(name)


def test_the_charset_of_parts_without_a_plain_content_type() -> None:
    for head in ("Subject: none", "Content-Type: text/plain; charset=(c) utf-8", "Content-Type:"):
        part = _part(head)
        assert email_in._charset(part) == _old_charset(part)
    made = Message()
    made["Content-Type"] = "text/plain; charset=latin-1"
    assert email_in._charset(made) == _old_charset(made) == "latin-1"


# ------------------------------------------------------------------ the payload


def _old_payload(part: Message, notes: email_in._Notes, limit: int) -> bytes | None:
    """``email_in._payload`` before this change."""
    raw = part.get_payload()
    if isinstance(raw, list):
        return None
    if isinstance(raw, str) and len(raw) > limit * 4 // 3 + 4096:
        notes.add(f"a part of about {len(raw)} bytes was dropped (over the limit)")
        return None
    try:
        data = part.get_payload(decode=True)
    except Exception:
        notes.add("a part that could not be decoded was read as it came")
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else None
    if data is None:
        return None
    if not isinstance(data, bytes):
        return None
    if part.defects:
        kinds = ", ".join(sorted({type(d).__name__ for d in part.defects}))
        notes.add(f"a part had defects ({kinds[:200]}); read as well as could be")
    return data


ENCODINGS = st.sampled_from(
    ["", "base64", "BASE64", " base64", "quoted-printable", "x-uuencode", "7bit", "8bit", "b64"]
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Bodies a part may carry: base64 in lines (CRLF, LF, CR, mixed), with bad padding,
    stray characters or a length that cannot be decoded; uuencoded; quoted-printable; 8-bit
    bytes; any bytes."""
    data = draw(st.binary(max_size=300))
    kind = draw(st.sampled_from(["base64", "uu", "qp", "any"]))
    if kind == "base64":
        text = base64.b64encode(data)
        width = draw(st.integers(1, 80))
        cut = [text[i : i + width] for i in range(0, len(text), width)]
        ending = draw(st.sampled_from([b"\r\n", b"\n", b"\r", b"\n\r"]))
        body = ending.join(cut)
        change = draw(st.sampled_from(["", "strip=", "stray", "extra", "over"]))
        if change == "strip=":
            body = body.rstrip(b"=")
        elif change == "stray":
            at = draw(st.integers(0, len(body)))
            body = body[:at] + draw(st.sampled_from([b"!", b" ", b"-", b"\t", b"="])) + body[at:]
        elif change == "extra":
            body += b"A"
        elif change == "over":
            body += b"==AB"
        return body
    if kind == "uu":
        return b"begin 644 f\r\n" + binascii.b2a_uu(data[:45]) + b"`\r\nend\r\n"
    if kind == "qp":
        return binascii.b2a_qp(data) + draw(st.sampled_from([b"", b"=", b"=\r\n", b"=ZZ"]))
    return data


@SETTINGS
@given(
    ENCODINGS,
    bodies(),
    st.sampled_from(["text/plain; charset=utf-8", "text/plain; charset=koi8-r", "image/png"]),
    st.sampled_from([1, 50, 300, email_in.MAX_PART_BYTES]),
)
@example("base64", b"QUJD\r\nREVG\r\n", "image/png", email_in.MAX_PART_BYTES)
@example("base64", b"QUJD\rREVG\r", "image/png", email_in.MAX_PART_BYTES)
@example("base64", b"QUJDR", "image/png", email_in.MAX_PART_BYTES)
@example("base64", b"QU\xffJD", "image/png", email_in.MAX_PART_BYTES)
@example("quoted-printable", b"caf\xe9 =C3=A9", "text/plain; charset=utf-8", 1)
def test_the_payload_is_get_payload(cte: str, body: bytes, ctype: str, limit: int) -> None:
    """A leaf part's bytes, the part's defects and the notes: as before, each side with its
    own parse of the part (decoding adds defects to the part)."""
    head = f"Content-Type: {ctype}" + (f"\r\nContent-Transfer-Encoding: {cte}" if cte else "")
    ours, theirs = _part(head, body), _part(head, body)
    our_notes, their_notes = email_in._Notes(), email_in._Notes()
    found = email_in._payload(ours, our_notes, limit)
    expected = _old_payload(theirs, their_notes, limit)
    assert found == expected
    assert list(our_notes.items) == list(their_notes.items)
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]


# ------------------------------------------------------------------ the content type


CTYPE_VALUES = st.sampled_from(
    ["text/html", "multipart/mixed; boundary=x", "image/png", "bogus", "message/rfc822", "a/b/c"]
)


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["ask", "default", "replace", "delete", "add", "raw", "type", "copy", "deepcopy"]
            ),
            CTYPE_VALUES,
        ),
        max_size=12,
    ),
    st.booleans(),
)
def test_a_remembered_content_type_follows_every_change(
    steps: list[tuple[str, str]], typed: bool
) -> None:
    """A part's content type, asked after any change to its headers or its default type,
    is what ``EmailMessage.get_content_type`` works out afresh; copies too (a shallow copy
    shares its header list with the part it copies)."""
    part: Message = _part("Content-Type: text/plain; charset=utf-8" if typed else "Subject: x")
    assert isinstance(part, email_structure._Message)
    seen: list[Message] = [part]
    for step, value in steps:
        if step == "default":
            part.set_default_type(value.split(";")[0])
        elif step == "replace" and "content-type" in part:
            part.replace_header("Content-Type", value)
        elif step == "delete":
            del part["Content-Type"]
        elif step == "add" and "content-type" not in part:
            part["Content-Type"] = value
        elif step == "raw":
            part._headers.insert(0, ("Content-Type", value))  # type: ignore[attr-defined,union-attr]
        elif step == "type" and "content-type" in part:
            part.set_type(value.split(";")[0] if value.count("/") == 1 else "text/x")
        elif step == "copy":
            part = copy.copy(part)
            seen.append(part)
        elif step == "deepcopy":
            part = copy.deepcopy(part)
            seen.append(part)
        for each in seen:
            assert each.get_content_type() == EmailMessage.get_content_type(each)
            assert each.get_content_maintype() == EmailMessage.get_content_maintype(each)
