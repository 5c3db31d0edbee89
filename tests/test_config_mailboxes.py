"""``[mailbox]`` and ``[imap.NAME]``: the IMAP mailboxes of ``helpkit.toml`` (MailboxConfig)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from helpkit import DeskConfig
from helpkit.config import _MAILBOX_KEYS, MailboxConfig
from helpkit.errors import ConfigError

BASE: dict[str, Any] = {"host": "imap.example.com", "user": "support", "password_env": "PW"}


def test_one_mailbox_and_named_ones() -> None:
    config = DeskConfig.from_dict(
        {
            "mailbox": {**BASE, "interval": "5m", "flag": "\\Seen"},
            "imap": {"sales": {**BASE, "security": "plain", "port": 1143, "timeout": 10}},
        }
    )
    default, sales = config.mailboxes["default"], config.mailboxes["sales"]
    assert (default.interval, default.flag, default.security, default.where) == (
        300.0,
        "\\Seen",
        "ssl",
        "mailbox",
    )
    assert (sales.port, sales.security, sales.timeout, sales.where) == (
        1143,
        "plain",
        10.0,
        "imap.sales",
    )
    assert DeskConfig().mailboxes == {}


def test_the_password_comes_from_the_environment() -> None:
    mailbox = MailboxConfig.from_dict("default", BASE)
    assert mailbox.password({"PW": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match=r"\$PW, which is not set"):
        mailbox.password({})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({**BASE, "password": "x"}, "unknown \\[mailbox\\] keys: password"),
        ({"host": "h", "user": "u"}, "needs password_env"),
        ({**BASE, "security": "tls"}, "security is one of"),
        ({**BASE, "port": 70000}, "port is a whole number"),
        ({**BASE, "port": True}, "port is a whole number"),
        ({**BASE, "interval": "soon"}, "interval is seconds or a duration"),
        ({**BASE, "interval": -1}, "interval is seconds above 0"),
        ({**BASE, "timeout": 7200}, "timeout is seconds above 0, up to 3600"),
        ({**BASE, "batch": 0}, "batch is a whole number"),
        ({**BASE, "host": ""}, "host is a non-empty line"),
        ({**BASE, "mailbox": "In\nbox"}, "mailbox is a non-empty line"),
        ({**BASE, "move_to": 5}, "move_to is a non-empty line"),
    ],
)
def test_mistakes_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DeskConfig.from_dict({"mailbox": table})


def test_names_of_several_mailboxes() -> None:
    with pytest.raises(ConfigError, match="both name mailbox 'default'"):
        DeskConfig.from_dict({"mailbox": BASE, "imap": {"default": BASE}})
    with pytest.raises(ConfigError, match="a mailbox name is"):
        DeskConfig.from_dict({"imap": {"sales desk": BASE}})
    with pytest.raises(ConfigError, match="one table per mailbox"):
        DeskConfig.from_dict({"imap": "imap.example.com"})


@given(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12))
def test_any_unknown_key_is_refused_by_name(key: str) -> None:
    assume(key not in _MAILBOX_KEYS)
    with pytest.raises(ConfigError, match="unknown"):
        DeskConfig.from_dict({"imap": {"x": {**BASE, key: 1}}})


@given(
    st.integers(1, 65535),
    st.sampled_from(["ssl", "starttls", "plain"]),
    st.integers(1, 86400),
    st.integers(1, 1000),
)
def test_valid_tables_keep_their_values(
    port: int, security: str, interval: int, batch: int
) -> None:
    mailbox = MailboxConfig.from_dict(
        "x", {**BASE, "port": port, "security": security, "interval": interval, "batch": batch}
    )
    assert (mailbox.port, mailbox.security, mailbox.interval, mailbox.batch) == (
        port,
        security,
        float(interval),
        batch,
    )
