"""The channel conformance suite on the built-in channels, and on broken channels it catches.

Each broken channel wraps a real Maildir channel and breaks one promise (a repeat sent again,
a new id per attempt, threading headers dropped, text mangled, a failure swallowed); running
the suite's case that guards that promise against it must fail.
"""

from __future__ import annotations

import email
import email.policy
import itertools
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import attrs
import pytest

from helpkit.channels.maildir import MaildirChannel
from helpkit.channels.recording import RecordingChannel
from helpkit.ports import OutboundMessage
from helpkit.testing.conformance.channels import (
    Arrival,
    ArrivedFactory,
    ChannelConformance,
    ChannelFactory,
)


def maildir_arrivals(directory: Path) -> list[Arrival]:
    """What a Maildir holds, read back with the standard library."""
    files = [
        p
        for sub in ("new", "cur")
        if (directory / sub).is_dir()
        for p in (directory / sub).iterdir()
    ]
    files.sort(key=lambda p: p.name)
    out = []
    for path in files:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        body = msg.get_body(preferencelist=("plain",))
        out.append(
            Arrival(
                external_id=str(msg["Message-ID"] or "").strip().strip("<>") or None,
                subject=str(msg["Subject"] or ""),
                body=body.get_content() if body is not None else "",
                to=tuple(a.lower() for _, a in getaddresses(msg.get_all("To", []))),
                in_reply_to=str(msg["In-Reply-To"]).strip().strip("<>")
                if msg["In-Reply-To"]
                else None,
                references=tuple(r.strip("<>") for r in str(msg["References"] or "").split()),
            )
        )
    return out


class TestMaildirChannel(ChannelConformance):
    @pytest.fixture
    def make_channel(self, tmp_path: Path) -> ChannelFactory:
        return lambda: MaildirChannel(tmp_path / "mail", sender="Support <support@help.example>")

    @pytest.fixture
    def arrived(self, tmp_path: Path) -> ArrivedFactory:
        return lambda: maildir_arrivals(tmp_path / "mail")


class TestRecordingChannel(ChannelConformance):
    addressed = False  # it records whatever it is given, addressable or not

    @pytest.fixture
    def channel(self) -> RecordingChannel:
        return RecordingChannel()

    @pytest.fixture
    def make_channel(self, channel: RecordingChannel) -> ChannelFactory:
        return lambda: channel  # the recording is the transport: every "relay" shares it

    @pytest.fixture
    def arrived(self, channel: RecordingChannel) -> ArrivedFactory:
        def read() -> list[Arrival]:
            return [
                Arrival(
                    external_id=(channel.external_id(m) or "").strip("<>") or None,
                    subject=m.subject,
                    body=m.body,
                    to=tuple((r.address or "").lower() for r in m.to if r.address),
                    in_reply_to=m.in_reply_to,
                    references=m.references,
                )
                for m in channel.messages
            ]

        return read


# ---------------------------------------------------------------- broken channels


class _Broken:
    """A real Maildir channel with one promise broken by ``kind``."""

    counter = itertools.count()

    def __init__(self, inner: MaildirChannel, kind: str) -> None:
        self.inner, self.kind, self.name = inner, kind, "broken"

    def deliver(self, message: OutboundMessage) -> str | None:
        kind = self.kind
        if kind == "resends":  # forgets every key: each attempt is a new message
            message = attrs.evolve(
                message, idempotency_key=f"{message.idempotency_key}-{next(self.counter)}"
            )
            self.inner.deliver(message)
            return f"<fixed@{self.inner.domain}>"
        if kind == "new_ids":
            self.inner.deliver(message)
            return f"<{next(self.counter)}.x@{self.inner.domain}>"
        if kind == "unthreaded":
            message = attrs.evolve(message, in_reply_to=None, references=())
        if kind == "ascii":
            message = attrs.evolve(
                message,
                subject=message.subject.encode("ascii", "replace").decode(),
                body=message.body.encode("ascii", "replace").decode(),
            )
        if kind == "truncates":
            message = attrs.evolve(message, body=message.body[:500])
        if kind == "swallows":
            try:
                return self.inner.deliver(message)
            except Exception:
                return None
        return self.inner.deliver(message)


@pytest.mark.parametrize(
    ("case", "kind"),
    [
        ("test_a_repeat_of_a_key_arrives_once_or_under_the_same_id", "resends"),
        ("test_concurrent_repeats_of_a_key_arrive_once_or_under_the_same_id", "resends"),
        ("test_a_repeat_of_a_key_arrives_once_or_under_the_same_id", "new_ids"),
        ("test_a_message_arrives_once_with_its_subject_body_and_recipients", "new_ids"),
        ("test_threading_ids_arrive", "unthreaded"),
        ("test_non_ascii_long_and_multi_line_text_arrives_unchanged", "ascii"),
        ("test_non_ascii_long_and_multi_line_text_arrives_unchanged", "truncates"),
        ("test_a_message_nobody_can_be_reached_at_raises_and_sends_nothing", "swallows"),
    ],
)
def test_the_suite_catches_a_broken_channel(case: str, kind: str, tmp_path: Path) -> None:
    def run(directory: Path, make: Callable[[MaildirChannel], Any]) -> None:
        suite = TestMaildirChannel()

        def channel() -> Any:
            return make(MaildirChannel(directory, sender="support@help.example"))

        getattr(suite, case)(channel, lambda: maildir_arrivals(directory))

    run(tmp_path / "real", lambda channel: channel)  # the real channel passes the case
    with pytest.raises(AssertionError):
        run(tmp_path / "broken", lambda channel: _Broken(channel, kind))
