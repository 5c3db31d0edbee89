"""Plugin hooks: registration, URL-based store choice, observers, entry points."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from helpkit import Actor, Helpdesk, hookimpl, list_plugins
from helpkit.channels.recording import RecordingChannel
from helpkit.errors import DuplicateError, PluginError, UnknownBackendError
from helpkit.events import CommentAdded, Event, TicketOpened
from helpkit.plugins import AUTOLOAD_ENV, PluginHost
from helpkit.ports import Store
from helpkit.stores.memory import MemoryStore
from helpkit.testing.clock import FrozenClock


class CountingStorePlugin:
    """A third-party store plugin serving ``counting://`` URLs."""

    __name__ = "counting-store"

    def __init__(self) -> None:
        self.urls: list[str] = []

    @hookimpl
    def helpkit_register_stores(self, register: Any) -> None:
        def factory(url: str) -> Store:
            self.urls.append(url)
            return MemoryStore()

        register("counting", factory)


class Observer:
    __name__ = "observer"

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    @hookimpl
    def helpkit_event(self, event: Event, desk: Helpdesk) -> None:
        # Observers run after commit: the event is already in the store.
        assert desk.history(event.ticket_id)[event.seq - 1] == event
        self.seen.append((event.TYPE, event.seq))


class Exploder:
    __name__ = "exploder"

    @hookimpl
    def helpkit_event(self, event: Event) -> None:
        raise RuntimeError("observer bug")


@pytest.fixture
def clock(helpkit_clock: FrozenClock) -> FrozenClock:
    return helpkit_clock


def test_store_chosen_by_url_scheme(clock: FrozenClock) -> None:
    plugin = CountingStorePlugin()
    desk = Helpdesk("counting://x", plugins=[plugin], entry_points=False, clock=clock)
    assert plugin.urls == ["counting://x"]
    assert isinstance(desk.store, MemoryStore)
    with pytest.raises(UnknownBackendError, match="no store is registered"):
        Helpdesk("nosuch://x", entry_points=False, clock=clock)


def test_duplicate_store_scheme_is_refused(clock: FrozenClock) -> None:
    class Clash:
        __name__ = "clash"

        @hookimpl
        def helpkit_register_stores(self, register: Any) -> None:
            register("memory", lambda url: MemoryStore())

    with pytest.raises(DuplicateError, match="memory"):
        Helpdesk(plugins=[Clash()], entry_points=False, clock=clock)


def test_duplicate_channel_name_is_refused(clock: FrozenClock) -> None:
    class Clash:
        __name__ = "clash"

        @hookimpl
        def helpkit_register_channels(self, register: Any) -> None:
            register("recording", lambda options: RecordingChannel())

    with pytest.raises(DuplicateError, match="recording"):
        Helpdesk(plugins=[Clash()], entry_points=False, clock=clock)


def test_channels_built_from_config_through_factories(clock: FrozenClock) -> None:
    desk = Helpdesk(
        config={"channels": {"email": {"type": "recording"}}}, entry_points=False, clock=clock
    )
    channel = desk.channels["email"]
    assert isinstance(channel, RecordingChannel) and channel.name == "email"
    with pytest.raises(UnknownBackendError):
        Helpdesk(config={"channels": {"sms": {}}}, entry_points=False, clock=clock)


def test_misspelled_hook_is_caught(clock: FrozenClock) -> None:
    class Typo:
        __name__ = "typo"

        @hookimpl
        def helpkit_evnt(self, event: Event) -> None:
            raise AssertionError("never called")

    with pytest.raises(PluginError, match="helpkit_evnt"):
        Helpdesk(plugins=[Typo()], entry_points=False, clock=clock)


def test_observers_see_events_after_commit_and_failures_do_not_undo(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    observer = Observer()
    desk = Helpdesk(plugins=[Exploder(), observer], entry_points=False, clock=clock)
    desk.add_agent("a", "Agent A")
    contact = desk.create_contact("Bob", emails=["bob@example.com"])
    with caplog.at_level(logging.ERROR, logger="helpkit.plugins"):
        ticket = desk.open_ticket(Actor.agent("a"), requester=contact, subject="s", body="b")
    assert observer.seen == [(TicketOpened.TYPE, 1), (CommentAdded.TYPE, 2)]
    assert desk.ticket(ticket.id).seq == 2  # the command stands despite the exploding observer
    assert "observer bug" in caplog.text


def test_observer_is_not_called_when_the_write_fails(clock: FrozenClock) -> None:
    observer = Observer()
    desk = Helpdesk(plugins=[observer], entry_points=False, clock=clock)
    desk.add_agent("a", "Agent A")
    contact = desk.create_contact("Bob", emails=["bob@example.com"])
    ticket = desk.open_ticket(Actor.agent("a"), requester=contact, subject="s")
    observer.seen.clear()
    desk.close(ticket, Actor.agent("a"))
    observer.seen.clear()
    with pytest.raises(Exception, match="read-only"):
        desk.tag(ticket, Actor.agent("a"), "x")
    assert observer.seen == []


def test_each_desk_has_its_own_plugin_manager(clock: FrozenClock) -> None:
    observer = Observer()
    with_observer = Helpdesk(plugins=[observer], entry_points=False, clock=clock)
    without = Helpdesk(entry_points=False, clock=clock)
    assert with_observer.plugins is not without.plugins
    without.add_agent("a", "A")
    contact = without.create_contact("Bob", emails=["b@example.com"])
    without.open_ticket(Actor.agent("a"), requester=contact, subject="s")
    assert observer.seen == []


def test_list_plugins_reports_builtins() -> None:
    [builtin] = [p for p in list_plugins(entry_points=False) if p.source == "builtin"]
    assert "memory" in builtin.stores
    assert "recording" in builtin.channels
    assert not builtin.observes_events  # replies leave through helpkit.delivery, not a hook


class _FakeEntryPoint:
    def __init__(self, name: str, obj: object) -> None:
        self.name = name
        self.group = "helpkit"
        self._obj = obj
        self.value = f"fake:{name}"
        self.dist = None

    def load(self) -> object:
        return self._obj


class _FakeDist:
    def __init__(self, entry_points: list[_FakeEntryPoint]) -> None:
        self.entry_points = entry_points
        self.metadata: Mapping[str, str] = {"name": "fake-helpkit-plugin"}
        self.version = "1.0"

    @property
    def name(self) -> str:
        return "fake-helpkit-plugin"


@pytest.fixture
def fake_entry_point(monkeypatch: pytest.MonkeyPatch) -> CountingStorePlugin:
    plugin = CountingStorePlugin()
    dist = _FakeDist([_FakeEntryPoint("counting", plugin)])
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: [dist])
    return plugin


@pytest.mark.usefixtures("fake_entry_point")
def test_entry_point_plugins_load_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = PluginHost()
    assert "counting" in loaded.store_schemes
    assert any(p.source == "entry point" for p in loaded.plugins())
    assert "counting" not in PluginHost(entry_points=False).store_schemes
    assert "counting" not in PluginHost(blocked=["counting"]).store_schemes
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    assert "counting" not in PluginHost().store_schemes
