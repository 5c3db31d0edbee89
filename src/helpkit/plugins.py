"""The plugin manager behind a :class:`~helpkit.Helpdesk`: one per desk, typed, no globals.

Built-in stores and channels register through the same hooks as third-party plugins. Plugins
are found in the ``helpkit`` entry point group unless turned off (``entry_points=False`` or the
``HELPKIT_DISABLE_PLUGIN_AUTOLOAD`` environment variable); single plugins can be blocked by name.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs
import pluggy

from helpkit import hookspecs
from helpkit.errors import (
    ConfigError,
    DuplicateError,
    HelpkitError,
    PluginError,
    UnknownBackendError,
    ValidationError,
)
from helpkit.events import Event
from helpkit.hookspecs import BlobStoreFactory, ChannelFactory, Scrubber, StoreFactory
from helpkit.ports import (
    BlobStore,
    Channel,
    DeskContext,
    InboundMessage,
    IntakeContext,
    Store,
    missing_members,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "AfterHookCall",
    "BeforeHookCall",
    "PluginHost",
    "PluginInfo",
    "list_plugins",
]

ENTRY_POINT_GROUP = "helpkit"
AUTOLOAD_ENV = "HELPKIT_DISABLE_PLUGIN_AUTOLOAD"

log = logging.getLogger("helpkit.plugins")

_R = TypeVar("_R")

BeforeHookCall = Callable[[str, Sequence[pluggy.HookImpl], Mapping[str, Any]], None]
"""``before(hook_name, hook_impls, kwargs)``, called ahead of every hook call."""
AfterHookCall = Callable[
    [pluggy.Result[Any], str, Sequence[pluggy.HookImpl], Mapping[str, Any]], None
]
"""``after(outcome, hook_name, hook_impls, kwargs)``, called after every hook call."""

BUILTIN_PLUGINS = ("helpkit.builtins",)


@attrs.frozen
class PluginInfo:
    """A registered plugin: its name, where it came from, and what it registered."""

    name: str
    source: str
    """``"builtin"``, ``"entry point"`` or ``"explicit"``."""
    distribution: str | None
    version: str | None
    stores: tuple[str, ...]
    channels: tuple[str, ...]
    observes_events: bool
    blob_stores: tuple[str, ...] = ()
    """The URL schemes of the blob stores it registers."""
    screens_inbound: bool = False
    """Whether it screens inbound messages (``helpkit_screen_inbound``)."""


def _autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class PluginHost:
    """A typed facade over one :class:`pluggy.PluginManager`."""

    def __init__(
        self,
        plugins: Sequence[object] = (),
        *,
        entry_points: bool = True,
        blocked: Iterable[str] = (),
    ) -> None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        for name in blocked:
            pm.set_blocked(name)
        self._pm = pm
        self._sources: dict[str, str] = {}
        for module_name in BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            self._register(module, module_name, "builtin")
        if entry_points and not _autoload_disabled():
            # By name: pluggy's get_plugins() is a set, which unhashable plugins break.
            before = {name for name, _ in pm.list_name_plugin()}
            try:
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            except Exception as exc:
                raise PluginError(f"loading a helpkit entry point plugin failed: {exc}") from exc
            for loaded_name, _ in pm.list_name_plugin():
                if loaded_name not in before:
                    self._sources[loaded_name] = "entry point"
        for index, plugin in enumerate(plugins):
            label = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{index}"
            self._register(plugin, str(label), "explicit")
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc)) from exc
        self._observers = self._collect_observers()
        # The hook's own executor: what ``pm.hook.helpkit_event(...)`` runs, including the
        # tracing and monitoring added to the manager later, here given one implementation at
        # a time. (``subset_hook_caller`` would need every observer plugin to be hashable, and
        # cannot split a plugin implementing the hook twice through ``specname``.)
        self._execute_event = pm.hook.helpkit_event._hookexec
        self._tracing: Callable[[], None] | None = None
        self._stores = self._collect_stores()
        self._channels = self._collect_channels()
        self._blob_stores = self._collect_blob_stores()
        self._scrubbers: Mapping[str, Scrubber] = self._collect(
            "helpkit_register_scrubbers", "scrubber", "scrubber", "scrubber name"
        )

    def _register(self, plugin: object, name: str, source: str) -> None:
        if self._pm.is_blocked(name):
            return
        try:
            registered: str | None = self._pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(f"plugin {name!r}: {exc}") from exc
        if registered is not None:
            self._sources[registered] = source

    def _collect_observers(self) -> tuple[tuple[pluggy.HookImpl], ...]:
        """The ``helpkit_event`` implementations in the order pluggy calls them, one per call.

        pluggy keeps a hook's implementations with the first-called last, so this is their
        reverse: tryfirst ones, then the others from the last registered, then trylast ones.
        Each is wrapped in a tuple of one because :meth:`notify` runs them one by one through
        pluggy's hook execution. Plugins are fixed once the host is built, so this is computed
        once.
        """
        impls = self._pm.hook.helpkit_event.get_hookimpls()
        for impl in impls:
            if impl.wrapper or impl.hookwrapper:
                kind = "wrapper=True" if impl.wrapper else "hookwrapper=True"
                hint = (
                    f", or block the plugin with blocked_plugins=[{impl.plugin_name!r}]"
                    if self._sources.get(impl.plugin_name) == "entry point"
                    else ""
                )
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: its helpkit_event is a hook wrapper "
                    f"({kind}), which helpkit does not support: each helpkit_event observer is "
                    "called on its own so that a failing one cannot stop the others, so there "
                    "is no single call of all observers for a wrapper to wrap. Make it a plain "
                    "observer and order it with @hookimpl(tryfirst=True) or "
                    f"@hookimpl(trylast=True){hint}"
                )
        return tuple((impl,) for impl in reversed(impls))

    def _collect_stores(self) -> Mapping[str, StoreFactory]:
        return self._collect("helpkit_register_stores", "store", "store scheme", "store scheme")

    def _collect_channels(self) -> Mapping[str, ChannelFactory]:
        return self._collect("helpkit_register_channels", "channel", "channel", "channel name")

    def _collect_blob_stores(self) -> Mapping[str, BlobStoreFactory]:
        return self._collect(
            "helpkit_register_blob_stores", "blob store", "blob store scheme", "blob store scheme"
        )

    def _collect(self, hook: str, kind: str, entry: str, key: str) -> Mapping[str, Any]:
        """Call the registering ``hook`` of every plugin: the factories of ``kind`` they
        register by ``key`` (each once, each callable)."""
        found: dict[str, Any] = {}

        def register(name: str, factory: Any) -> None:
            _check_name(name, key)
            if name in found:
                raise DuplicateError(f"{entry} {name!r} is registered twice")
            if not callable(factory):
                raise PluginError(f"{kind} factory for {name!r} is not callable")
            found[name] = factory

        caller = getattr(self._pm.hook, hook)
        _typed(lambda: caller(register=register), f"registering {kind}s")
        return MappingProxyType(found)

    @property
    def store_schemes(self) -> tuple[str, ...]:
        """The URL schemes a store is registered for."""
        return tuple(sorted(self._stores))

    @property
    def blob_store_schemes(self) -> tuple[str, ...]:
        """The URL schemes a blob store is registered for."""
        return tuple(sorted(self._blob_stores))

    @property
    def scrubber_names(self) -> tuple[str, ...]:
        """The names scrubbers are registered under (``[privacy] scrubbers`` picks them)."""
        return tuple(sorted(self._scrubbers))

    def scrubbers(self, names: Sequence[str]) -> list[Scrubber]:
        """The scrubbers registered under ``names``, in that order (ConfigError naming an
        unknown one)."""
        found = []
        for name in names:
            scrubber = self._scrubbers.get(name)
            if scrubber is None:
                known = ", ".join(self.scrubber_names) or "none"
                raise ConfigError(f"no scrubber is registered as {name!r} (known: {known})")
            found.append(scrubber)
        return found

    @property
    def channel_names(self) -> tuple[str, ...]:
        """The names channel factories are registered under."""
        return tuple(sorted(self._channels))

    def open_store(self, url: str) -> Store:
        """Build the store registered for ``url``'s scheme."""
        scheme = _scheme(url)
        factory = self._stores.get(scheme)
        if factory is None:
            known = ", ".join(self.store_schemes) or "none"
            raise UnknownBackendError(
                f"no store is registered for {url!r} (scheme {scheme!r}; known: {known})"
            )
        store = _typed(lambda: factory(url), f"the store factory for {scheme!r}")
        missing = missing_members(store, Store)
        if missing:
            raise PluginError(
                f"store factory for {scheme!r} returned {store!r:.80}, not a Store "
                f"(it lacks {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''})"
            )
        return store

    def open_blob_store(self, url: str) -> BlobStore:
        """Build the blob store registered for ``url``'s scheme (``memory://``,
        ``file:///folder``...); an unknown scheme raises UnknownBackendError."""
        if not isinstance(url, str):
            raise ValidationError(f"a blob store URL is text; got {url!r:.80}")
        scheme = _scheme(url)
        factory = self._blob_stores.get(scheme)
        if factory is None:
            known = ", ".join(self.blob_store_schemes) or "none"
            raise UnknownBackendError(
                f"no blob store is registered for {url!r} (scheme {scheme!r}; known: {known})"
            )
        blobs = _typed(lambda: factory(url), f"the blob store factory for {scheme!r}")
        missing = missing_members(blobs, BlobStore)
        if missing:
            raise PluginError(
                f"blob store factory for {scheme!r} returned {blobs!r:.80}, not a BlobStore "
                f"(it lacks {', '.join(missing)})"
            )
        return blobs

    def make_channel(self, name: str, options: Mapping[str, Any] | None = None) -> Channel:
        """Build the channel registered as ``name`` with ``options``."""
        factory = self._channels.get(name)
        if factory is None:
            known = ", ".join(self.channel_names) or "none"
            raise UnknownBackendError(f"no channel is registered as {name!r} (known: {known})")
        channel = _typed(
            lambda: factory(MappingProxyType(dict(options or {}))),
            f"the channel factory {name!r}",
        )
        missing = missing_members(channel, Channel)
        if missing:
            raise PluginError(
                f"channel factory {name!r} returned {channel!r:.80}, not a Channel "
                f"(it lacks {', '.join(missing)})"
            )
        return channel

    def notify(self, event: Event, desk: DeskContext) -> list[BaseException]:
        """Call every ``helpkit_event`` observer in pluggy's order, each on its own.

        The order is pluggy's for a hook call: ``tryfirst`` observers first, ``trylast`` ones
        last, the others from the last registered to the first. Each observer is a separate
        pluggy hook call of that one implementation, so hook tracing and call monitoring see
        it; one that raises is logged (logger ``helpkit.plugins``) and does not stop the
        others. Returns the exceptions raised, in call order.
        """
        failures: list[BaseException] = []
        if not self._observers:
            return failures
        kwargs = {"event": event, "desk": desk}
        execute = self._execute_event
        for impls in self._observers:
            try:
                execute("helpkit_event", impls, kwargs, False)
            except Exception as exc:
                log.exception(
                    "helpkit_event observer %s failed on %s #%s",
                    impls[0].plugin_name,
                    event.TYPE,
                    event.seq,
                )
                failures.append(exc)
        return failures

    def screen_inbound(self, message: InboundMessage, desk: IntakeContext) -> str | None:
        """The first reason a ``helpkit_screen_inbound`` implementation gives to suspend
        ``message`` (``None``: none does). A screen that raises fails the call (an error
        that is not a HelpkitError becomes a PluginError naming the hook); one that returns
        something other than text or ``None`` is a PluginError."""
        reason = _typed(
            lambda: self._pm.hook.helpkit_screen_inbound(message=message, desk=desk),
            "an inbound screen (helpkit_screen_inbound)",
        )
        if reason is None:
            return None
        if not isinstance(reason, str) or not reason.strip():
            raise PluginError(
                f"an inbound screen (helpkit_screen_inbound) returned {reason!r:.60}: a screen "
                "returns the reason to suspend a message (non-empty text) or None"
            )
        return reason

    def enable_tracing(self, writer: Callable[[str], object]) -> Callable[[], None]:
        """Write pluggy's trace of every hook call to ``writer``; returns a function to stop.

        Each ``helpkit_event`` observer call shows as its own ``helpkit_event [hook]`` entry
        with its arguments and result. One trace at a time: call the returned function before
        enabling another.
        """
        if self._tracing is not None:
            raise PluginError("tracing is already enabled on this plugin host")
        root = self._pm.trace.root
        root.setwriter(writer)
        undo_monitoring = self._pm.enable_tracing()

        def undo() -> None:
            if self._tracing is not undo:
                return
            undo_monitoring()
            root.setwriter(None)
            self._tracing = None

        self._tracing = undo
        return undo

    def add_hookcall_monitoring(
        self, before: BeforeHookCall, after: AfterHookCall
    ) -> Callable[[], None]:
        """Call ``before`` and ``after`` around every hook call; returns a function to stop.

        This is :meth:`pluggy.PluginManager.add_hookcall_monitoring` on this host's manager:
        ``before(hook_name, hook_impls, kwargs)`` and ``after(outcome, hook_name, hook_impls,
        kwargs)``. Each ``helpkit_event`` observer is a call of its own, with ``hook_impls``
        holding just that observer and ``outcome.exception`` what it raised. Stop monitors in
        the reverse order they were added.
        """
        return self._pm.add_hookcall_monitoring(before, after)

    def _registered_by(self, plugin: object, hook_name: str) -> tuple[str, ...]:
        """The names ``plugin``'s own implementations of a registration hook register."""
        names: list[str] = []
        for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:  # by identity: plugins need not be hashable
                impl.function(register=lambda name, factory: names.append(name))
        return tuple(names)

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin and what it contributes."""
        dists = {
            self._pm.get_name(plugin): dist for plugin, dist in self._pm.list_plugin_distinfo()
        }
        infos: list[PluginInfo] = []
        for name, plugin in self._pm.list_name_plugin():
            if plugin is None:
                continue  # blocked
            stores = self._registered_by(plugin, "helpkit_register_stores")
            channels = self._registered_by(plugin, "helpkit_register_channels")
            blob_stores = self._registered_by(plugin, "helpkit_register_blob_stores")
            observes = any(
                impl.plugin is plugin for impl in self._pm.hook.helpkit_event.get_hookimpls()
            )
            screens = any(
                impl.plugin is plugin
                for impl in self._pm.hook.helpkit_screen_inbound.get_hookimpls()
            )
            dist = dists.get(name)
            infos.append(
                PluginInfo(
                    name=name,
                    source=self._sources.get(name, "explicit"),
                    distribution=dist.project_name if dist is not None else None,
                    version=dist.version if dist is not None else None,
                    stores=tuple(stores),
                    channels=tuple(channels),
                    observes_events=observes,
                    blob_stores=blob_stores,
                    screens_inbound=screens,
                )
            )
        return infos


def _scheme(url: str) -> str:
    """The scheme of a store or blob store URL (``"sqlite"`` for ``"sqlite:///x.db"``)."""
    scheme = urlsplit(url).scheme if "://" in url or url.endswith(":") else ""
    if not scheme:
        scheme = url.partition(":")[0] if ":" in url else url
    return scheme


def _typed(call: Callable[[], _R], what: str) -> _R:
    """``call()``, with an error a plugin raised that is not a HelpkitError turned into a
    PluginError naming what failed (a HelpkitError, such as a store's ValidationError for a
    bad URL, passes as it is)."""
    try:
        return call()
    except HelpkitError:
        raise
    except Exception as exc:
        raise PluginError(f"{what} failed: {type(exc).__name__}: {exc}") from exc


def _check_name(name: str, what: str) -> None:
    if (
        not isinstance(name, str)
        or not name
        or not name.replace("-", "").replace("_", "").isalnum()
    ):
        raise PluginError(f"{what} must be a word (letters, digits, '-', '_'); got {name!r}")


def list_plugins(*, entry_points: bool = True) -> list[PluginInfo]:
    """The plugins a new :class:`~helpkit.Helpdesk` would load, and what each registers."""
    return PluginHost(entry_points=entry_points).plugins()


def installed_entry_points() -> list[importlib.metadata.EntryPoint]:
    """Entry points in the ``helpkit`` group, whether or not they load."""
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
