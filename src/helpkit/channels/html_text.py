"""HTML mail as readable text, and plain text as HTML.

:func:`to_text` uses `inscriptis <https://github.com/weblyzard/inscriptis>`_ (Apache-2.0,
layout-aware: paragraphs, lists with bullets, tables in columns) when the ``email`` extra is
installed (``pip install 'helpkit[email]'``), else a small converter built on the standard
library's :mod:`html.parser` (:func:`fallback_text`): block elements (paragraphs, divs,
headings, list items, table rows) start new lines, ``<br>`` breaks a line, list items get a
bullet, scripts, styles and the head are dropped, entities are decoded, and runs of blank
lines become one.

:func:`to_html` goes the other way for outbound mail: the text escaped, each paragraph (text
between blank lines) a ``<p>``, single line breaks ``<br>``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Final

__all__ = ["fallback_text", "html_converter", "to_html", "to_text"]

_BLOCKS: Final = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tr",
        "ul",
    }
)
_HIDDEN: Final = frozenset({"head", "script", "style", "template", "title"})
_SPACES: Final = re.compile(r"[ \t\r\n\f\v]+")
_BLANK_RUNS: Final = re.compile(r"\n{3,}")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.hidden = 0
        self.pre = 0

    def _newline(self, count: int = 1) -> None:
        text = "".join(self.pieces[-3:])
        have = len(text) - len(text.rstrip("\n"))
        if self.pieces and have < count:
            self.pieces.append("\n" * (count - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self.pieces.append("\n")
        elif tag in _BLOCKS:
            self._newline(2 if tag in {"p", "blockquote", "table", "ul", "ol"} else 1)
            if tag == "pre":
                self.pre += 1
            if tag == "li":
                self.pieces.append("* ")
        elif tag in {"td", "th"} and self.pieces and not self.pieces[-1].endswith("\n"):
            self.pieces.append("  ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.pieces.append("\n")
        elif tag in _BLOCKS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._newline(2 if tag in {"p", "blockquote", "table", "ul", "ol"} else 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            self.pieces.append(data)
            return
        text = _SPACES.sub(" ", data)
        ends_line = not self.pieces or self.pieces[-1].endswith("\n")
        if ends_line:
            text = text.lstrip(" ")
        if text:
            self.pieces.append(text)


def fallback_text(markup: str) -> str:
    """``markup`` as text with the standard library alone (see the module's description)."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.pieces).split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def _inscriptis() -> Callable[[str], str] | None:
    try:
        from inscriptis import get_text  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    convert: Callable[[str], str] = get_text
    return convert


_CONVERT: Final = _inscriptis()


def html_converter() -> str:
    """Which converter :func:`to_text` uses: ``"inscriptis"`` or ``"html.parser"``."""
    return "html.parser" if _CONVERT is None else "inscriptis"


def to_text(markup: str) -> str:
    """``markup`` (an HTML document or fragment) as readable text with ``\\n`` line ends.

    Never raises for any text: if inscriptis fails on it, the standard library's converter
    is used.
    """
    if _CONVERT is not None and markup.strip():
        try:
            text = _CONVERT(markup)
        except Exception:  # inscriptis (lxml) refuses some input: fall back
            text = fallback_text(markup)
    else:
        text = fallback_text(markup)
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def to_html(text: str) -> str:
    """Plain ``text`` as a small HTML document: escaped, paragraphs kept."""
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", normal) if p.strip()]
    body = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.strip("\n").split("\n")) + "</p>"
        for p in paragraphs
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        f"<body>\n{body}\n</body></html>\n"
    )
