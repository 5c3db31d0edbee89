"""Whole-number arguments of the command line: the argparse type of a number in a range."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["int_range"]


def int_range(low: int, high: int) -> Callable[[str], int]:
    """The argparse type of a whole number from ``low`` to ``high``: a mistake is one line,
    ``expected a whole number`` or ``must be between``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number; got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}; got {text}")
        return value

    parse.__name__ = "number"  # argparse names the type in its messages
    return parse
