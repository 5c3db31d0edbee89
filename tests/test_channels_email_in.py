"""Inbound email (helpkit.channels.email_in): a corpus of real-world shapes (tests/data/email/),
malformed input, limits, and Hypothesis: any bytes give an InboundMessage or an
EmailParseError, and what helpkit sends parses back to what it said."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpkit.channels import email_in
from helpkit.channels.email_in import (
    EmailParseError,
    decode_header_text,
    parse,
    subject_tag,
)
from helpkit.channels.html_text import html_converter
from helpkit.channels.mime import (
    body_text,
    header_text,
    message_bytes,
    message_id,
    name_text,
    parse_sender,
    render,
)
from helpkit.errors import HelpkitError, NaiveDatetimeError, ValidationError
from helpkit.ports import Address, InboundMessage, OutboundMessage, Recipient

CORPUS = Path(__file__).parent / "data" / "email"
RECEIVED = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)


def load(name: str, **limits: int) -> InboundMessage:
    return parse((CORPUS / name).read_bytes(), received_at=RECEIVED, **limits)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the corpus


def test_a_gmail_reply() -> None:
    m = load("gmail_reply.eml")
    assert (m.channel, m.sender_address, m.sender_name) == (
        "email",
        "bob.nunez@gmail.example",
        "Bob Núñez",
    )
    assert m.subject == "Re: [#42] VPN drops every hour"
    assert m.ticket_number == 42
    assert m.external_id == "CAF8xq=2Y5vQ+reply@mail.gmail.example"
    assert m.in_reply_to == "t1-3-reply.hk1@help.example"
    assert m.references == ("CAF8xq=first@mail.gmail.example", "t1-3-reply.hk1@help.example")
    assert m.to == (Address("support@help.example", "Acme Support"),)
    assert m.cc == (Address("carol@acme.example", "Carol"),)
    # the text/plain alternative, quoted-printable decoded, the wrapped attribution cut off
    assert m.body == (
        'Hi Ana,\n\nIt dropped again at 10:58, right after the update. The log says "tunnel\n'
        'reset by peer". Café wifi, if that matters.\n\nThanks,\nBob'
    )
    assert m.original is not None
    assert m.original.startswith(m.body)
    assert "> could you tell us when it last dropped?" in m.original
    assert m.received_at == RECEIVED
    assert m.headers["delivered-to"] == "support@help.example"
    assert m.headers["content-type"].startswith("multipart/alternative")
    assert m.attachments == () and m.notes == ()


def test_an_outlook_reply_in_windows_1252_with_a_header_block() -> None:
    m = load("outlook_reply.eml")
    assert m.sender_name == "David Müller"
    assert (m.subject, m.ticket_number) == ("RE: [Ticket #1042] Printer jam", 1042)
    assert m.body == (
        "Hello,\n\nThe printer on the 3rd floor still shows “PC LOAD LETTER”. I attached "
        "nothing \u2013 sorry.\n\nRegards,\nDavid Müller"
    )
    assert m.original is not None and "have you tried turning it off" in m.original
    assert m.headers["thread-index"] == "AQHZ1234abcdEFGHijklMNOPqrstuv=="
    assert m.headers["x-ms-has-attach"] == ""


def test_an_outlook_original_message_separator() -> None:
    m = load("outlook_original_message.eml")
    assert m.body == "That worked, thank you! You can close it.\n\nErin"
    assert m.external_id == "000001d9a1b2$c3d4e5f0$a1b2c3d4$@fabrikam.example"
    assert m.ticket_number == 7


def test_an_apple_mail_reply() -> None:
    m = load("apple_mail_reply.eml")
    assert m.body == "Yes, it is still under warranty. Serial number C02XYZ123.\n\nFrank"
    assert m.external_id == "9A8B7C6D-1E2F-3A4B-5C6D-7E8F9A0B1C2D@me.example"
    assert m.references == ("5E3B1C2A@me.example", "t88-6-reply.hk1@help.example")


def test_a_french_reply_in_latin_1() -> None:
    m = load("french_reply.eml")
    assert (m.sender_name, m.ticket_number) == ("Hélène Dupré", 77)
    assert m.subject == "Re\xa0: [#77] Problème d'ouverture"
    assert m.body == (
        "Bonjour,\n\nLe problème persiste après la mise à jour. Ça plante dès l'ouverture."
        "\n\nCordialement,\nHélène"
    )
    assert m.original is not None and "a écrit :" in m.original


def test_a_german_reply_in_base64() -> None:
    m = load("german_reply.eml")
    assert (m.sender_name, m.subject, m.ticket_number) == (
        "Jürgen Weiß",
        "AW: [#55] Drucker fällt aus",
        55,
    )
    assert m.body == (
        "Hallo,\n\ndas Problem besteht weiterhin. Grüße aus München!\n\nViele Grüße\nJürgen"
    )


def test_a_spanish_reply() -> None:
    m = load("spanish_reply.eml")
    assert (m.body, m.ticket_number) == ("Ya funciona, gracias.", 12)


def test_html_only_mail_becomes_readable_text() -> None:
    m = load("html_only.eml")
    assert m.body.startswith("Hello,\n\nInvoice INV-2026-031 lists two items I did not order:")
    for piece in ("USB hub", "Docking station", "29.90 €", "Thanks & regards,\nGrace"):
        assert piece in m.body
    for hidden in ("alert", "color: red", "<p>", "&amp;", "Invoice\n\nHello"):
        assert hidden not in m.body
    assert html_converter() in {"inscriptis", "html.parser"}


def test_a_bounce_shows_its_report_type_and_keeps_the_report() -> None:
    m = load("bounce.eml")
    assert m.sender_address == "MAILER-DAEMON@mx.help.example"
    assert m.headers["content-type"].startswith("multipart/report; report-type=delivery-status")
    assert m.headers["return-path"] == "<>"
    assert m.body.startswith("This is the mail system at host mx.help.example.")
    assert "550 5.1.1 User unknown" in m.body
    kinds = [(a.content_type, a.filename.rsplit(".", 1)[-1]) for a in m.attachments]
    assert kinds == [("message/delivery-status", "txt"), ("text/rfc822-headers", "txt")]
    status = m.attachments[0].data.decode("ascii")
    assert "Final-Recipient: rfc822; nobody@acme.example" in status
    assert b"Message-ID: <t1-9-reply.hk1@help.example>" in m.attachments[1].data


def test_an_auto_reply_keeps_the_headers_screens_read() -> None:
    m = load("auto_reply.eml")
    assert m.headers["auto-submitted"] == "auto-replied"
    assert m.headers["x-autoreply"] == "yes"
    assert m.headers["precedence"] == "bulk"
    assert m.subject == "Abwesenheitsnotiz: [#42] VPN drops every hour"
    assert m.ticket_number == 42


def test_attachments_and_inline_images() -> None:
    m = load("attachments.eml")
    assert m.body == "The screen cracked when it fell. Photo below, receipt attached."
    found = [(a.filename, a.content_type, a.inline, a.content_id) for a in m.attachments]
    assert found == [
        ("photo.png", "image/png", True, "photo1@umbrella.example"),
        ("reçu n°1.pdf", "application/pdf", False, None),
        ("evil.dll", "application/octet-stream", False, None),  # the path is dropped
        ("attachment.eml", "message/rfc822", False, None),
    ]
    photo, receipt, dll, forwarded = m.attachments
    assert photo.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert receipt.data == b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    assert dll.data == b"MZ"
    assert b"Subject: Your order" in forwarded.data and b"Order 1234 confirmed." in forwarded.data


def test_a_new_request_with_copies() -> None:
    m = load("new_request.eml")
    assert (m.sender_address, m.sender_name) == ("mike@acme.example", "Mike O'Brien")
    assert m.cc == (Address("lisa@acme.example", "Lisa (IT)"), Address("nina@acme.example"))
    assert (m.ticket_number, m.in_reply_to, m.references, m.original) == (None, None, (), None)
    assert "\\\\fs01\\finance" in m.body


# ------------------------------------------------------------------ malformed input


def test_a_broken_boundary_is_read_as_text_with_a_note() -> None:
    m = load("broken_boundary.eml")
    assert "I cannot log in since this morning." in m.body
    assert any("broken boundary" in note for note in m.notes)


def test_wrong_and_unknown_charsets_degrade_with_notes() -> None:
    m = load("broken_charset.eml")
    assert m.subject.startswith("Qaplaé and ")
    assert m.body == "Café crème is what the declared charset cannot hold."
    assert any("unknown charset 'x-klingon'" in note for note in m.notes)
    assert any("text/plain part: bytes that are not UTF-8" in note for note in m.notes)


def test_raw_8bit_headers_are_read_as_utf8_else_latin_1() -> None:
    m = load("eight_bit_headers.eml")
    assert (m.sender_name, m.subject) == ("Zoë Krämer", "Prüfung für 日本")
    assert m.headers["x-legacy"] == "café"
    assert m.body == "Grüße"
    assert any("x-legacy" in note for note in m.notes)


def test_encoded_line_breaks_never_make_a_header_span_lines() -> None:
    m = load("header_injection.eml")
    assert m.subject == "Hello Bcc: everyone@help.example  body"
    assert m.headers["x-note"] == "line X-Injected: yes"
    assert "bcc" not in m.headers and "x-injected" not in m.headers
    assert all("\n" not in value and "\r" not in value for value in m.headers.values())


def test_no_sender_is_a_typed_error() -> None:
    with pytest.raises(EmailParseError, match="no sender"):
        load("no_from.eml")


def test_the_sender_header_stands_in_for_a_missing_from() -> None:
    raw = b"Sender: List <list@lists.example>\r\nSubject: x\r\n\r\nhello\r\n"
    m = parse(raw, received_at=RECEIVED)
    assert m.sender_address == "list@lists.example"
    assert any("Sender" in note for note in m.notes)


def test_deep_nesting_is_cut_at_the_depth_limit() -> None:
    m = load("deeply_nested.eml")
    assert m.body == ""
    assert any("nested deeper than 20" in note for note in m.notes)
    assert load("deeply_nested.eml", max_depth=100).body == "deep text"


def test_nesting_too_deep_for_the_standard_library_is_a_typed_error() -> None:
    depth = 5000
    head = b"From: a@b.example\r\nMIME-Version: 1.0\r\n"
    parts = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    raw = head + parts + b"Content-Type: text/plain\r\n\r\nx\r\n"
    with pytest.raises(EmailParseError, match=r"^the message nests its parts too deeply"):
        parse(raw, received_at=RECEIVED)


def test_limits_on_size_and_parts() -> None:
    raw = (CORPUS / "attachments.eml").read_bytes()
    with pytest.raises(EmailParseError, match=rf"is {len(raw)} bytes, over the limit of 100"):
        parse(raw, received_at=RECEIVED, max_bytes=100)
    small = parse(raw, received_at=RECEIVED, max_part_bytes=10)
    assert [a.filename for a in small.attachments] == ["evil.dll"]  # 2 bytes; the rest dropped
    assert any("over the limit" in note for note in small.notes)
    few = parse(raw, received_at=RECEIVED, max_parts=3)
    assert few.attachments == ()
    assert any("more than 3 parts" in note for note in few.notes)
    many = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(300))
    m = parse(
        b'From: a@b.example\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + many
        + b"--b--\r\n",
        received_at=RECEIVED,
    )
    assert m.body.count("part ") == email_in.MAX_PARTS - 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"received_at": datetime(2026, 3, 6)}, NaiveDatetimeError),
        ({"received_at": RECEIVED, "max_bytes": 0}, ValidationError),
        ({"received_at": RECEIVED, "max_depth": True}, ValidationError),
        ({"received_at": RECEIVED, "channel": " "}, ValidationError),
    ],
)
def test_bad_arguments_are_validation_errors(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        parse(b"From: a@b.example\r\n\r\nx", **kwargs)  # type: ignore[arg-type]


def test_not_bytes_is_a_parse_error() -> None:
    with pytest.raises(EmailParseError, match="an email is bytes; got str"):
        parse("From: a@b.example", received_at=RECEIVED)  # type: ignore[arg-type]
    assert issubclass(EmailParseError, HelpkitError) and issubclass(EmailParseError, ValueError)


def test_message_ids_without_brackets_and_references_capped() -> None:
    refs = " ".join(f"<r{i}@x.example>" for i in range(150))
    raw = (
        "From: a@b.example\r\nMessage-ID: bare@x.example\r\nIn-Reply-To: junk <r3@x.example>"
        f"\r\nReferences: {refs}\r\n\r\nx"
    ).encode()
    m = parse(raw, received_at=RECEIVED)
    assert (m.external_id, m.in_reply_to) == ("bare@x.example", "r3@x.example")
    assert m.references == tuple(f"r{i}@x.example" for i in range(50, 150))
    none = parse(b"From: a@b.example\r\nMessage-ID: not an id\r\n\r\nx", received_at=RECEIVED)
    assert none.external_id is None


def test_repeated_headers_are_joined_by_newlines() -> None:
    raw = b"From: a@b.example\r\nReceived: one\r\nReceived: two\r\n\tfolded\r\n\r\nx"
    assert parse(raw, received_at=RECEIVED).headers["received"] == "one\ntwo\tfolded"


@pytest.mark.parametrize(
    ("subject", "number", "rest"),
    [
        ("[#123] Printer", 123, "Printer"),
        ("Re: [#123] Printer", 123, "Printer"),
        ("RE: AW: Fwd: [Ticket #9] x", 9, "x"),
        ("Re[2]: [ticket#9] x", 9, "x"),
        ("Antw: Re:Fw: [#9]", 9, ""),
        ("Printer [#77] again", 77, "Printer again"),
        ("Printer #77", None, "Printer #77"),
        ("[#] Printer", None, "[#] Printer"),
        ("Re: Printer", None, "Printer"),
    ],
)
def test_subject_tags(subject: str, number: int | None, rest: str) -> None:
    assert subject_tag(subject) == (number, rest)


def test_decode_header_text() -> None:
    assert decode_header_text("=?utf-8?q?a?= =?utf-8?q?b?= c =?utf-8?q?d?=") == "ab c d"
    assert decode_header_text("=?iso-8859-1?b?Y2Fm6Q==?=") == "café"
    assert decode_header_text("=?utf-8*fr?q?caf=C3=A9?=") == "café"  # RFC 2231 language
    assert decode_header_text("=?rot13?q?nop?=") == "nop"  # not a text encoding: UTF-8
    assert decode_header_text("x\r\n y") == "x y"


# ------------------------------------------------------------------ fuzzing

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _only_inbound_or_parse_error(raw: bytes) -> None:
    try:
        message = parse(raw, received_at=RECEIVED)
    except EmailParseError as exc:
        reason = str(exc)
        assert reason and "\n" not in reason
        return
    assert isinstance(message, InboundMessage)
    assert "\n" not in message.subject and "\r" not in message.subject
    assert all("\r" not in value for value in message.headers.values())
    assert "\r" not in message.body


@FUZZ
@given(st.binary(max_size=2000))
@example(b"From: a@b.example\nContent-Type: multipart/mixed\n\n")
@example(b"From: a@b.example\nContent-Type: text/plain; charset=punycode\n\n" + b"\xff" * 50)
@example(b"From: a@b.example\nContent-Transfer-Encoding: base64\n\n!!!!")
@example(b"From: =?utf-16?b?//4=?= <a@b.example>\n\n")
def test_any_bytes_give_a_message_or_a_parse_error(raw: bytes) -> None:
    _only_inbound_or_parse_error(raw)


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate", "crlf", "boundary"]),
        st.integers(min_value=0, max_value=2**31),
        st.binary(min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=6,
)


def _mutate(raw: bytes, steps: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(raw)
    for kind, where, piece in steps:
        at = where % (len(data) + 1)
        if kind == "flip" and data:
            data[at % len(data)] ^= piece[0] or 0x80
        elif kind == "insert":
            data[at:at] = piece
        elif kind == "delete":
            del data[at : at + len(piece) * 8]
        elif kind == "truncate":
            del data[at:]
        elif kind == "duplicate":
            data[at:at] = data[at : at + 200]
        elif kind == "crlf":
            data[at:at] = b"\r\n"
        else:
            data[at:at] = b"\r\n--" + piece + b"\r\nContent-Type: multipart/mixed; boundary="
    return bytes(data)


@FUZZ
@given(name=st.sampled_from(sorted(p.name for p in CORPUS.glob("*.eml"))), steps=MUTATIONS)
def test_mutated_real_messages_give_a_message_or_a_parse_error(
    name: str, steps: list[tuple[str, int, bytes]]
) -> None:
    _only_inbound_or_parse_error(_mutate((CORPUS / name).read_bytes(), steps))


def test_random_mutations_of_every_corpus_file() -> None:
    """A fixed-seed sweep beside the Hypothesis one: more mutations per file, cheaply."""
    rng = random.Random(13)
    for path in sorted(CORPUS.glob("*.eml")):
        raw = path.read_bytes()
        for _ in range(40):
            steps = [
                (
                    rng.choice(["flip", "insert", "delete", "truncate", "duplicate", "crlf"]),
                    rng.randrange(2**31),
                    bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))),
                )
                for _ in range(rng.randint(1, 10))
            ]
            _only_inbound_or_parse_error(_mutate(raw, steps))


# ------------------------------------------------------------------ round trip

_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
TEXT = st.text(_CHARS, max_size=200)
WORDS = st.from_regex(r"[A-Za-z0-9.-]{1,12}", fullmatch=True)
IDS = st.builds(lambda a, b: f"<{a}@{b}.example>", WORDS, WORDS)
NAMES = st.text(_CHARS, max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=TEXT,
    body=TEXT,
    author=NAMES,
    number=st.integers(min_value=1, max_value=10**9),
    in_reply_to=st.none() | IDS,
    references=st.lists(IDS, max_size=5, unique=True),
    key=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
    html=st.booleans(),
)
@example(
    subject="VPN =?utf-8?q?x?= \r\nBcc: a@b.example",
    body="On Mon, 2 Mar 2026 at 10:00, Ana wrote:\n> x",
    author='Ana "the" <agent>',
    number=42,
    in_reply_to="<a@b.example>",
    references=["<a@b.example>"],
    key="t1-3-reply",
    html=True,
)
def test_what_helpkit_sends_parses_back(
    subject: str,
    body: str,
    author: str,
    number: int,
    in_reply_to: str | None,
    references: list[str],
    key: str,
    html: bool,
) -> None:
    message = OutboundMessage(
        ticket_id="t1",
        ticket_number=number,
        subject=f"[#{number}] {subject}",
        body=body,
        comment_id="c1",
        author_name=author,
        to=[Recipient("contact", "c1", "Bob Núñez", "bob@acme.example")],
        sent_at=RECEIVED,
        in_reply_to=in_reply_to,
        references=references,
        idempotency_key=key,
    )
    sender = parse_sender("support@help.example")
    raw = message_bytes(render(message, sender=sender, html=html), linesep="\r\n")
    back = parse(raw, received_at=RECEIVED, strip_quotes=False)
    assert (back.sender_address, back.sender_name) == (
        "support@help.example",
        name_text(author) or None,
    )
    assert back.subject == header_text(f"[#{number}] {subject}")
    assert back.ticket_number == number
    expected = body_text(body).strip("\n")
    assert back.body == (expected if expected.strip() else "")
    assert back.external_id == message_id(key, "help.example")[1:-1]
    assert back.in_reply_to == (None if in_reply_to is None else in_reply_to[1:-1])
    assert back.references == tuple(r[1:-1] for r in references)
    assert back.to == (Address("bob@acme.example", "Bob Núñez"),)
    assert back.notes == ()
