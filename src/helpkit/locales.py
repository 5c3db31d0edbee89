"""Language tags and the variant a reader gets: the exact tag, else its primary language,
else the default.

Shared by every text kept in several languages: notification templates
(:class:`~helpkit.notifications.MessageTemplate`) and knowledge base articles
(:class:`~helpkit.knowledge.Article`). Tags are compared lower-case (``pt-BR`` is ``pt-br``).
"""

from __future__ import annotations

import re
from collections.abc import Container
from typing import Final

from helpkit.errors import ValidationError

__all__ = ["check_locale", "choose_variant", "primary_language"]

_LOCALE: Final = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")


def check_locale(value: object, what: str = "a locale") -> str:
    """``value`` as a lower-case language tag (``de``, ``pt-br``); ValidationError if it is
    not one."""
    if not isinstance(value, str) or not _LOCALE.fullmatch(value):
        raise ValidationError(
            f"{what} is a language tag such as 'de' or 'pt-BR'; got {value!r:.60}"
        )
    return value.lower()


def primary_language(tag: str) -> str:
    """The primary language of a tag: ``pt`` for ``pt-br``."""
    return tag.lower().split("-", 1)[0]


def choose_variant(variants: Container[str], language: str | None, default: str = "") -> str:
    """The variant a reader of ``language`` gets among ``variants`` (lower-case tags): the
    exact tag, else its primary language, else ``default``."""
    if language is None:
        return default
    tag = language.lower()
    if tag in variants:
        return tag
    primary = primary_language(tag)
    return primary if primary in variants else default
