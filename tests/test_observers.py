"""``helpkit_event`` observers follow pluggy's rules: its call order, no wrappers, and every
observer call goes through pluggy's hook execution (tracing, call monitoring), one by one."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Generator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import attrs
import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import Actor, Helpdesk, hookimpl, hookspecs, list_plugins
from helpkit.errors import PluginError
from helpkit.events import CommentAdded, Event, TicketOpened
from helpkit.plugins import PluginHost
from helpkit.stores.memory import MemoryStore

ORDERS = ("plain", "tryfirst", "trylast")


def _observer(name: str, order: str, calls: list[str]) -> object:
    """A plugin named ``name`` whose ``helpkit_event`` appends its name to ``calls``."""

    def helpkit_event(event: Event) -> None:
        calls.append(name)

    marker = hookimpl(tryfirst=order == "tryfirst", trylast=order == "trylast")
    return SimpleNamespace(__name__=name, helpkit_event=marker(helpkit_event))


class Exploder:
    __name__ = "exploder"

    def __init__(self, calls: list[str] | None = None) -> None:
        self.calls = calls if calls is not None else []

    @hookimpl
    def helpkit_event(self, event: Event) -> None:
        self.calls.append(self.__name__)
        raise RuntimeError(f"observer bug on {event.TYPE}")


def _open_ticket(desk: Helpdesk) -> None:
    """One command, two events: ``ticket_opened`` #1 and ``comment_added`` #2."""
    desk.add_agent("ann", "Ann")
    bob = desk.create_contact("Bob", emails=["bob@example.com"])
    desk.open_ticket(Actor.agent("ann"), requester=bob, subject="Hello", body="Hi")


def _first_event(desk: Helpdesk) -> Event:
    [ticket] = desk.tickets()
    return desk.history(ticket.id)[0]


# ---------------------------------------------------------------------------- order


def test_observers_run_tryfirst_first_trylast_last_later_registered_first() -> None:
    calls: list[str] = []
    plugins = [
        _observer("a", "plain", calls),
        _observer("b", "tryfirst", calls),
        _observer("c", "trylast", calls),
        _observer("d", "plain", calls),
        _observer("e", "tryfirst", calls),
    ]
    desk = Helpdesk("memory://", plugins=plugins, entry_points=False)
    _open_ticket(desk)
    # pluggy's order for a normal call: tryfirst (later registered first), the others
    # (later registered first), trylast. Once per event, for both events of the command.
    assert calls == ["e", "b", "d", "a", "c"] * 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(ORDERS), min_size=1, max_size=7))
def test_observer_order_is_the_order_of_a_plain_pluggy_call(orders: list[str]) -> None:
    calls: list[str] = []
    plugins = [_observer(f"p{i}", order, calls) for i, order in enumerate(orders)]
    desk = Helpdesk("memory://", plugins=plugins, entry_points=False)
    _open_ticket(desk)
    event = _first_event(desk)

    calls.clear()
    desk.plugins.notify(event, desk)
    by_helpkit = list(calls)

    # The same plugins, registered in the same order, called by pluggy itself (the built-in
    # plugin is left out of both: only the relative order of these observers is compared).
    reference = pluggy.PluginManager(hookspecs.PROJECT)
    reference.add_hookspecs(hookspecs)
    for plugin in plugins:
        reference.register(plugin)
    calls.clear()
    reference.hook.helpkit_event(event=event, desk=desk)
    assert by_helpkit == calls


@attrs.define
class Twin:
    """One plugin implementing ``helpkit_event`` twice (through ``specname``), and unhashable
    (attrs classes compare by value, so they have no hash)."""

    calls: list[str]
    __name__ = "twin"

    @hookimpl(trylast=True)
    def helpkit_event(self, event: Event) -> None:
        self.calls.append("twin-last")

    @hookimpl(specname="helpkit_event", tryfirst=True)
    def early(self, event: Event) -> None:
        self.calls.append("twin-first")
        raise RuntimeError("twin bug")


def test_each_implementation_is_its_own_observer_even_from_one_unhashable_plugin() -> None:
    calls: list[str] = []
    twin = Twin(calls)
    with pytest.raises(TypeError):
        hash(twin)
    desk = Helpdesk(
        "memory://", plugins=[twin, _observer("plain", "plain", calls)], entry_points=False
    )
    _open_ticket(desk)
    assert calls == ["twin-first", "plain", "twin-last"] * 2
    calls.clear()
    [failure] = desk.plugins.notify(_first_event(desk), desk)
    assert str(failure) == "twin bug"
    assert calls == ["twin-first", "plain", "twin-last"]


