"""A realistic mixed corpus of inbound email, written as ``.eml`` files, with its answer key.

``python bench/email_corpus.py DIR --messages 2000 --seed 1`` writes ``DIR/0000001.eml`` ...
and ``DIR/manifest.json``. The same seed gives the same bytes. Categories, in time order:

- ``new``: a new request in plain text (some with non-ASCII text: RFC 2047 subjects,
  quoted-printable UTF-8, ISO-8859-1 bodies);
- ``new_html``: a new request whose only body is HTML (tables, lists, entities);
- ``new_attachment``: a new request with one or two attachments (PNG, PDF, CSV; 4-60 KiB);
- ``reply``: the requester answering their own earlier request (``In-Reply-To`` and
  ``References`` name it, ``Re:`` subject, the earlier text quoted below in English, French,
  German or Outlook form): it belongs on that request's ticket;
- ``auto_reply``: an out-of-office answer (``Auto-Submitted: auto-replied`` and kin): must
  not create or reopen a ticket;
- ``bounce``: a delivery status notification (``multipart/report`` from MAILER-DAEMON):
  must not create a ticket;
- ``duplicate``: a byte-identical copy of an earlier message (a retried MTA delivery, a
  message fetched twice): must be ingested once.

The manifest lists every file with its category, Message-ID (without angle brackets), and for
a reply the Message-ID of the request it answers, for a duplicate the file it copies.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

__all__ = ["Entry", "write_corpus"]

DESK = "support@help.example"

FIRST = ["Ana", "Ben", "Chloé", "Dieter", "Emma", "Farid", "Greta", "Hugo", "Inès", "Jonas"]
LAST = ["Martin", "Müller", "Dubois", "Smith", "García", "Rossi", "Nowak", "Jansen", "Ødegård"]
DOMAINS = ["acme.example", "globex.example", "initech.example", "umbrella.example", "mail.example"]
TOPICS = [
    "VPN drops every ten minutes",
    "Cannot log in to the portal",
    "Invoice 2026-118 shows the wrong VAT",
    "Printer on floor 3 jams",
    "Password reset link expired",
    "Export to CSV is empty",
    "Mobile app crashes on start",
    "Need access to the finance share",
    "Slow response times since Monday",
    "Calendar invites arrive twice",
]
INTL_TOPICS = [
    "Problème de connexion à la messagerie",
    "Drucker im 2. Stock druckt nicht",
    "Factura duplicada en el portal",
    "Überweisung wurde doppelt gebucht",
    "Accès refusé au dossier partagé",
]
WORDS = [
    "the",
    "a",
    "it",
    "when",
    "we",
    "our",
    "after",
    "before",
    "since",
    "today",
    "yesterday",
    "again",
    "still",
    "error",
    "screen",
    "message",
    "button",
    "page",
    "login",
    "account",
    "server",
    "network",
    "laptop",
    "office",
    "team",
    "report",
    "please",
    "help",
    "urgent",
    "customer",
    "order",
    "invoice",
    "file",
    "folder",
    "share",
    "access",
    "update",
    "version",
]
OOO_SUBJECTS = [
    "Out of Office: {s}",
    "Automatic reply: {s}",
    "Abwesenheitsnotiz: {s}",
    "Réponse automatique : {s}",
    "Fuera de la oficina: {s}",
]


@dataclass
class Entry:
    file: str
    category: str
    message_id: str
    thread_of: str | None = None
    duplicate_of: str | None = None


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def _paragraphs(rng: random.Random) -> list[str]:
    return [
        " ".join(_sentence(rng, rng.randint(6, 14)) for _ in range(rng.randint(1, 4)))
        for _ in range(rng.randint(1, 3))
    ]


def _header(value: str) -> str:
    """A header value as RFC 2047 encoded words when it is not ASCII."""
    if value.isascii():
        return value
    return Header(value, "utf-8").encode()


def _mailbox(name: str, address: str) -> str:
    if name.isascii():
        return f'"{name}" <{address}>'
    return f"{Header(name, 'utf-8').encode()} <{address}>"


def _head(
    *,
    sender: tuple[str, str],
    subject: str,
    message_id: str,
    at: datetime,
    extra: list[str] | None = None,
) -> list[str]:
    lines = [
        "Return-Path: <" + sender[1] + ">",
        f"From: {_mailbox(*sender)}",
        f"To: Support <{DESK}>",
        f"Subject: {_header(subject)}",
        f"Date: {format_datetime(at)}",
        f"Message-ID: <{message_id}>",
        "MIME-Version: 1.0",
    ]
    return lines + (extra or [])


def _text_part(text: str, rng: random.Random) -> list[str]:
    if text.isascii():
        return ['Content-Type: text/plain; charset="us-ascii"', "", *text.split("\n")]
    if rng.random() < 0.5 and all(ord(c) < 256 for c in text):
        data = base64.encodebytes(text.encode("iso-8859-1")).decode("ascii").rstrip("\n")
        return [
            'Content-Type: text/plain; charset="iso-8859-1"',
            "Content-Transfer-Encoding: base64",
            "",
            data,
        ]
    import quopri

    data = quopri.encodestring(text.encode("utf-8")).decode("ascii")
    return [
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        data.rstrip("\n"),
    ]


def _html(paragraphs: list[str], rng: random.Random) -> str:
    rows = "".join(
        f"<tr><td>{rng.choice(WORDS)}</td><td>{rng.randint(1, 999)}</td></tr>" for _ in range(3)
    )
    body = "".join(f"<p>{p.replace('&', '&amp;')}</p>" for p in paragraphs)
    return (
        "<!DOCTYPE html><html><head><style>p{margin:0}</style></head><body>"
        f"<div>Hello&nbsp;team,</div>{body}<ul><li>first&nbsp;step</li><li>second</li></ul>"
        f"<table>{rows}</table><p>Thanks &amp; regards</p></body></html>"
    )


def _blob(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def _attachments(rng: random.Random) -> list[tuple[str, str, bytes]]:
    kinds = [
        ("screenshot.png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("report.pdf", "application/pdf", b"%PDF-1.7\n"),
        ("export.csv", "text/csv", b"id,name\n"),
    ]
    out = []
    for _ in range(rng.randint(1, 2)):
        name, ctype, magic = rng.choice(kinds)
        out.append((name, ctype, magic + _blob(rng, rng.randint(4, 60) * 1024)))
    return out


def _multipart(boundary: str, parts: list[list[str]], subtype: str = "mixed") -> list[str]:
    lines = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"', "", "This is MIME."]
    for part in parts:
        lines.append(f"--{boundary}")
        lines += part
    lines.append(f"--{boundary}--")
    return lines


def _attachment_part(name: str, ctype: str, data: bytes) -> list[str]:
    encoded = base64.encodebytes(data).decode("ascii").rstrip("\n")
    return [
        f'Content-Type: {ctype}; name="{name}"',
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{name}"',
        "",
        encoded,
    ]


def _quote(rng: random.Random, original: list[str], who: str, at: datetime) -> list[str]:
    form = rng.choice(["en", "fr", "de", "outlook"])
    if form == "en":
        head = [f"On {format_datetime(at)}, {who} <x@example> wrote:"]
    elif form == "fr":
        head = [f"Le {at:%d/%m/%Y à %H:%M}, {who} a écrit :"]
    elif form == "de":
        head = [f"Am {at:%d.%m.%Y um %H:%M} schrieb {who}:"]
    else:
        return [
            "",
            "-----Original Message-----",
            f"From: {who}",
            f"Sent: {format_datetime(at)}",
            f"To: {DESK}",
            "Subject: request",
            "",
            *original,
        ]
    return ["", *head, *[f"> {line}" for line in original]]


def _crlf(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def write_corpus(directory: Path, messages: int, seed: int = 1) -> list[Entry]:
    """Write ``messages`` .eml files and ``manifest.json`` into ``directory``."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    people = [
        (f"{rng.choice(FIRST)} {rng.choice(LAST)}", f"user{i}@{rng.choice(DOMAINS)}")
        for i in range(max(10, messages // 6))
    ]
    at = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    entries: list[Entry] = []
    written: list[tuple[Entry, bytes]] = []
    requests: list[tuple[str, tuple[str, str], str, list[str]]] = []  # id, sender, subject, text
    weights = {
        "new": 35,
        "new_html": 10,
        "new_attachment": 10,
        "reply": 20,
        "auto_reply": 8,
        "bounce": 4,
        "duplicate": 8,
    }
    names, cum = list(weights), list(weights.values())
    for n in range(1, messages + 1):
        at += timedelta(seconds=rng.randint(5, 600))
        category = rng.choices(names, cum)[0]
        if category in ("reply", "auto_reply") and not requests:
            category = "new"
        if category == "duplicate" and not written:
            category = "new"
        file = f"{n:07d}.eml"
        mid = f"{n}.{rng.getrandbits(48):012x}@{rng.choice(DOMAINS)}"
        if category == "duplicate":
            source, raw = rng.choice(written)
            entry = Entry(file, "duplicate", source.message_id, duplicate_of=source.file)
            (directory / file).write_bytes(raw)
            entries.append(entry)
            continue
        entry = Entry(file, category, mid)
        if category.startswith("new"):
            sender = rng.choice(people)
            intl = rng.random() < 0.15
            subject = rng.choice(INTL_TOPICS if intl else TOPICS)
            paragraphs = _paragraphs(rng)
            if intl:
                paragraphs[0] = (
                    "Bonjour, ça ne marche plus depuis hier. Grüße, Jürgen. " + (paragraphs[0])
                )
            text = "Hello,\n\n" + "\n\n".join(paragraphs) + f"\n\nBest,\n{sender[0]}"
            head = _head(sender=sender, subject=subject, message_id=mid, at=at)
            if category == "new":
                lines = head + _text_part(text, rng)
            elif category == "new_html":
                html = _html(paragraphs, rng)
                lines = [*head, 'Content-Type: text/html; charset="utf-8"', "", html]
            else:
                parts = [_text_part(text, rng)] + [_attachment_part(*a) for a in _attachments(rng)]
                lines = head + _multipart(f"b{n}x", parts)
            requests.append((mid, sender, subject, text.split("\n")))
        elif category == "reply":
            original_id, sender, subject, asked = rng.choice(requests[-200:])
            entry.thread_of = original_id
            answer = _paragraphs(rng)[0]
            body = [answer, *_quote(rng, asked, sender[0], at - timedelta(hours=1))]
            head = _head(
                sender=sender,
                subject=f"Re: {subject}",
                message_id=mid,
                at=at,
                extra=[f"In-Reply-To: <{original_id}>", f"References: <{original_id}>"],
            )
            lines = head + _text_part("\n".join(body), rng)
        elif category == "auto_reply":
            original_id, sender, subject, _text = rng.choice(requests[-200:])
            flavour = rng.random()
            extra = [f"In-Reply-To: <{original_id}>"]
            if flavour < 0.6:
                extra.append("Auto-Submitted: auto-replied")
            elif flavour < 0.8:
                extra += ["X-Auto-Response-Suppress: All", "X-Autoreply: yes"]
            else:
                extra += ["Precedence: bulk", "Auto-Submitted: auto-replied"]
            ooo = rng.choice(OOO_SUBJECTS).format(s=subject)
            head = _head(sender=sender, subject=ooo, message_id=mid, at=at, extra=extra)
            back = (at + timedelta(days=rng.randint(2, 14))).date()
            lines = head + _text_part(f"I am out of the office until {back}.", rng)
        else:  # bounce
            victim = rng.choice(people)[1]
            head = _head(
                sender=("Mail Delivery System", "MAILER-DAEMON@mx.help.example"),
                subject="Undelivered Mail Returned to Sender",
                message_id=mid,
                at=at,
            )
            head[0] = "Return-Path: <>"
            status = [
                "Content-Type: message/delivery-status",
                "",
                "Reporting-MTA: dns; mx.help.example",
                "",
                f"Final-Recipient: rfc822; {victim}",
                "Action: failed",
                "Status: 5.1.1",
                "Diagnostic-Code: smtp; 550 5.1.1 user unknown",
            ]
            notice = ['Content-Type: text/plain; charset="us-ascii"', "", f"{victim}: unknown."]
            returned = [
                "Content-Type: text/rfc822-headers",
                "",
                f"From: Support <{DESK}>",
                f"To: {victim}",
                "Subject: [#12] Your request",
            ]
            lines = head + _multipart(f"r{n}x", [notice, status, returned], "report")
            lines[len(head)] = (
                f'Content-Type: multipart/report; report-type=delivery-status; boundary="r{n}x"'
            )
        raw = _crlf(lines)
        (directory / file).write_bytes(raw)
        entries.append(entry)
        written.append((entry, raw))
    manifest = {"seed": seed, "messages": messages, "entries": [asdict(e) for e in entries]}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return entries


def read_manifest(directory: Path) -> list[Entry]:
    data = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    return [Entry(**e) for e in data["entries"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    entries = write_corpus(args.directory, args.messages, args.seed)
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.category] = counts.get(e.category, 0) + 1
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
