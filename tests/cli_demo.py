"""The demo helpdesk the CLI tests read (``helpkit demo`` run in a folder), and the
environment they run in (no HELPKIT_ variables, a home and config folder of their own)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpkit.cli import main


def make_demo(folder: Path, tickets: int) -> Path:
    """Run ``helpkit demo --tickets N`` in ``folder`` (helpkit.db, helpkit.toml,
    helpkit-report.html, helpkit-mail/ land there); ``folder``."""
    here = os.getcwd()
    os.chdir(folder)
    try:
        assert main(["demo", "--tickets", str(tickets), "--json"]) == 0
    finally:
        os.chdir(here)
    return folder


def isolate(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Run in ``folder``, with no HELPKIT_ variables and a home and config folder inside it."""
    monkeypatch.chdir(folder)
    for key in [k for k in os.environ if k.startswith("HELPKIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(folder / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder / "xdg"))