# ---------------------------------------------------------------------------- isolation


def test_a_failing_observer_is_logged_and_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    plugins = [
        _observer("early", "tryfirst", calls),
        _observer("late", "trylast", calls),
        Exploder(calls),
        _observer("plain", "plain", calls),
    ]
    desk = Helpdesk("memory://", plugins=plugins, entry_points=False)
    with caplog.at_level(logging.ERROR, logger="helpkit.plugins"):
        _open_ticket(desk)
    assert calls == ["early", "plain", "exploder", "late"] * 2
    [ticket] = desk.tickets()
    assert ticket.seq == 2  # the command stands
    records = [r for r in caplog.records if r.name == "helpkit.plugins"]
    assert [r.getMessage() for r in records] == [
        "helpkit_event observer exploder failed on ticket_opened #1",
        "helpkit_event observer exploder failed on comment_added #2",
    ]
    assert all(r.exc_info is not None for r in records)

    calls.clear()
    failures = desk.plugins.notify(_first_event(desk), desk)
    assert [str(f) for f in failures] == ["observer bug on ticket_opened"]
    assert calls == ["early", "plain", "exploder", "late"]


def test_notify_with_no_observers_returns_no_failures() -> None:
    desk = Helpdesk("memory://", entry_points=False)
    _open_ticket(desk)
    bare = PluginHost(entry_points=False, blocked=["helpkit.builtins"])
    assert bare.notify(_first_event(desk), desk) == []


# ---------------------------------------------------------------------------- wrappers


class NewStyleWrapper:
    __name__ = "timing"

    @hookimpl(wrapper=True)
    def helpkit_event(self, event: Event) -> Generator[None, object, object]:
        return (yield)


class OldStyleWrapper:
    __name__ = "timing"

    @hookimpl(hookwrapper=True)
    def helpkit_event(self, event: Event) -> Generator[None, object, None]:
        yield


@pytest.mark.parametrize(
    ("wrapper", "kind"),
    [(NewStyleWrapper(), "wrapper=True"), (OldStyleWrapper(), "hookwrapper=True")],
    ids=["wrapper", "hookwrapper"],
)
def test_event_wrappers_are_refused_when_the_desk_is_built(wrapper: object, kind: str) -> None:
    with pytest.raises(PluginError) as caught:
        Helpdesk("memory://", plugins=[wrapper], entry_points=False)
    message = str(caught.value)
    assert "plugin 'timing'" in message
    assert kind in message
    assert "called on its own" in message  # why
    assert "tryfirst=True" in message and "trylast=True" in message  # what instead
    assert "blocked_plugins" not in message  # an explicit plugin: the host can just drop it


class _FakeEntryPoint:
    def __init__(self, name: str, obj: object) -> None:
        self.name = name
        self.group = "helpkit"
        self.value = f"fake:{name}"
        self.dist = None
        self._obj = obj

    def load(self) -> object:
        return self._obj


class _FakeDist:
    def __init__(self, entry_points: list[_FakeEntryPoint]) -> None:
        self.entry_points = entry_points
        self.metadata: Mapping[str, str] = {"name": "fake-timing-plugin"}
        self.version = "1.0"

    @property
    def name(self) -> str:
        return "fake-timing-plugin"


def test_an_installed_event_wrapper_is_refused_and_can_be_blocked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dist = _FakeDist([_FakeEntryPoint("timing", NewStyleWrapper())])
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: [dist])
    with pytest.raises(PluginError, match=r"plugin 'timing'.*blocked_plugins=\['timing'\]"):
        PluginHost()
    assert "timing" not in [p.name for p in PluginHost(blocked=["timing"]).plugins()]


