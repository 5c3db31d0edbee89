"""The built-in screens of inbound messages: auto-replies, bounces and mail loops.

Each screen is a pure function of an :class:`~helpkit.ports.InboundMessage` (and, for loops,
of what the desk calls its own) that returns the reason to hold the message back, or
``None``. :meth:`helpkit.Helpdesk.receive` asks the ``helpkit_screen_inbound`` hook; helpkit's
own implementation (registered by :mod:`helpkit.builtins`) is :func:`screen`, which runs these
in order. A reason starts with its kind (``auto-reply:``, ``bounce:``, ``loop:``) and says
what gave the message away, so an agent looking at the suspended messages sees why.

- **auto-reply** (RFC 3834 and common practice): ``Auto-Submitted`` with any value but ``no``;
  ``Precedence: bulk``, ``junk`` or ``list``; an ``X-Autoreply`` or ``X-Autorespond``
  header; Microsoft's ``X-Auto-Response-Suppress`` naming ``All``, ``OOF`` or ``AutoReply``
  (what Exchange's own automatic messages carry; ``None`` is a person's mail); a read
  receipt (``multipart/report; report-type=disposition-notification``); a subject that
  starts like an out-of-office reply in English, French, German, Spanish, Dutch, Italian or
  Portuguese (``Automatic reply:``, ``Réponse automatique :``, ``Abwesenheitsnotiz:``...).
- **bounce**: a delivery status report (``multipart/report; report-type=delivery-status``),
  mail from ``MAILER-DAEMON`` or ``postmaster``, an empty ``Return-Path`` (``<>``: what
  delivery reports, and by RFC 3834 auto-replies, are sent with).
- **loop**: the desk's own ``X-Helpkit-Desk`` header (a message it sent came back), or a
  sender that is one of the desk's own addresses (``intake.addresses``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

from helpkit.ports import InboundMessage, IntakeContext
from helpkit.thread_tokens import DESK_HEADER

__all__ = [
    "OUT_OF_OFFICE_PREFIXES",
    "auto_reply",
    "bounce",
    "loop",
    "screen",
]

OUT_OF_OFFICE_PREFIXES: Final = (
    # English
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "vacation reply",
    "away from the office",
    # French
    "reponse automatique",
    "absence du bureau",
    "absent du bureau",
    "message d'absence",
    "hors du bureau",
    # German
    "automatische antwort",
    "abwesenheitsnotiz",
    "abwesenheit",
    "abwesend",
    "nicht im buro",
    # Spanish
    "respuesta automatica",
    "fuera de la oficina",
    "fuera de oficina",
    "ausente de la oficina",
    # Dutch
    "automatisch antwoord",
    "afwezigheidsbericht",
    "afwezig",
    "niet aanwezig",
    "buiten kantoor",
    # Italian
    "risposta automatica",
    "fuori ufficio",
    "fuori sede",
    "assente dall'ufficio",
    # Portuguese
    "resposta automatica",
    "fora do escritorio",
    "ausente do escritorio",
    "ausencia temporaria",
)
"""How out-of-office subjects start, lower-case and without accents: a subject that starts
with one (once its accents are removed), followed by a colon, a dash or nothing, or one
that starts with one in square brackets, is an auto-reply."""

_PHRASES = "|".join(re.escape(p) for p in OUT_OF_OFFICE_PREFIXES)
_OUT_OF_OFFICE = re.compile(
    rf"^(?:\[\s*(?:{_PHRASES})\s*\]|(?:{_PHRASES})(?:\s+(?:auto-?reply|notice))?\s*(?:[:\-]|$))"
)
_PRECEDENCE: Final = frozenset({"bulk", "junk", "list"})
_SUPPRESSING: Final = frozenset({"all", "oof", "autoreply"})
_DAEMONS: Final = frozenset({"mailer-daemon", "postmaster"})
_REPORT_TYPE = re.compile(r";\s*report-type\s*=\s*\"?([A-Za-z0-9_.-]+)", re.IGNORECASE)


def _values(message: InboundMessage, name: str) -> list[str]:
    """The values of header ``name`` (repeated headers are joined by newlines)."""
    value = message.headers.get(name)
    if value is None:
        return []
    return [v.strip() for v in value.split("\n")]


def _plain(text: str) -> str:
    """``text`` lower-case, without accents, its white space one space each."""
    if text.isascii():  # nothing to decompose: casefold is lower, and no accents
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.replace("\u2019", "'").split())


def _report_type(message: InboundMessage) -> str | None:
    for value in _values(message, "content-type"):
        if value.lower().startswith("multipart/report"):
            found = _REPORT_TYPE.search(value)
            return found.group(1).lower() if found else ""
    return None


def auto_reply(message: InboundMessage) -> str | None:
    """Why ``message`` is an automatic reply, or ``None``."""
    for value in _values(message, "auto-submitted"):
        keyword = value.partition(";")[0].strip().lower()
        if keyword and keyword != "no":
            return f"auto-reply: Auto-Submitted: {keyword}"
    for value in _values(message, "precedence"):
        if value.lower() in _PRECEDENCE:
            return f"auto-reply: Precedence: {value.lower()}"
    for name, label in (("x-autoreply", "X-Autoreply"), ("x-autorespond", "X-Autorespond")):
        for value in _values(message, name):
            if value.lower() not in ("", "no", "false", "0"):
                return f"auto-reply: {label} header"
    for value in _values(message, "x-auto-response-suppress"):
        named = {v.strip().lower() for v in value.split(",")}
        if named & _SUPPRESSING:
            return f"auto-reply: X-Auto-Response-Suppress: {value}"
    if _report_type(message) == "disposition-notification":
        return "auto-reply: a read receipt (disposition notification)"
    if _OUT_OF_OFFICE.match(_plain(message.subject)):
        return f"auto-reply: out-of-office subject {message.subject[:60]!r}"
    return None


def bounce(message: InboundMessage) -> str | None:
    """Why ``message`` is a delivery failure report, or ``None``."""
    report = _report_type(message)
    if report == "delivery-status":
        return "bounce: a delivery status report"
    local = message.sender_address.strip().rpartition("@")[0] or message.sender_address
    if local.strip().lower() in _DAEMONS:
        return f"bounce: sent by {message.sender_address}"
    for value in _values(message, "return-path"):
        if value.replace(" ", "") == "<>":
            return "bounce: empty Return-Path (<>)"
    return None


def loop(message: InboundMessage, *, desk_id: str, own_addresses: Iterable[str] = ()) -> str | None:
    """Why ``message`` is the desk's own mail come back, or ``None``."""
    for value in _values(message, DESK_HEADER.lower()):
        if value == desk_id:
            return f"loop: it carries this desk's {DESK_HEADER} header"
    sender = message.sender_address.strip().lower()
    if sender in {a.lower() for a in own_addresses}:
        return f"loop: sent from the desk's own address {sender}"
    return None


def screen(message: InboundMessage, desk: IntakeContext) -> str | None:
    """The first reason of the built-in screens, in order: loop, bounce, auto-reply."""
    return (
        loop(message, desk_id=desk.desk_id, own_addresses=desk.own_addresses)
        or bounce(message)
        or auto_reply(message)
    )
