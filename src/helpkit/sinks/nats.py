# Over 600 lines: the sink and the event loop thread it drives JetStream from, which share its
# connection, cursor and shutdown.
"""The NATS JetStream sink: publishes a store's change feed to a JetStream stream.

:class:`NatsSink` reads the committed events after its cursor (``changes(after=cursor)``), a
batch at a time, publishes each to JetStream, waits for the server's acknowledgements, and only
then moves its cursor, with compare-and-set. It is at least once: a sink that stops after
publishing and before moving its cursor publishes the same events again when it starts. Each
message carries a ``Nats-Msg-Id`` made from its event's ticket and sequence number, so the
stream drops such a replay as a duplicate (within its duplicate window): the stream holds every
committed event once, in commit order.

A message, for the event of position ``p`` (see "Publishing to NATS JetStream" in the docs):

- subject ``<prefix>.<event type>.<ticket id>`` (:func:`subject`), e.g.
  ``helpkit.events.comment_added.0190d5c4e8a07b3f9c2e4a1d5b6f7081``;
- headers ``Nats-Msg-Id: <ticket id>:<seq>`` (:func:`message_id`) and ``Helpkit-Position: p``;
- body the JSON ``{"position": p, "event": <the event's helpkit.serialize form>}``
  (:func:`read_message` reads it back).

nats-py, the NATS project's client, is asyncio only: the sink runs an event loop on a thread
of its own and offers a blocking API over it (callable from any thread, and from code that runs
an event loop of its own). The client is imported when the sink connects, so helpkit imports
without the ``nats`` extra.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Final, TypeVar, cast
from urllib.parse import urlsplit

import attrs

from helpkit import serialize
from helpkit._checks import check_int
from helpkit.errors import (
    BrokerError,
    ConfigError,
    ConflictError,
    HelpkitError,
    SchemaError,
    ValidationError,
)
from helpkit.events import Event
from helpkit.ports import Change, ChangeFeed, Store, implements

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import StreamInfo

__all__ = [
    "DEFAULT_CURSOR",
    "DEFAULT_DUPLICATE_WINDOW",
    "DEFAULT_PREFIX",
    "DEFAULT_STREAM",
    "DEFAULT_URL",
    "NatsSink",
    "SinkReport",
    "message_id",
    "read_message",
    "subject",
    "subject_token",
]

log = logging.getLogger("helpkit.sinks.nats")

DEFAULT_URL: Final = "nats://127.0.0.1:4222"
DEFAULT_STREAM: Final = "HELPKIT"
DEFAULT_PREFIX: Final = "helpkit.events"
DEFAULT_CURSOR: Final = "nats"
DEFAULT_DUPLICATE_WINDOW: Final = timedelta(hours=1)
"""How long the stream the sink creates remembers message ids (JetStream's own default is two
minutes): a sink restarted within it replays its last unsaved batch without duplicates."""

POSITION_HEADER: Final = "Helpkit-Position"
MSG_ID_HEADER: Final = "Nats-Msg-Id"
EXPECTED_STREAM_HEADER: Final = "Nats-Expected-Stream"
EXPECTED_LAST_ID_HEADER: Final = "Nats-Expected-Last-Msg-Id"
_WRONG_LAST_MSG_ID: Final = 10070  # JetStream's err_code for a failed Nats-Expected-Last-Msg-Id

_SAFE_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
_MAX_BATCH = 4000  # nats-py's default limit of acknowledgements awaited at once
_LONGEST = 366 * 86_400.0

_T = TypeVar("_T")


# ------------------------------------------------------------ the message form


def subject_token(text: str) -> str:
    """``text`` as one subject token: itself when it is a letter or digit followed by letters,
    digits, ``_`` and ``-`` (helpkit's ids and event types), else ``_`` and the hex digits of
    its UTF-8 bytes (a token never starts with ``_`` otherwise, so two texts never share one)."""
    if _SAFE_TOKEN.fullmatch(text):
        return text
    return "_" + text.encode("utf-8", "surrogatepass").hex()


def subject(prefix: str, event_type: str | None = None, ticket_id: str | None = None) -> str:
    """The subject of an event of ``event_type`` on ticket ``ticket_id`` under ``prefix``; a
    type or ticket left out is the ``*`` wildcard, for a consumer's filter
    (``subject(DEFAULT_PREFIX, ticket_id=t.id)``: every event of one ticket)."""
    kind = "*" if event_type is None else subject_token(event_type)
    ticket = "*" if ticket_id is None else subject_token(ticket_id)
    return f"{prefix}.{kind}.{ticket}"


def message_id(event: Event) -> str:
    """The ``Nats-Msg-Id`` of ``event``: its ticket and sequence number, ``<ticket>:<seq>``.

    A ticket's sequence numbers are unique and never reused, and ticket ids are unique, so the
    id names one committed event, whichever sink, store copy or replay publishes it.
    """
    return f"{subject_token(event.ticket_id)}:{event.seq}"


def _body(change: Change) -> bytes:
    data = {"position": change.position, "event": serialize.to_data(change.event)}
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode("ascii")


def read_message(body: bytes | str) -> Change:
    """The change a message body carries (its position and event); SchemaError if it is not
    the body of a message the sink published."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"not a helpkit change feed message: not JSON ({exc})") from None
    if not isinstance(data, dict) or set(data) != {"position", "event"}:
        raise SchemaError("not a helpkit change feed message: expected 'position' and 'event'")
    position = data["position"]
    if type(position) is not int or position < 1:
        raise SchemaError(f"not a helpkit change feed message: position {position!r:.40}")
    return Change(position, serialize.from_data(Event, data["event"]))


@attrs.frozen
class _Message:
    subject: str
    headers: Mapping[str, str]
    body: bytes


def _message(change: Change, prefix: str) -> _Message:
    event = change.event
    return _Message(
        subject(prefix, event.TYPE, event.ticket_id),
        {MSG_ID_HEADER: message_id(event), POSITION_HEADER: str(change.position)},
        _body(change),
    )


# ------------------------------------------------------------ the report


@attrs.frozen
class SinkReport:
    """What a sink run did."""

    published: int = 0
    """Events the stream stored."""
    duplicates: int = 0
    """Events the stream already held (a replay after a stop, or another sink's): not stored
    again."""
    races: int = 0
    """Batches after which the cursor had been moved by another sink sharing its name."""
    position: int = 0
    """The cursor's position at the end of the run."""

    def __add__(self, other: SinkReport) -> SinkReport:
        return SinkReport(
            self.published + other.published,
            self.duplicates + other.duplicates,
            self.races + other.races,
            max(self.position, other.position),
        )


# ------------------------------------------------------------ the event loop thread


class _Loop:
    """An asyncio event loop running on a daemon thread of its own."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="helpkit-nats-sink", daemon=True
        )
        self._thread.start()

    def run(self, work: Awaitable[_T], timeout: float) -> _T:
        """Run ``work`` on the loop and wait for its result (TimeoutError after ``timeout``
        seconds, the work then cancelled)."""

        async def call() -> _T:
            return await work

        future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout:g} s") from None

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()


# ------------------------------------------------------------ the sink


def _seconds(value: object, name: str) -> float:
    """A positive number of seconds (a number or a timedelta), at most a year."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 < seconds <= _LONGEST
    ):
        raise ConfigError(f"{name} must be a positive number of seconds; got {value!r:.40}")
    return float(seconds)


