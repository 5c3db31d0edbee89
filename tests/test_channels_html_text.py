"""HTML as text and text as HTML (helpkit.channels.html_text), with inscriptis (the email
extra) and with the standard library's fallback."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit.channels import html_text
from helpkit.channels.html_text import fallback_text, html_converter, to_html, to_text

PAGE = (
    "<html><head><title>T</title><style>p {color: red}</style></head><body>"
    "<p>Hello <b>Bob</b>,</p><p>two&nbsp;items &amp; more:</p>"
    "<ul><li>USB hub</li><li>Dock</li></ul>"
    "<div>line one<br>line two</div><script>alert(1)</script>"
    "<table><tr><td>Item</td><td>Price</td></tr></table>"
    "<pre>  keep\n    indent</pre></body></html>"
)


def test_the_fallback_keeps_blocks_lists_and_breaks() -> None:
    assert fallback_text(PAGE) == (
        "Hello Bob,\n\ntwo\xa0items & more:\n\n* USB hub\n* Dock\n\nline one\nline two\n\n"
        "Item  Price\n\n  keep\n    indent"
    )


@pytest.mark.parametrize("convert", [to_text, fallback_text])
def test_both_converters_drop_what_is_not_shown(convert: object) -> None:
    assert callable(convert)
    text = convert(PAGE)
    for hidden in ("alert", "color: red", "<", "&amp;"):
        assert hidden not in text
    for shown in ("Hello Bob,", "USB hub", "Dock", "Item", "Price"):
        assert shown in text
    lines = [line.strip() for line in text.split("\n")]
    assert lines.index("line two") == lines.index("line one") + 1  # <br> breaks the line


def test_inscriptis_is_used_when_installed() -> None:
    pytest.importorskip("inscriptis")
    assert html_converter() == "inscriptis"
    assert "  * USB hub" in to_text(PAGE)  # inscriptis indents its bullets


def test_without_inscriptis_the_fallback_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_text, "_CONVERT", None)
    assert html_converter() == "html.parser"
    assert to_text(PAGE) == fallback_text(PAGE)


def test_a_converter_that_fails_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(markup: str) -> str:
        raise ValueError("Document is empty")

    monkeypatch.setattr(html_text, "_CONVERT", broken)
    assert to_text(PAGE) == fallback_text(PAGE)


class _Paragraphs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self.open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p":
            self.paragraphs.append("")
            self.open = True
        elif tag == "br" and self.open:
            self.paragraphs[-1] += "\n"

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.open = False

    def handle_data(self, data: str) -> None:
        if self.open:
            self.paragraphs[-1] += data.replace("\n", "")


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r"), max_size=300))
def test_to_html_escapes_and_keeps_paragraphs(text: str) -> None:
    made = to_html(text)
    reader = _Paragraphs()
    reader.feed(made)
    expected = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    assert reader.paragraphs == expected
    assert "<script" not in made.replace(html.escape("<script"), "")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_markup_becomes_text_without_raising(markup: str) -> None:
    for convert in (to_text, fallback_text):
        assert isinstance(convert(markup), str)
