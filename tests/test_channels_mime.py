"""Outbound messages as email (helpkit.channels.mime): read back by the standard library's
parser, every header is what was given (line breaks made spaces), and no input adds a header."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser, Parser

import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpkit.channels.mime import (
    EmailRenderError,
    Mailbox,
    MissingBlobError,
    NoRecipientError,
    body_text,
    check_domain,
    file_name,
    header_text,
    message_bytes,
    message_id,
    name_text,
    parse_sender,
    render,
    to_mailbox,
    token,
)
from helpkit.errors import ConfigError, NotFoundError, ValidationError
from helpkit.ports import OutboundMessage, Recipient
from helpkit.serialize import from_data, to_data
from helpkit.tickets import Attachment

SENDER = parse_sender("Support Désk <support@help.example>")
SENT = datetime(2026, 3, 2, 9, 30, 15, tzinfo=UTC)

# Text of every kind, and text made of the pieces that break naive header writers.
_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_ANY = st.text(_CHARS, max_size=120)
_TRICKY = st.lists(
    st.sampled_from(
        [
            " ",
            "  ",
            "\t",
            "\r\n",
            "\n",
            "\r",
            "\u2028",
            "\x0b",
            "\x85",
            "=?",
            "?=",
            "=?utf-8?q?x?=",
            "é",
            "日本語",
            "\xa0",
            '"',
            "\\",
            "<",
            ">",
            ",",
            ";",
            "@",
            "(",
            ")",
            "Bcc: evil@attacker.example",
            "word",
            "x" * 90,
            "\U0001f600",
        ]
    ),
    max_size=25,
).map("".join)
TEXT = st.one_of(_ANY, _TRICKY)
NAMES = st.one_of(
    st.text(_CHARS, max_size=60),
    _TRICKY.filter(lambda s: len(s.encode()) < 500),
)
_LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._+'-]{0,20}", fullmatch=True).filter(
    lambda s: ".." not in s and not s.endswith(".")
)
_DOMAIN = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]\.(example|test|com)", fullmatch=True)
ADDRESSES = st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN)
HEADER_NAMES = st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True)
HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outbound(
    *,
    subject: str = "[#42] VPN down",
    body: str = "Hello",
    to: Sequence[Recipient] = (Recipient("contact", "c1", "Bob Núñez", "bob@acme.example"),),
    author: str = "Ana",
    key: str = "t1-7-reply",
    sent_at: datetime = SENT,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
) -> OutboundMessage:
    return OutboundMessage(
        ticket_id="t1",
        ticket_number=42,
        subject=subject,
        body=body,
        comment_id="c9",
        author_name=author,
        to=to,
        sent_at=sent_at,
        in_reply_to=in_reply_to,
        references=references,
        headers=headers or {},
        idempotency_key=key,
    )


def parsed(email: EmailMessage) -> EmailMessage:
    """``email`` written as a Maildir file holds it, and read back by the standard library."""
    data = message_bytes(email)
    if data.isascii():
        message = BytesParser(policy=policy.default).parsebytes(data)
    else:  # UTF-8 headers (RFC 6532): read as text
        message = Parser(policy=policy.default).parsestr(data.decode("utf-8"))
    assert isinstance(message, EmailMessage)
    return message


def header_lines(email: EmailMessage) -> list[str]:
    head = message_bytes(email).decode("utf-8").split("\n\n", 1)[0]
    return head.split("\n")


BASIC = {"from", "to", "subject", "date", "message-id", "mime-version"}
BASIC |= {"content-type", "content-transfer-encoding"}


# ------------------------------------------------------------------ properties


@HYPOTHESIS
@given(subject=TEXT, body=TEXT, value=TEXT)
@example(subject="a\r\nBcc: evil@attacker.example", body="", value="b\nTo: x@y.example")
@example(subject="  leading and trailing\t ", body="\r\n\r\n", value="=?utf-8?q?not_decoded?=")
@example(subject="x" * 2000, body="y" * 3000, value=" ".join(["\xe9" * 40] * 30))
def test_subject_body_and_extra_headers_read_back_as_given(
    subject: str, body: str, value: str
) -> None:
    email = render(outbound(subject=subject, body=body, headers={"X-Note": value}), sender=SENDER)
    back = parsed(email)
    assert str(back["Subject"]) == header_text(subject)
    assert str(back["X-Note"]) == header_text(value)
    assert back.get_content() == body_text(body)
    assert {name.lower() for name in back} == BASIC | {"x-note"}  # nothing injected
    assert all(len(line.encode()) <= 998 for line in header_lines(email))


@HYPOTHESIS
@given(names=st.lists(NAMES, min_size=1, max_size=4), addresses=st.data(), author=NAMES)
@example(names=['Bob "the builder", Jr. <boss@x.example>'], addresses=None, author="")
@example(names=["Zoë\r\nBcc: evil@attacker.example"], addresses=None, author="A\nB")
def test_names_read_back_as_given_and_add_no_header(
    names: list[str], addresses: st.DataObject | None, author: str
) -> None:
    emails = (
        [f"r{index}@acme.example" for index in range(len(names))]
        if addresses is None
        else [addresses.draw(ADDRESSES) for _ in names]
    )
    pairs = enumerate(zip(names, emails, strict=True))
    to = [Recipient("contact", f"c{i}", n, a) for i, (n, a) in pairs]
    sender = Mailbox("", "support@help.example")  # no name: the author's is shown
    email = render(outbound(to=to, author=author), sender=sender)
    back = parsed(email)
    read = [(a.display_name, a.addr_spec) for a in back["To"].addresses]
    assert read == [(name_text(n), a) for n, a in zip(names, emails, strict=True)]
    (sender_read,) = back["From"].addresses
    assert (sender_read.display_name, sender_read.addr_spec) == (
        name_text(author),
        "support@help.example",
    )
    assert {name.lower() for name in back} == BASIC


@HYPOTHESIS
@given(
    key=st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True), TEXT),
    first=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
)
def test_the_message_id_is_made_of_the_key_and_the_date_of_sent_at(
    key: str, first: datetime, later: timedelta
) -> None:
    once = render(outbound(key=key, sent_at=first), sender=SENDER)
    again = render(outbound(key=key, sent_at=first + later, body="other"), sender=SENDER)
    assert once["Message-ID"] == again["Message-ID"] == message_id(key or "t1.c9", "help.example")
    back = parsed(once)
    assert back["Message-ID"].strip() == message_id(key or "t1.c9", "help.example")
    assert back["Date"].datetime == first.replace(microsecond=0)


@HYPOTHESIS
@given(st.lists(TEXT, min_size=2, max_size=2, unique=True))
def test_different_keys_make_different_tokens(keys: list[str]) -> None:
    first, second = (token(k) for k in keys)
    assert first != second
    for made in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9_-]+|x\.[0-9a-f]{40}", made)


@HYPOTHESIS
@given(
    in_reply_to=st.one_of(st.none(), TEXT, ADDRESSES.map(lambda a: f"<{a}>")),
    references=st.lists(st.one_of(TEXT, ADDRESSES, ADDRESSES.map(lambda a: f"<{a}>"))),
)
def test_threading_headers_keep_message_ids_and_leave_out_the_rest(
    in_reply_to: str | None, references: list[str]
) -> None:
    email = render(outbound(in_reply_to=in_reply_to, references=references), sender=SENDER)
    back = parsed(email)
    names = {name.lower() for name in back}
    assert names - BASIC <= {"in-reply-to", "references"}

    def as_id(value: str) -> str | None:
        text = value.strip()
        text = text if text.startswith("<") else f"<{text}>"
        inner = text[1:-1]
        ok = text.endswith(">") and inner and all(33 <= ord(c) <= 126 for c in inner)
        usable = ok and "<" not in inner and ">" not in inner and "=?" not in inner
        return text if usable else None

    wanted = [i for i in dict.fromkeys(as_id(r) for r in references) if i is not None]
    if wanted:
        assert str(back["References"]).split() == wanted
    else:
        assert "References" not in back
    replied = None if in_reply_to is None else as_id(in_reply_to)
    assert (None if back["In-Reply-To"] is None else str(back["In-Reply-To"])) == replied


# ------------------------------------------------------------------ examples


def test_a_reply_as_an_email() -> None:
    message = outbound(
        subject="[#42] VPN down — très lent",
        body="Bonjour Bob,\nwe are on it.\n",
        in_reply_to="<t1-3-reply@help.example>",
        references=["<first@acme.example>", "<t1-3-reply@help.example>"],
        headers={"X-Helpkit-Notice": "sla"},
    )
    text = message_bytes(render(message, sender=SENDER)).decode("ascii")
    assert text == (
        "From: =?utf-8?b?U3VwcG9ydCBEw6lzaw==?= <support@help.example>\n"
        "To: =?utf-8?b?Qm9iIE7DusOxZXo=?= <bob@acme.example>\n"
        "Subject: [#42] VPN down =?utf-8?b?4oCUIHRyw6hz?= lent\n"
        "Date: Mon, 02 Mar 2026 09:30:15 +0000\n"
        "Message-ID: <t1-7-reply@help.example>\n"
        "In-Reply-To: <t1-3-reply@help.example>\n"
        "References: <first@acme.example> <t1-3-reply@help.example>\n"
        "X-Helpkit-Notice: sla\n"
        'Content-Type: text/plain; charset="utf-8"\n'
        "Content-Transfer-Encoding: 7bit\n"
        "MIME-Version: 1.0\n"
        "\n"
        "Bonjour Bob,\n"
        "we are on it.\n"
    )


def test_long_headers_are_folded_and_unfold_to_the_same_text() -> None:
    subject = "Printer on the third floor " * 8 + "é" * 50
    email = render(outbound(subject=subject), sender=SENDER)
    lines = header_lines(email)
    assert all(len(line) <= 78 for line in lines)
    assert sum(line.startswith(" ") for line in lines) >= 3
    assert str(parsed(email)["Subject"]) == subject.strip()


def test_recipients_without_a_usable_address_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    to = [
        Recipient("contact", "c1", "No Address", None),
        Recipient("contact", "c2", "Bad", "not an address"),
        Recipient("contact", "c3", "Injected", "x@y.example\nBcc: evil@attacker.example"),
        Recipient("agent", "ana", "Ana", "ana@help.example"),
    ]
    with caplog.at_level(logging.WARNING, logger="helpkit.channels"):
        back = parsed(render(outbound(to=to), sender=SENDER))
    assert [a.addr_spec for a in back["To"].addresses] == ["ana@help.example"]
    assert "Bcc" not in back
    assert caplog.text.count("no usable email address") == 3


def test_no_usable_recipient_is_a_typed_error() -> None:
    to = [Recipient("contact", "c1", "No Address", None), Recipient("agent", "a", "A", "a@")]
    with pytest.raises(NoRecipientError, match=r"#42: no recipient .*No Address \(contact:c1\)"):
        render(outbound(to=to), sender=SENDER)
    with pytest.raises(NoRecipientError):
        render(outbound(to=[]), sender=SENDER)
    assert issubclass(NoRecipientError, ValidationError)


def test_a_non_ascii_address_makes_utf8_headers() -> None:
    to = [Recipient("contact", "c1", "Zoë", "zoë@example.com")]
    email = render(outbound(to=to), sender=SENDER)
    data = message_bytes(email)
    assert not data.isascii() and b"zo\xc3\xab@example.com" in data
    (read,) = parsed(email)["To"].addresses
    assert (read.display_name, read.username, read.domain) == ("Zoë", "zoë", "example.com")


def test_an_international_domain_is_written_in_idna_form() -> None:
    box = to_mailbox("Ana", "ana@bücher.example")
    assert box is not None and box.address == "ana@xn--bcher-kva.example"
    assert check_domain("Bücher.example") == "xn--bcher-kva.example"


def test_odd_local_parts_are_quoted() -> None:
    to = [Recipient("contact", "c1", "Odd", 'a..b"c@acme.example')]
    (read,) = parsed(render(outbound(to=to), sender=SENDER))["To"].addresses
    assert (read.username, read.domain) == ('a..b"c', "acme.example")


def test_a_very_long_name_is_shortened() -> None:
    to = [Recipient("contact", "c1", "Ñ" * 400, "n@acme.example")]
    email = render(outbound(to=to), sender=SENDER)
    (read,) = parsed(email)["To"].addresses
    assert read.display_name == "Ñ" * 298 + "..."
    assert all(len(line) <= 998 for line in header_lines(email))


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"Bcc": "evil@attacker.example"}, "written by helpkit"),
        ({"message-id": "<x@y>"}, "written by helpkit"),
        ({"Content-Type": "text/html"}, "written by helpkit"),
        ({"X Bad": "v"}, "not a header name"),
        ({"X-Bad:": "v"}, "not a header name"),
        ({"X-\xe9": "v"}, "not a header name"),
        ({"": "v"}, "not a header name"),
    ],
)
def test_extra_headers_cannot_replace_or_break_the_message(
    headers: dict[str, str], says: str
) -> None:
    with pytest.raises(EmailRenderError, match=says):
        render(outbound(headers=headers), sender=SENDER)


@pytest.mark.parametrize(
    ("text", "name", "address"),
    [
        ("support@help.example", "", "support@help.example"),
        ("Support <support@help.example>", "Support", "support@help.example"),
        ('"Desk, L1" <l1@help.example>', "Desk, L1", "l1@help.example"),
    ],
)
def test_senders(text: str, name: str, address: str) -> None:
    assert parse_sender(text) == Mailbox(name, address)


@pytest.mark.parametrize(
    "text", ["", "   ", "support", "Support <>", "a@b", "x@y.example\nBcc: z@w.example", "@x.com"]
)
def test_bad_senders_are_configuration_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="sender"):
        parse_sender(text)


@pytest.mark.parametrize("text", ["", "localhost", "-bad-.example", "a..b", "a b.example", 3])
def test_bad_domains_are_configuration_errors(text: object) -> None:
    with pytest.raises(ConfigError, match="domain"):
        check_domain(text)


def test_the_domain_of_message_ids_can_differ_from_the_senders() -> None:
    email = render(outbound(), sender=SENDER, domain="mail.help.example")
    assert email["Message-ID"] == "<t1-7-reply@mail.help.example>"
    assert token("t1-7-reply") == "t1-7-reply"
    assert token("a key with spaces").startswith("x.")


def test_texts() -> None:
    assert header_text(" a\r\nb\u2028c\t") == "a b c"
    assert name_text(" Ana \t  \xa0 Núñez\n") == "Ana Núñez"
    assert name_text("\xa0Ana") == "\xa0Ana"
    assert body_text("") == "\n"
    assert body_text("a\r\nb\rc\n") == "a\nb\nc\n"
    assert body_text("a\n\n") == "a\n\n"


# ------------------------------------------------------------------ HTML, Reply-To, attachments


class DictBlobs:
    """A blob store in a dict (the BlobStore protocol, as the built-in ones keep it)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        self.data[key] = data
        return key

    def get(self, sha256: str) -> bytes:
        try:
            return self.data[sha256]
        except KeyError:
            raise NotFoundError(f"no blob {sha256}") from None

    def exists(self, sha256: str) -> bool:
        return sha256 in self.data

    def delete(self, sha256: str) -> bool:
        return self.data.pop(sha256, None) is not None

    def close(self) -> None:
        self.data.clear()


