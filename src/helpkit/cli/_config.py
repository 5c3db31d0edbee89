"""The command line's configuration: ``--config``, ``./helpkit.toml``, or the shipped template.

The template is the package data file ``helpkit/cli/helpkit.toml``, the text that
``helpkit init --write-config`` and ``helpkit demo`` write to ``./helpkit.toml``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from helpkit.config import DeskConfig

CONFIG_FILE = "helpkit.toml"

_CONFIG_TEMPLATE = files("helpkit.cli").joinpath(CONFIG_FILE).read_text(encoding="utf-8")


def _load_config(path: str | None, *, write_default: bool = False) -> tuple[DeskConfig, bool]:
    """The configuration, and whether the default one was just written to ./helpkit.toml."""
    if path is None and write_default and not Path(CONFIG_FILE).exists():
        Path(CONFIG_FILE).write_text(_CONFIG_TEMPLATE, encoding="utf-8")
        return DeskConfig.load(CONFIG_FILE), True
    return _read_config(path), False


def _read_config(path: str | None) -> DeskConfig:
    if path is not None:
        return DeskConfig.load(path)
    if Path(CONFIG_FILE).exists():
        return DeskConfig.load(CONFIG_FILE)
    return DeskConfig()
