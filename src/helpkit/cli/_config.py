"""The command line's configuration: where ``helpkit.toml`` is looked for, and the template.

The first of these that applies is used:

1. ``--config PATH``;
2. ``$HELPKIT_CONFIG`` (when set and not empty);
3. ``./helpkit.toml``, when it exists;
4. the per-user file, when it exists: ``$XDG_CONFIG_HOME/helpkit/helpkit.toml`` (else
   ``~/.config/helpkit/helpkit.toml``) on POSIX, ``%APPDATA%\\helpkit\\helpkit.toml`` on Windows;
5. the built-in defaults (no SLA, no tiers).

A file named by 1 or 2 must exist. The template is the package data file
``helpkit/cli/helpkit.toml``: what ``helpkit init --write-config`` and ``helpkit demo`` write.

The desk's secret (which signs the thread tokens of outbound mail) is ``$HELPKIT_SECRET`` when
set and not empty, else the text of the configuration's ``secret_file`` (its surrounding
white space removed), else none (:func:`desk_secret`).
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path

import attrs

from helpkit.cli._errors import UsageError
from helpkit.config import DeskConfig

CONFIG_FILE = "helpkit.toml"

_log = logging.getLogger("helpkit.cli")


def config_template() -> str:
    """The text of the commented ``helpkit.toml`` that ``helpkit init --write-config`` writes:
    the statuses, a Maildir channel for email, the ITIL priority matrix, an office calendar,
    SLA policies, the L1-L4 tiers and escalation rules."""
    return files("helpkit.cli").joinpath(CONFIG_FILE).read_text(encoding="utf-8")


DEMO_SECRET_FILE = "helpkit.secret"
"""The secret file ``helpkit demo`` writes beside the configuration it writes (which names it),
so the demo's satisfaction surveys carry rating links that ``helpkit rate`` accepts."""


def demo_config_template() -> str:
    """The configuration ``helpkit demo`` writes when it sets up the current directory: the
    template, with satisfaction surveys on and the secret file :data:`DEMO_SECRET_FILE`."""
    return (
        "# The desk's secret (signs the thread tokens and the rating links), written by the demo.\n"
        f'secret_file = "{DEMO_SECRET_FILE}"\n\n'
        + config_template()
        + '\n[csat]\nenabled = true\noffer_after = "24h"\nexpires_after = "7d"\n'
        'bad_rating = ["notify"]\n'
    )


def user_config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The per-user configuration file's path (whether it exists or not), or ``None`` when
    no home or application-data folder is known."""
    env = os.environ if environ is None else environ
    if os.name == "nt":
        appdata = env.get("APPDATA")
        return Path(appdata, "helpkit", CONFIG_FILE) if appdata else None
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is ignored
        return Path(xdg, "helpkit", CONFIG_FILE)
    home = env.get("HOME")
    if not home:
        try:
            home = str(Path.home())
        except (RuntimeError, KeyError):
            return None
    return Path(home, ".config", "helpkit", CONFIG_FILE)


@attrs.frozen
class ConfigChoice:
    """Which configuration file applies (``path`` ``None``: the defaults) and why."""

    path: Path | None
    source: str


def find_config(explicit: str | None, environ: Mapping[str, str] | None = None) -> ConfigChoice:
    """The configuration file the lookup order picks (see the module's docstring)."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return ConfigChoice(_named(explicit, "--config"), "--config")
    from_env = env.get("HELPKIT_CONFIG", "")
    if from_env:
        return ConfigChoice(_named(from_env, "$HELPKIT_CONFIG"), "$HELPKIT_CONFIG")
    if os.path.exists(CONFIG_FILE):
        return ConfigChoice(Path(CONFIG_FILE), "the current directory")
    user = user_config_path(env)
    if user is not None and os.path.exists(user):
        return ConfigChoice(user, "the per-user configuration")
    return ConfigChoice(None, "the built-in defaults")


def _named(text: str, where: str) -> Path:
    if not text.strip() or "\x00" in text:
        raise UsageError(f"{where} names no usable file: {text!r}")
    path = Path(text)
    if not os.path.exists(path):  # False for a name the system refuses, too
        raise UsageError(f"configuration file not found: {text} (from {where})")
    return path


def read_config(path: Path) -> DeskConfig:
    """Load a configuration file; one that is not a readable text file is a UsageError."""
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not a configuration file")
    try:
        return DeskConfig.load(path)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a configuration file (not UTF-8 text)") from None
    except OSError as exc:
        raise UsageError(f"cannot read the configuration {path}: {exc.strerror or exc}") from None


def load_config(explicit: str | None, *, demo: bool = False) -> tuple[DeskConfig, bool]:
    """The configuration, and whether it is the template that ``demo`` should write to
    ``./helpkit.toml`` (the demo sets up the current directory when nothing was named and
    there is no ``./helpkit.toml``; it writes the file once its own checks passed)."""
    env_named = bool(os.environ.get("HELPKIT_CONFIG"))
    if demo and explicit is None and not env_named and not os.path.exists(CONFIG_FILE):
        _log.info("configuration: the template, to be written to ./%s", CONFIG_FILE)
        return DeskConfig.from_dict(tomllib.loads(demo_config_template())), True
    choice = find_config(explicit)
    _log.info("configuration: %s (%s)", choice.path or "none", choice.source)
    if choice.path is None:
        return DeskConfig(), False
    return read_config(choice.path), False


SECRET_ENV = "HELPKIT_SECRET"


def desk_secret(config: DeskConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The desk's secret: ``$HELPKIT_SECRET``, else the configuration's ``secret_file``,
    else ``None``. A ``secret_file`` that cannot be read, or holds nothing, is a UsageError."""
    env = os.environ if environ is None else environ
    secret = env.get(SECRET_ENV, "").strip()
    if secret:
        return secret
    if config.secret_file is None:
        return None
    path = Path(config.secret_file)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"secret_file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read secret_file {path}: {exc.strerror or exc}") from None
    if not text:
        raise UsageError(f"secret_file {path} is empty")
    return text