def attachment_of(
    blobs: DictBlobs,
    data: bytes,
    filename: str,
    content_type: str = "application/pdf",
    *,
    inline: bool = False,
    content_id: str | None = None,
) -> Attachment:
    return Attachment(
        id=f"a{len(blobs.data)}",
        filename=filename,
        content_type=content_type,
        size=len(data),
        sha256=blobs.put(data),
        inline=inline,
        content_id=content_id,
    )


def with_attachments(*attachments: Attachment, body: str = "See attached.") -> OutboundMessage:
    return attrs.evolve(outbound(body=body), attachments=attachments)


def test_an_html_alternative_escapes_the_text_and_keeps_paragraphs() -> None:
    body = "Hello <Bob> & co,\nline two\n\nSecond paragraph."
    back = parsed(render(outbound(body=body), sender=SENDER, html=True))
    assert back.get_content_type() == "multipart/alternative"
    plain, rich = back.iter_parts()
    assert isinstance(plain, EmailMessage) and isinstance(rich, EmailMessage)
    assert plain.get_content() == body_text(body)
    assert rich.get_content_type() == "text/html"
    assert "<p>Hello &lt;Bob&gt; &amp; co,<br>\nline two</p>\n<p>Second paragraph.</p>" in (
        rich.get_content()
    )
    assert {name.lower() for name in back} == BASIC - {"content-transfer-encoding"}


