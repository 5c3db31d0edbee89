"""The channel conformance suite: what every :class:`helpkit.ports.Channel` must do.

Subclass :class:`ChannelConformance` in your test suite and supply two fixtures:

- ``make_channel``: a zero-argument callable returning a channel over the transport under
  test. Each call may return a new object (a relay that restarted, another process); all of
  them deliver to the **same** place, so what one sent the next can recognise.
- ``arrived``: a zero-argument callable returning what reached that place so far, as
  :class:`Arrival` values, in any order: read the transport's far end (the SMTP server's
  mailbox, the Maildir folder, the HTTP server's log) and, for email, turn each message into
  an :class:`Arrival` with :func:`arrival_of` after parsing it back with
  :func:`helpkit.channels.email_in.parse`.

Class attributes say what the transport can promise:

- ``dedupes`` (default True): a message handed over again under the same
  :attr:`~helpkit.ports.OutboundMessage.idempotency_key` arrives once. Transports that cannot
  remember what they sent (SMTP, a webhook) set it False; the suite then checks that every
  repeat carries the **same** external id (Message-ID, ``webhook-id``), so the receiving side
  can drop it.
- ``threads`` (default True): ``in_reply_to``, ``references`` and the thread token arrive.
- ``addressed`` (default True): messages go to the recipients' addresses, and a message with
  no addressable recipient is refused (raises) without anything arriving.
- ``round_trip_settings``: the Hypothesis settings of the round-trip property (real
  transports are slow: few examples by default).

Cases: a message arrives with its subject, body and recipients intact (non-ASCII, long and
multi-line text included, and arbitrary text under Hypothesis); the returned external id is
the one that arrived; repeats of a key, sequential and concurrent, arrive once (or carry one
id); different keys are different messages with different ids; threading ids and the thread
token arrive; a message nobody can be reached at raises. ``tests/test_channel_conformance.py``
runs the suite against deliberately broken channels that it must catch.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit.ports import Channel, InboundMessage, OutboundMessage, Recipient, missing_members

__all__ = [
    "Arrival",
    "ArrivedFactory",
    "ChannelConformance",
    "ChannelFactory",
    "arrival_of",
    "outbound",
]

ChannelFactory = Callable[[], Channel]
"""Builds a channel over the transport under test."""


@attrs.frozen(kw_only=True)
class Arrival:
    """What reached the far end of a transport, as the suite compares it."""

    external_id: str | None
    """The id it arrived under (an email's Message-ID without angle brackets)."""
    subject: str
    body: str
    to: tuple[str, ...] = ()
    """The addresses it was sent to, lower-case."""
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


ArrivedFactory = Callable[[], list[Arrival]]
"""Reads what reached the far end of the transport (in any order)."""


def arrival_of(message: InboundMessage) -> Arrival:
    """An email (or any message parsed back into an :class:`~helpkit.ports.InboundMessage`)
    as an :class:`Arrival`: the full text before quote stripping is the body that arrived."""
    return Arrival(
        external_id=message.external_id,
        subject=message.subject,
        body=message.original if message.original is not None else message.body,
        to=tuple(a.address.lower() for a in message.to),
        in_reply_to=message.in_reply_to,
        references=message.references,
    )


_SENT_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ANA = Recipient("contact", "ana", "Ana Lima", "ana@customer.example")
_BEN = Recipient("contact", "ben", "Bénédicte Müller", "ben@customer.example")


def outbound(key: str = "t1-2-reply", **fields: object) -> OutboundMessage:
    """A reply as the relay builds it, with idempotency key ``key`` (``fields`` override)."""
    base: dict[str, object] = {
        "ticket_id": "t1",
        "ticket_number": 42,
        "subject": "[#42] VPN drops every ten minutes",
        "body": "Hello Ana,\n\nplease restart the client and tell us.\n\nRegards,\nSam",
        "comment_id": "c2",
        "author_name": "Sam Agent",
        "to": (_ANA,),
        "sent_at": _SENT_AT,
        "idempotency_key": key,
    }
    base.update(fields)
    return OutboundMessage(**base)  # type: ignore[arg-type]


def _text(value: str) -> str:
    """Text as transports may legitimately reshape it: line ends, trailing blanks."""
    lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _subject(value: str) -> str:
    return " ".join(value.split())


_LINE = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=60
)