def _redacted(url: str) -> str:
    """``url`` with its password (if any) hidden, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise ConfigError(f"the NATS URL must be text like {DEFAULT_URL}; got {url!r:.60}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad NATS URL {_redacted(url)!r}: {exc}") from None
    if parts.scheme not in ("nats", "tls") or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(
            f"a NATS URL looks like {DEFAULT_URL} (nats:// or tls://, a host and a port); "
            f"got {_redacted(url)!r}"
        )
    del port  # read only to have urlsplit check it
    return url


def _covers(pattern: str, ours: str) -> bool:
    """Whether the stream subject ``pattern`` takes every subject ``ours`` matches (``ours``
    has literal tokens, then ``*`` tokens)."""
    mine = ours.split(".")
    theirs = pattern.split(".")
    for index, token in enumerate(theirs):
        if token == ">":
            return index < len(mine)
        if index >= len(mine):
            return False
        if token != "*" and token != mine[index]:
            return False
    return len(theirs) == len(mine)


class NatsSink:
    """Publishes the change feed of ``store`` to the JetStream stream ``stream`` at ``url``.

    ``prefix`` starts every subject; the stream the sink creates (when ``stream`` does not
    exist) takes ``<prefix>.>`` and remembers message ids for ``duplicate_window``. An existing
    stream must take the sink's subjects (ConfigError otherwise); it is used as it is.
    ``cursor`` names the sink's cursor on the change feed: sinks sharing a name share the work
    (each batch is published by one of them or, racing, by both, the stream keeping one copy);
    sinks with different names (publishing to different streams) each publish everything.
    ``batch`` events are published, then acknowledged, at a time; ``timeout`` bounds each wait
    for the server.

    :meth:`start` connects and creates or checks the stream (``run_once`` and ``follow`` start
    the sink when needed); :meth:`close` (or leaving ``with``) disconnects. A server that cannot
    be reached, or that refuses or does not acknowledge a message, is a
    :class:`~helpkit.errors.BrokerError`, and the cursor is left after the last event the
    server acknowledged.
    """

    def __init__(
        self,
        store: Store,
        url: str = DEFAULT_URL,
        *,
        stream: str = DEFAULT_STREAM,
        prefix: str = DEFAULT_PREFIX,
        cursor: str = DEFAULT_CURSOR,
        duplicate_window: timedelta = DEFAULT_DUPLICATE_WINDOW,
        batch: int = 500,
        timeout: float = 5.0,
        name: str = "helpkit-sink",
    ) -> None:
        if not implements(store, ChangeFeed):
            raise ConfigError(
                f"{type(store).__name__} has no change feed (Capability.CHANGE_FEED): "
                "there is nothing to publish"
            )
        if not isinstance(stream, str) or not _STREAM_NAME.fullmatch(stream):
            raise ConfigError(
                f"a stream name is letters, digits, '_' and '-' (at most 255); got {stream!r:.60}"
            )
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix) or len(prefix) > 200:
            raise ConfigError(
                "a subject prefix is dot-separated tokens of letters, digits, '_' and '-' "
                f"(no wildcards); got {prefix!r:.60}"
            )
        if not isinstance(cursor, str) or not cursor.strip():
            raise ConfigError(f"the cursor name must be non-blank text; got {cursor!r:.60}")
        self.url = _check_url(url)
        self.stream = stream
        self.prefix = prefix
        self.cursor = cursor
        self.duplicate_window = _seconds(duplicate_window, "duplicate_window")
        self.timeout = _seconds(timeout, "timeout")
        self.name = name
        try:
            self._batch = check_int(batch, "batch", minimum=1, maximum=_MAX_BATCH)
        except ValidationError as exc:
            raise ConfigError(str(exc)) from None
        self._feed = cast(ChangeFeed, store)
        self._lock = threading.RLock()
        self._loop: _Loop | None = None
        self._client: Client | None = None
        self._js: JetStreamContext | None = None

    # ------------------------------------------------------------ life cycle

    def __enter__(self) -> NatsSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        """The stream and server, for messages (the URL's password hidden)."""
        return f"stream {self.stream} at {_redacted(self.url)}"

    def start(self) -> None:
        """Connect (if not connected) and create or check the stream."""
        with self._lock:
            if self._js is not None:
                return
            _check_client()  # ConfigError without the nats extra, before any thread starts
            if self._loop is None:
                self._loop = _Loop()
            try:
                self._client, self._js = self._call(self._connect(), "connecting to")
                self._call(self._ensure_stream(), "setting up")
            except BaseException:
                self._disconnect()
                raise

    def close(self) -> None:
        """Disconnect and stop the event loop thread (the sink starts again when used)."""
        with self._lock:
            self._disconnect()
            if self._loop is not None:
                self._loop.close()
                self._loop = None

    # ------------------------------------------------------------ publishing

    def run_once(self) -> SinkReport:
        """Publish everything committed after the cursor, a batch at a time, moving the cursor
        after each acknowledged batch. Returns what was published."""
        with self._lock:
            self.start()
            report = SinkReport()
            while True:
                cursor = self._feed.cursor(self.cursor)
                changes = self._feed.changes(after=cursor, limit=self._batch)
                if not changes:
                    return report + SinkReport(position=cursor)
                report = report + self._publish_batch(cursor, changes)

    def follow(
        self,
        stop: threading.Event,
        *,
        poll: float = 0.2,
        on_report: Callable[[SinkReport], None] | None = None,
    ) -> SinkReport:
        """Publish until ``stop`` is set: what is committed, then what gets committed (the
        feed is checked every ``poll`` seconds). A failure (the server gone, the store busy) is
        logged and tried again, waiting longer each time, up to 30 s; a configuration that
        cannot work (a ConfigError) is raised. The batch under way when ``stop`` is set is
        finished and its cursor saved."""
        poll = _seconds(poll, "poll")
        total = SinkReport()
        retry = 0.5
        while not stop.is_set():
            try:
                report = self.run_once()
            except ConfigError:
                raise
            except HelpkitError as exc:
                log.warning(
                    "publishing to NATS %s failed: %s; trying again in %g s", self.where, exc, retry
                )
                stop.wait(retry)
                retry = min(retry * 2, 30.0)
                continue
            retry = 0.5
            total = total + report
            if on_report is not None and (report.published or report.duplicates):
                on_report(report)
            while not stop.is_set() and not self._news(report.position):
                stop.wait(poll)
        return total

    def _news(self, position: int) -> bool:
        """Whether events were committed after ``position`` (True when the store cannot say:
        the next run then reports why)."""
        try:
            return self._feed.last_position() > position
        except HelpkitError:
            return True

    def _publish_batch(self, cursor: int, changes: Sequence[Change]) -> SinkReport:
        messages = [_message(change, self.prefix) for change in changes]
        try:
            acks, failure = self._call(self._publish(messages), "publishing to")
        except BrokerError:
            self._disconnect()  # what the server took is unknown: the batch goes again
            raise
        stored = sum(1 for ack in acks if not ack)
        report = SinkReport(published=stored, duplicates=len(acks) - stored)
        if acks:
            position = changes[len(acks) - 1].position
            try:
                self._feed.save_cursor(self.cursor, position, expected=cursor)
            except ConflictError:
                log.info("cursor %r was moved by another sink; reading it again", self.cursor)
                report = report + SinkReport(races=1)
            else:
                report = report + SinkReport(position=position)
        if failure is not None:
            if acks and isinstance(failure, _RefusedError) and failure.code == _WRONG_LAST_MSG_ID:
                # Another publisher stored a message between two of the batch: the rest is
                # the next batch, whose first message expects nothing.
                log.debug(
                    "batch cut after position %d: %s", changes[len(acks) - 1].position, failure
                )
                return report
            if not isinstance(failure, _RefusedError):
                self._disconnect()  # the connection may be broken: the next run makes another
            done = f"; {len(acks)} of {len(changes)} were acknowledged" if acks else ""
            raise BrokerError(
                f"NATS {self.where} did not store the event at position "
                f"{changes[len(acks)].position}: {_reason(failure)}{done}"
            )
        return report

    # ------------------------------------------------------------ the asyncio side

    def _call(self, work: Awaitable[_T], doing: str) -> _T:
        """Run ``work`` on the loop thread; the client's errors become BrokerError."""
        assert self._loop is not None
        try:
            return self._loop.run(work, self.timeout * 2 + 5)
        except HelpkitError:
            raise
        except Exception as exc:
            raise BrokerError(f"{doing} NATS {self.where} failed: {_reason(exc)}") from exc

    async def _connect(self) -> tuple[Client, JetStreamContext]:
        from nats.aio.client import Client
        from nats.errors import NoServersError

        errors: list[Exception] = []

        async def quiet(exc: Exception) -> None:
            errors.append(exc)
            log.debug("NATS client: %s", _reason(exc))

        client = Client()
        try:
            await client.connect(
                servers=[self.url],
                name=self.name,
                connect_timeout=max(1, round(self.timeout)),
                # One try (the client counts a second one as its first reconnection); after
                # that the sink reconnects by itself, on its next run.
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=quiet,
            )
        except NoServersError:
            reason = _reason(errors[-1]) if errors else "no server answered"
            raise BrokerError(f"cannot reach NATS at {_redacted(self.url)}: {reason}") from None
        return client, client.jetstream(timeout=self.timeout)

    async def _ensure_stream(self) -> None:
        from nats.errors import NoRespondersError
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

        assert self._js is not None
        js = self._js
        try:
            try:
                info = await js.stream_info(self.stream)
            except NotFoundError:
                config = StreamConfig(
                    name=self.stream,
                    description="helpkit change feed (helpkit.sinks.nats)",
                    subjects=[f"{self.prefix}.>"],
                    storage=StorageType.FILE,
                    duplicate_window=self.duplicate_window,
                )
                try:
                    info = await js.add_stream(config)
                    log.info("created NATS stream %s for %s.>", self.stream, self.prefix)
                except APIError as exc:
                    try:  # another sink may have created it meanwhile
                        info = await js.stream_info(self.stream)
                    except NotFoundError:
                        raise ConfigError(
                            f"cannot create NATS {self.where}: {_reason(exc)}"
                        ) from None
        except (NoRespondersError, ServiceUnavailableError) as exc:
            raise BrokerError(
                f"NATS at {_redacted(self.url)} has no JetStream (start nats-server with -js): "
                f"{_reason(exc)}"
            ) from None
        self._check_stream(info)

    def _check_stream(self, info: StreamInfo) -> None:
        ours = subject(self.prefix)
        subjects = list(info.config.subjects or ())
        if not any(_covers(pattern, ours) for pattern in subjects):
            raise ConfigError(
                f"NATS stream {self.stream} exists and does not take the sink's subjects "
                f"{self.prefix}.> (it takes {', '.join(subjects) or 'none'}): name another "
                "stream, or a prefix it takes"
            )
        window = info.config.duplicate_window or 0.0
        if window < self.duplicate_window:
            log.warning(
                "NATS stream %s remembers message ids for %g s only (the sink asks for %g s): "
                "a sink restarted later than that may store its last batch twice",
                self.stream,
                window,
                self.duplicate_window,
            )

    async def _publish(self, messages: Sequence[_Message]) -> tuple[list[bool], Exception | None]:
        """Publish ``messages`` in order and wait for their acknowledgements: whether each of
        the acknowledged first ones was a duplicate, and why the next one failed (if one did).

        Each message asks for its acknowledgement on a reply subject of its own (one
        subscription for the batch), so the batch is sent without waiting between messages
        and each answer is matched to its message. Each but the first expects the one before
        to be the last the stream stored (``Nats-Expected-Last-Msg-Id``; a duplicate is
        acknowledged before that check): after a message the stream refused, it refuses the
        rest of the batch too, so it never holds an event after a missing one.

        (nats-py's ``publish_async`` pipelines too, but in nats-py 2.16 an error answer, such
        as "message size exceeds maximum allowed", raises inside its handler and the
        acknowledgement never comes.)
        """
        assert self._client is not None
        client = self._client
        loop = asyncio.get_running_loop()
        answers: list[asyncio.Future[Msg]] = [loop.create_future() for _ in messages]
        inbox = client.new_inbox()

        async def answer(msg: Msg) -> None:
            index = msg.subject.rpartition(".")[2]
            if index.isdigit() and int(index) < len(answers) and not answers[int(index)].done():
                answers[int(index)].set_result(msg)

        subscription = await client.subscribe(f"{inbox}.*", cb=answer)
        failure: Exception | None = None
        sent = 0
        try:
            for message in messages:
                headers = {**message.headers, EXPECTED_STREAM_HEADER: self.stream}
                if sent:  # stored only right after the one before: nothing after a refusal
                    headers[EXPECTED_LAST_ID_HEADER] = messages[sent - 1].headers[MSG_ID_HEADER]
                await client.publish(
                    message.subject, message.body, reply=f"{inbox}.{sent}", headers=headers
                )
                sent += 1
            await client.flush(timeout=max(1, round(self.timeout)))
        except Exception as exc:  # the rest are not sent
            failure = exc
        try:
            if sent:
                await asyncio.wait(answers[:sent], timeout=self.timeout)
        finally:
            await subscription.unsubscribe()
        acks: list[bool] = []
        for future in answers[:sent]:
            if not future.done():
                return acks, TimeoutError(f"no acknowledgement within {self.timeout:g} s")
            outcome = _acknowledgement(future.result())
            if isinstance(outcome, Exception):
                return acks, outcome
            acks.append(outcome)
        return acks, failure

    def _disconnect(self) -> None:
        client, self._client, self._js = self._client, None, None
        if client is None or self._loop is None:
            return
        try:
            self._loop.run(client.close(), self.timeout + 5)
        except Exception as exc:  # closing a broken connection may fail: it is gone anyway
            log.debug("closing the NATS connection: %s", _reason(exc))


class _RefusedError(Exception):
    """JetStream's refusal of a message: its ``err_code`` and description."""

    def __init__(self, code: object, description: str) -> None:
        super().__init__(f"refused: {description} (err_code {code})")
        self.code = code


def _acknowledgement(msg: Msg) -> bool | Exception:
    """What JetStream answered to a publish: whether the message was a duplicate, or why it
    was not stored. (The answer is JSON: ``{"stream": ..., "seq": ..., "duplicate": ...}``, or
    ``{"error": {"code": ..., "err_code": ..., "description": ...}}``; a 503 status when no
    stream takes the subject.)"""
    if msg.headers and msg.headers.get("Status") == "503":
        return BrokerError("no stream takes the subject (no responders)")
    try:
        data = json.loads(msg.data)
    except ValueError:
        return BrokerError(f"not a JetStream acknowledgement: {msg.data[:80]!r}")
    if not isinstance(data, dict):
        return BrokerError(f"not a JetStream acknowledgement: {msg.data[:80]!r}")
    error = data.get("error")
    if error is not None:
        if isinstance(error, dict):
            return _RefusedError(error.get("err_code"), str(error.get("description")))
        return _RefusedError(None, repr(error)[:80])
    if not isinstance(data.get("seq"), int):
        return BrokerError(f"not a JetStream acknowledgement: {msg.data[:80]!r}")
    return data.get("duplicate") is True


def _check_client() -> None:
    try:
        import nats  # noqa: F401
    except ImportError:
        raise ConfigError(
            "publishing to NATS needs the nats-py client: pip install 'helpkit[nats]'"
        ) from None


def _reason(exc: BaseException) -> str:
    """One line saying what went wrong."""
    description = getattr(exc, "description", None)
    text = (description or str(exc)).strip().splitlines()
    name = type(exc).__name__
    if not text or not text[0]:
        return name
    return f"{name}: {text[0]}"
