"""The command line's whole-number arguments (``helpkit.cli._numbers.int_range``)."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit.cli import _kb
from helpkit.cli._numbers import int_range


@given(low=st.integers(-5, 5), span=st.integers(0, 10), value=st.integers(-20, 20))
def test_a_number_is_taken_exactly_when_it_is_in_range(low: int, span: int, value: int) -> None:
    parse = int_range(low, low + span)
    if low <= value <= low + span:
        assert parse(f" {value} ") == value
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="must be between"):
            parse(str(value))


@pytest.mark.parametrize("text", ["", "two", "1.5", "0x10", "1e3"])
def test_what_is_no_whole_number_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected a whole number"):
        int_range(1, 10)(text)


def test_an_article_revision_is_not_capped_as_a_page_size() -> None:
    assert _kb._REVISION("5000") == 5000
    with pytest.raises(argparse.ArgumentTypeError):
        _kb._REVISION("0")