class ChannelConformance:
    """The cases every channel must pass (see the module documentation for the fixtures)."""

    dedupes: ClassVar[bool] = True
    threads: ClassVar[bool] = True
    addressed: ClassVar[bool] = True
    round_trip_settings: ClassVar[settings] = settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )

    # ------------------------------------------------------------ fixtures

    @pytest.fixture
    def make_channel(self) -> ChannelFactory:
        """Override: a zero-argument callable returning a channel over the transport."""
        pytest.fail(f"{type(self).__name__} must define a `make_channel` fixture")

    @pytest.fixture
    def arrived(self) -> ArrivedFactory:
        """Override: a zero-argument callable returning what reached the transport's end."""
        pytest.fail(f"{type(self).__name__} must define an `arrived` fixture")

    # ------------------------------------------------------------ helpers

    def _one(self, arrived: ArrivedFactory, before: Sequence[Arrival] = ()) -> Arrival:
        """The one message that arrived besides those ``before`` (in any order: transports
        need not keep one)."""
        left = Counter(before)
        got = []
        for arrival in arrived():
            if left[arrival] > 0:
                left[arrival] -= 1
            else:
                got.append(arrival)
        assert len(got) == 1, f"expected one message to arrive, {len(got)} did"
        return got[0]

    def _check_same(self, sent: OutboundMessage, got: Arrival) -> None:
        assert _subject(got.subject) == _subject(sent.subject), "the subject changed"
        assert _text(got.body) == _text(sent.body), "the body changed"
        if self.addressed:
            wanted = sorted(r.address.lower() for r in sent.to if r.address)
            assert sorted(got.to) == wanted, "it did not go to the recipients' addresses"

    # ------------------------------------------------------------ cases

    def test_the_channel_satisfies_the_protocol(self, make_channel: ChannelFactory) -> None:
        channel = make_channel()
        assert missing_members(channel, Channel) == ()
        assert isinstance(channel.name, str) and channel.name.strip()

    def test_a_message_arrives_once_with_its_subject_body_and_recipients(
        self, make_channel: ChannelFactory, arrived: ArrivedFactory
    ) -> None:
        sent = outbound(to=(_ANA, _BEN))
        external_id = make_channel().deliver(sent)
        got = self._one(arrived)
        self._check_same(sent, got)
        if external_id is not None:
            assert external_id.strip("<>") == (got.external_id or "").strip("<>"), (
                "deliver must return the id the message arrived under"
            )

    def test_non_ascii_long_and_multi_line_text_arrives_unchanged(
        self, make_channel: ChannelFactory, arrived: ArrivedFactory
    ) -> None:
        paragraph = "Ça ne marche plus — Grüße aus Köln, 東京 から 🚀. " * 12
        sent = outbound(
            subject="[#42] Réponse: l'accès au dossier « Finances » échoue 🚫 " + "x" * 90,
            body="\n\n".join([paragraph] * 20) + "\n> a line that looks quoted\n.\n..",
        )
        make_channel().deliver(sent)
        self._check_same(sent, self._one(arrived))

    def test_a_repeat_of_a_key_arrives_once_or_under_the_same_id(
        self, make_channel: ChannelFactory, arrived: ArrivedFactory
    ) -> None:
        sent = outbound()
        first = make_channel().deliver(sent)
        again = make_channel().deliver(sent)  # another relay, after a restart
        assert first == again, "every attempt of one key must return the same external id"
        self._check_repeats(arrived(), 2)

    def _check_repeats(self, got: list[Arrival], attempts: int) -> None:
        if self.dedupes:
            assert len(got) == 1, f"a key handed over {attempts} times arrived {len(got)} times"
        else:
            assert 1 <= len(got) <= attempts
            ids = {g.external_id for g in got}
            assert len(ids) == 1 and None not in ids, (
                "every repeat of a key must arrive under one external id, so the receiver "
                f"can drop it; got {sorted(map(str, ids))}"
            )

    def test_concurrent_repeats_of_a_key_arrive_once_or_under_the_same_id(
        self, make_channel: ChannelFactory, arrived: ArrivedFactory
    ) -> None:
        sent = outbound()
        channels = [make_channel() for _ in range(4)]
        ids: list[str | None] = []
        failures: list[BaseException] = []
        start = threading.Barrier(len(channels))

        def deliver(channel: Channel) -> None:
            try:
                start.wait(30)
                ids.append(channel.deliver(sent))
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=deliver, args=(c,)) for c in channels]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not failures, f"a concurrent repeat failed: {failures[0]!r}"
        assert len(set(ids)) == 1, f"concurrent repeats returned different ids: {ids}"
        self._check_repeats(arrived(), len(channels))

    def test_different_keys_are_different_messages(
        self, make_channel: ChannelFactory, arrived: ArrivedFactory
    ) -> None:
        channel = make_channel()
        a = channel.deliver(outbound("t1-2-reply"))
        b = channel.deliver(outbound("t1-3-reply", body="A second answer."))
        got = arrived()
        assert len(got) == 2, f"two keys, {len(got)} messages arrived"
        assert got[0].external_id != got[1].external_id, "two messages arrived under one id"
        if a is not None or b is not None:
            assert a != b, "deliver returned one id for two different messages"

    def test_threading_ids_arrive(
        self, make_channel: ChannelFactory, arrived: ArrivedFactory
    ) -> None:
        if not self.threads:
            pytest.skip("the suite declares threads = False for this channel")
        sent = outbound(
            in_reply_to="first.abc@customer.example",
            references=("root.1@customer.example", "first.abc@customer.example"),
        )
        make_channel().deliver(sent)
        got = self._one(arrived)
        assert (got.in_reply_to or "").strip("<>") == sent.in_reply_to, "In-Reply-To was lost"
        assert tuple(r.strip("<>") for r in got.references) == sent.references, (
            "References were lost or reordered"
        )

    def test_the_thread_token_arrives_in_the_external_id(
        self, make_channel: ChannelFactory, arrived: ArrivedFactory
    ) -> None:
        if not self.threads:
            pytest.skip("the suite declares threads = False for this channel")
        if "thread_token" not in attrs.fields_dict(OutboundMessage):
            pytest.skip("this helpkit has no thread tokens")
        token = "hk1-t1-0123456789abcdefghij"
        sent = outbound(thread_token=token)
        make_channel().deliver(sent)
        got = self._one(arrived)
        assert token in (got.external_id or ""), (
            "the thread token must be in the external id a reply will reference"
        )

    def test_a_message_nobody_can_be_reached_at_raises_and_sends_nothing(
        self, make_channel: ChannelFactory, arrived: ArrivedFactory
    ) -> None:
        if not self.addressed:
            pytest.skip("the suite declares addressed = False for this channel")
        nobody = Recipient("contact", "zed", "Zed", None)
        try:
            make_channel().deliver(outbound(to=(nobody,)))
        except Exception:  # any failure will do: the relay records it and retries
            pass
        else:
            raise AssertionError("deliver must raise when no recipient can be reached")
        assert arrived() == [], "a message with no address must not arrive anywhere"

    def test_arbitrary_text_round_trips(
        self, make_channel: ChannelFactory, arrived: ArrivedFactory
    ) -> None:
        counter = iter(range(1, 10_000))
        channel = make_channel()

        @self.round_trip_settings
        @given(
            subject=_LINE.filter(lambda s: s.strip() != ""),
            body=st.lists(_LINE, min_size=1, max_size=8).map("\n".join),
        )
        def round_trip(subject: str, body: str) -> None:
            before = arrived()
            sent = outbound(f"t1-{next(counter)}-reply", subject=subject, body=body)
            channel.deliver(sent)
            self._check_same(sent, self._one(arrived, before))

        round_trip()