def test_wrappers_of_the_other_hooks_still_work() -> None:
    """Only ``helpkit_event`` is called observer by observer; the other hooks are plain pluggy
    calls, so a wrapper around them wraps every plugin's implementation."""
    seen: list[str] = []

    class StoreWrapper:
        __name__ = "store-wrapper"

        @hookimpl(wrapper=True)
        def helpkit_register_stores(self, register: Any) -> Generator[None, object, object]:
            seen.append("before")
            result = yield
            seen.append("after")
            return result

    class Extra:
        __name__ = "extra"

        @hookimpl
        def helpkit_register_stores(self, register: Any) -> None:
            seen.append("extra")
            register("extra", lambda url: MemoryStore())

    host = PluginHost([StoreWrapper(), Extra()], entry_points=False)
    assert seen == ["before", "extra", "after"]
    assert "extra" in host.store_schemes


# ---------------------------------------------------------------------------- tracing


def _builtin_observers() -> list[str]:
    """Built-in observers, if any (none today: replies leave through ``helpkit.delivery``);
    the tests count them rather than assume."""
    return [p.name for p in list_plugins(entry_points=False) if p.observes_events]


def test_tracing_sees_each_observer_call() -> None:
    calls: list[str] = []
    desk = Helpdesk(
        "memory://",
        plugins=[_observer("quiet", "plain", calls), Exploder(calls)],
        entry_points=False,
    )
    observers = 2 + len(_builtin_observers())
    lines: list[str] = []
    stop = desk.plugins.enable_tracing(lines.append)
    with pytest.raises(PluginError, match="already enabled"):
        desk.plugins.enable_tracing(lines.append)
    _open_ticket(desk)
    trace = "".join(lines)
    # Two events, one traced call per observer and event; pluggy writes no "finish" line for
    # the two calls that raised (the exploder's).
    assert trace.count("helpkit_event [hook]") == 2 * observers
    assert trace.count("finish helpkit_event --> [] [hook]") == 2 * observers - 2
    assert trace.count("event: ") == 2 * observers

    stop()
    stop()  # stopping twice is harmless
    lines.clear()
    desk.plugins.notify(_first_event(desk), desk)
    assert lines == []
    again = desk.plugins.enable_tracing(lines.append)  # and it can be turned on again
    desk.plugins.notify(_first_event(desk), desk)
    assert "".join(lines).count("helpkit_event [hook]") == observers
    again()


# ---------------------------------------------------------------------------- monitoring


def test_call_monitoring_sees_each_observer_call_and_its_outcome() -> None:
    calls: list[str] = []
    desk = Helpdesk(
        "memory://",
        plugins=[Exploder(calls), _observer("quiet", "plain", calls)],
        entry_points=False,
    )
    before: list[tuple[str, tuple[str, ...], str]] = []
    after: list[tuple[str, tuple[str, ...], str, type[BaseException] | None]] = []

    def on_before(name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        before.append((name, tuple(i.plugin_name for i in impls), kwargs["event"].TYPE))

    def on_after(
        outcome: pluggy.Result[Any],
        name: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        error = type(outcome.exception) if outcome.exception is not None else None
        after.append((name, tuple(i.plugin_name for i in impls), kwargs["event"].TYPE, error))

    stop = desk.plugins.add_hookcall_monitoring(on_before, on_after)
    _open_ticket(desk)
    stop()

    # Later registered first: "quiet", then the exploder, then the built-in plugin (registered
    # before them) if it observes events.
    order = ["quiet", "exploder", *_builtin_observers()]
    expected = [
        (plugin, event_type)
        for event_type in (TicketOpened.TYPE, CommentAdded.TYPE)
        for plugin in order
    ]
    assert before == [("helpkit_event", (plugin,), event) for plugin, event in expected]
    assert after == [
        ("helpkit_event", (plugin,), event, RuntimeError if plugin == "exploder" else None)
        for plugin, event in expected
    ]

    before.clear()
    desk.plugins.notify(_first_event(desk), desk)
    assert before == []  # stopped


def test_plugin_listing_takes_unhashable_plugins() -> None:
    @attrs.define
    class Unhashable:
        seen: list[str] = attrs.field(factory=list)

        @hookimpl
        def helpkit_event(self, event: Event) -> None:
            self.seen.append(event.TYPE)

    plugin = Unhashable()
    desk = Helpdesk("memory://", plugins=[plugin], entry_points=False)
    listed = {info.name: info for info in desk.plugins.plugins()}
    [mine] = [info for name, info in listed.items() if "Unhashable" in name]
    assert mine.observes_events and mine.stores == () and mine.channels == ()
    assert listed["helpkit.builtins"].stores == ("memory", "sqlite", "postgresql", "postgres")
