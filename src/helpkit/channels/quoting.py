"""Quoted history in email replies: where the new text ends and the quoted conversation starts.

Mail readers append the message being answered below (or, with ``>``, inside) a reply. A
helpdesk keeps only what the sender wrote now as the comment, and the whole text for audit.
:func:`split_quoted` finds the first line where the history begins:

- an attribution line, as mail readers write them (a long one may be wrapped over up to three
  lines), which must hold a digit (a date or a time) so that a sentence such as "On Monday
  the printer wrote:" is not taken for one:

  ========== ===============================================================
  English    ``On Mon, 2 Mar 2026 at 10:00, Bob <bob@example.com> wrote:``
  French     ``Le lun. 2 mars 2026 à 10:00, Bob <bob@example.com> a écrit :``
  German     ``Am 02.03.2026 um 10:00 schrieb Bob <bob@example.com>:``
  Spanish    ``El lun, 2 mar 2026 a las 10:00, Bob (<bob@example.com>) escribió:``
  Dutch      ``Op 2 mrt. 2026 om 10:00 schreef Bob <bob@example.com>:``
  Italian    ``Il giorno lun 2 mar 2026 alle ore 10:00 Bob ha scritto:``
  ========== ===============================================================

- an Outlook separator: ``-----Original Message-----`` (and its French, German, Spanish,
  Dutch and Italian forms), or a line of underscores followed by a header block;
- an Outlook header block: a ``From:`` line (``De :``, ``Von:``, ``Van:``, ``Da:``) followed
  within four lines by a ``Sent:`` or ``Date:`` line (``Envoyé :``, ``Gesendet:``,
  ``Enviado:``, ``Verzonden:``, ``Inviato:``...);
- a block of ``>``-quoted lines at the end of the message (blank lines between them
  allowed); ``>`` lines with the sender's own text after them (an inline answer) are kept.

Everything from that line on is history. When nothing precedes it (a message that is only a
quote, or a forward), nothing is stripped: the text is kept whole rather than emptied.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

__all__ = ["QuoteSplit", "split_quoted"]

_ATTRIBUTION: Final = re.compile(
    r"""^\s*(?:
        On\s.+\bwrote\s*:
      | Le\s.+\ba\s+[ée]crit\s*:
      | Am\s.+\bschrieb\b.*:
      | El\s.+\bescribi[óo]\s*:
      | Op\s.+\bschreef\b.*:
      | Il\s.+\bha\s+scritto\s*:
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
"""An attribution line (after joining up to three wrapped lines)."""

_SEPARATOR: Final = re.compile(
    r"""^\s*-{2,}\s*(?:
        Original\s+Message
      | Message\s+d'origine
      | Urspr[üu]ngliche\s+Nachricht
      | Mensaje\s+original
      | Oorspronkelijk\s+bericht
      | Messaggio\s+originale
    )\s*-{2,}\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_RULE: Final = re.compile(r"^\s*_{10,}\s*$")
_FROM: Final = re.compile(r"^\s*\**(?:From|De|Von|Van|Da)\s*:\**\s*\S", re.IGNORECASE)
_SENT: Final = re.compile(
    r"^\s*\**(?:Sent|Date|Envoy[ée]|Gesendet|Datum|Enviado(?:\s+el)?|Fecha|Verzonden|Inviato"
    r"|Data)\s*:\**\s*\S",
    re.IGNORECASE,
)
_QUOTED: Final = re.compile(r"^\s*>")
_DIGIT: Final = re.compile(r"\d")

_WRAPPED: Final = 3
"""Lines an attribution may be wrapped over."""
_HEADER_SPAN: Final = 4
"""Lines after ``From:`` where an Outlook header block's ``Sent:`` may be."""


@attrs.frozen
class QuoteSplit:
    """A message's text cut where its quoted history starts."""

    body: str
    """The new text: the lines before the history, trailing blank lines removed."""
    quoted: str
    """The history, from its first line (empty when none was found)."""

    @property
    def stripped(self) -> bool:
        """Whether a history was found and cut off."""
        return bool(self.quoted)


def _attribution_at(lines: list[str], index: int) -> bool:
    for span in range(1, _WRAPPED + 1):
        if index + span > len(lines):
            return False
        joined = " ".join(line.strip() for line in lines[index : index + span])
        if len(joined) > 400:
            return False
        if _ATTRIBUTION.match(joined) and _DIGIT.search(joined):
            return True
        if index + span >= len(lines) or not lines[index + span].strip():
            return False
    return False


def _header_block_at(lines: list[str], index: int) -> bool:
    if not _FROM.match(lines[index]):
        return False
    following = lines[index + 1 : index + 1 + _HEADER_SPAN]
    return any(_SENT.match(line) for line in following)


def _history_start(lines: list[str]) -> int | None:
    """The index of the first line of the quoted history, or None."""
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if _SEPARATOR.match(line) or _header_block_at(lines, index):
            return index
        if _RULE.match(line) and index + 1 < len(lines):
            after = next((i for i in range(index + 1, len(lines)) if lines[i].strip()), None)
            if after is not None and _header_block_at(lines, after):
                return index
        if line.lstrip()[:2].lower() in {"on", "le", "am", "el", "op", "il"} and _attribution_at(
            lines, index
        ):
            return index
    return _trailing_quote(lines)


def _trailing_quote(lines: list[str]) -> int | None:
    """The start of a block of ``>`` lines (and blank lines) that ends the text."""
    start = None
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if _QUOTED.match(line):
            start = index
        elif line.strip():
            break
    return start


def split_quoted(text: str) -> QuoteSplit:
    """``text`` cut where its quoted history starts (see the module's description).

    ``text`` has ``\\n`` line ends. The body is a prefix of ``text`` (without its trailing
    blank lines); with no history found, or none of the sender's own text before it, the
    body is ``text`` itself and ``quoted`` is empty.
    """
    lines = text.split("\n")
    cut = len(lines)
    while True:  # history above history (a quote block over an attribution) goes too
        start = _history_start(lines[:cut])
        if start is None or not "\n".join(lines[:start]).strip():
            break
        cut = start
    if cut == len(lines):
        return QuoteSplit(text, "")
    return QuoteSplit("\n".join(lines[:cut]).rstrip(), "\n".join(lines[cut:]))