def test_reply_to_is_written_and_cannot_come_from_extra_headers() -> None:
    reply_to = parse_sender("Help Desk <help@help.example>")
    back = parsed(render(outbound(), sender=SENDER, reply_to=reply_to))
    (read,) = back["Reply-To"].addresses
    assert (read.display_name, read.addr_spec) == ("Help Desk", "help@help.example")
    with pytest.raises(EmailRenderError, match="written by helpkit"):
        render(outbound(headers={"Reply-To": "evil@attacker.example"}), sender=SENDER)


def test_attachments_are_read_from_the_blob_store() -> None:
    blobs = DictBlobs()
    pdf = attachment_of(blobs, b"%PDF-1.4 receipt", "reçu n°1.pdf")
    png = attachment_of(
        blobs, b"\x89PNG\r\n\x1a\n", "logo.png", "IMAGE/PNG", inline=True, content_id="logo@x"
    )
    eml = attachment_of(blobs, b"From: a@b.example\n\nhi\n", "fwd.eml", "message/rfc822")
    back = parsed(render(with_attachments(pdf, png, eml), sender=SENDER, html=True, blobs=blobs))
    assert back.get_content_type() == "multipart/mixed"
    body, *files = back.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    found = [
        (
            p.get_filename(),
            p.get_content_type(),
            p.get_content_disposition(),
            p["Content-ID"],
            p.get_payload(decode=True),
        )
        for p in files
    ]
    assert found == [
        ("reçu n°1.pdf", "application/pdf", "attachment", None, b"%PDF-1.4 receipt"),
        ("logo.png", "image/png", "inline", "<logo@x>", b"\x89PNG\r\n\x1a\n"),
        # message/* cannot be sent base64-encoded: sent as bytes
        ("fwd.eml", "application/octet-stream", "attachment", None, b"From: a@b.example\n\nhi\n"),
    ]
    assert all("MIME-Version" not in part for part in back.walk() if part is not back)


def test_missing_attachment_bytes_are_a_typed_error() -> None:
    blobs = DictBlobs()
    gone = attachment_of(blobs, b"bytes", "a.txt", "text/plain")
    message = with_attachments(gone)
    with pytest.raises(MissingBlobError, match=r"'a\.txt' .* has no blob store"):
        render(message, sender=SENDER)
    other = DictBlobs()
    with pytest.raises(MissingBlobError, match="is not in the blob store"):
        render(message, sender=SENDER, blobs=other)
    other.data[gone.sha256] = b"other bytes"
    with pytest.raises(MissingBlobError, match="other bytes under that address"):
        render(message, sender=SENDER, blobs=other)
    assert issubclass(MissingBlobError, NotFoundError)


@HYPOTHESIS
@given(name=TEXT.filter(lambda s: s.strip()), content_type=st.sampled_from(["text/plain", "x"]))
@example(name="a\r\nBcc: evil@attacker.example.txt", content_type="text/plain")
@example(name="../../etc/passwd", content_type="text/plain")
@example(name="x" * 500 + ".pdf", content_type="application/pdf")
def test_file_names_read_back_cleaned_and_add_no_header(name: str, content_type: str) -> None:
    blobs = DictBlobs()
    file = attachment_of(blobs, b"data", name, content_type)
    back = parsed(render(with_attachments(file), sender=SENDER, blobs=blobs))
    _, part = back.iter_parts()
    assert part.get_filename() == file_name(name)
    assert "/" not in file_name(name) and "\n" not in file_name(name)
    assert len(file_name(name)) <= 200
    assert part.get_payload(decode=True) == b"data"
    assert {name.lower() for name in back} == BASIC - {"content-transfer-encoding"}
    assert set(part.keys()) <= {
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
    }


def test_outbound_attachments_are_kept_in_the_stored_form_only_when_there_are_some() -> None:
    plain = outbound()
    assert "attachments" not in to_data(plain)  # stored text of older messages is unchanged
    blobs = DictBlobs()
    message = with_attachments(
        attachment_of(blobs, b"png", "a.png", "image/png", inline=True, content_id="a@x")
    )
    data = to_data(message)
    assert data["attachments"][0]["filename"] == "a.png"
    assert from_data(OutboundMessage, data) == message
    assert from_data(OutboundMessage, to_data(plain)) == plain
