"""The pluggy hook specifications of helpkit.

Hooks *discover and register* things; the objects they register (stores, channels) do the
work through the protocols in :mod:`helpkit.ports`. Implement a hook with the
:data:`helpkit.hookimpl` marker in a module or object, and expose it through the ``helpkit``
entry point group, or pass it to ``Helpdesk(plugins=[...])``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from helpkit.events import Event
from helpkit.ports import BlobStore, Channel, DeskContext, InboundMessage, IntakeContext, Store

__all__ = [
    "BlobStoreFactory",
    "ChannelFactory",
    "RegisterBlobStore",
    "RegisterChannel",
    "RegisterScrubber",
    "RegisterStore",
    "Scrubber",
    "StoreFactory",
    "helpkit_event",
    "helpkit_register_blob_stores",
    "helpkit_register_channels",
    "helpkit_register_scrubbers",
    "helpkit_register_stores",
    "helpkit_screen_inbound",
    "hookimpl",
    "hookspec",
]

PROJECT = "helpkit"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

StoreFactory = Callable[[str], Store]
"""Builds a store from its URL, e.g. ``"sqlite:///desk.db"``."""
ChannelFactory = Callable[[Mapping[str, Any]], Channel]
"""Builds a channel from its options (a config table)."""
RegisterStore = Callable[[str, StoreFactory], None]
"""``register(scheme, factory)``: the URL scheme (``"sqlite"``) a store factory serves."""
RegisterChannel = Callable[[str, ChannelFactory], None]
"""``register(name, factory)``: the name (``"email"``) a channel factory is known by."""
BlobStoreFactory = Callable[[str], BlobStore]
"""Builds a blob store from its URL, e.g. ``"file:///srv/helpkit/blobs"``."""
RegisterBlobStore = Callable[[str, BlobStoreFactory], None]
"""``register(scheme, factory)``: the URL scheme (``"s3"``) a blob store factory serves."""


@hookspec
def helpkit_register_stores(register: RegisterStore) -> None:
    """Register storage backends: call ``register("scheme", factory)`` once per URL scheme.

    Called once per :class:`~helpkit.Helpdesk`, for every plugin. Registering a scheme that
    another plugin already registered raises :class:`~helpkit.errors.DuplicateError`: the host
    picks a store by URL, never by install order.
    """


@hookspec
def helpkit_register_channels(register: RegisterChannel) -> None:
    """Register channel types: call ``register("name", factory)`` once per channel.

    ``factory(options)`` receives the channel's configuration mapping and returns an object
    satisfying :class:`~helpkit.ports.Channel`. Duplicate names raise
    :class:`~helpkit.errors.DuplicateError`.
    """


@hookspec
def helpkit_register_blob_stores(register: RegisterBlobStore) -> None:
    """Register blob stores (where attachment bytes live): call ``register("scheme", factory)``
    once per URL scheme; ``factory(url)`` returns a :class:`~helpkit.ports.BlobStore`.

    The desk opens its blob store by URL (``Helpdesk(blobs="s3://bucket/prefix")``, or
    ``blobs`` in ``helpkit.toml``). A scheme registered twice raises
    :class:`~helpkit.errors.DuplicateError`, as for stores.
    """


# --- privacy (issue #16): scrubbers
Scrubber = Callable[[str], str]
"""A scrubber: a text -> the text with what must not be stored masked (see
:mod:`helpkit.scrubbers`)."""
RegisterScrubber = Callable[[str, Scrubber], None]
"""``register(name, scrubber)``: the name (``"card_numbers"``) ``[privacy] scrubbers`` picks a
scrubber by."""


@hookspec
def helpkit_register_scrubbers(register: RegisterScrubber) -> None:
    """Register scrubbers: call ``register("name", scrubber)`` once per scrubber.

    A scrubber takes a text and returns it with the patterns that must not be stored masked.
    The desk runs those its configuration names (``[privacy] scrubbers = ["card_numbers"]``),
    in that order, on comment bodies, subjects, rendered notifications and inbound messages,
    before anything is stored. It must be pure and idempotent (the text may be scrubbed
    twice). helpkit registers ``card_numbers`` (:func:`helpkit.scrubbers.mask_card_numbers`).
    A name registered twice raises :class:`~helpkit.errors.DuplicateError`.
    """


# --- end privacy


@hookspec
def helpkit_event(event: Event, desk: DeskContext) -> None:
    """Observe every event after the store has committed it.

    Use it for notifications and integrations. It runs once per event, in order, after the
    command's write succeeded and its replies were delivered; an observer that raises is
    logged (logger ``helpkit.plugins``) and neither undoes the command nor stops other
    observers. ``desk`` is the desk that committed it, seen through
    :class:`~helpkit.ports.DeskContext` (read tickets and their history, the store, the clock).
    """


@hookspec(firstresult=True)
def helpkit_screen_inbound(message: InboundMessage, desk: IntakeContext) -> str | None:
    """Screen an inbound message before :meth:`~helpkit.Helpdesk.receive` ingests it: return
    the reason to suspend it (``"auto-reply: ..."``), or ``None`` to let it through.

    The first reason given wins (the implementations run from the last registered plugin to
    the first, so a plugin's screen runs before helpkit's own, which come last: auto-replies,
    bounces and loops, see :mod:`helpkit.screens`). It must be a pure check: no writes (the
    message may be screened again when the same message comes twice). A screen that raises
    fails the ``receive`` call with the error, and nothing is written. ``desk`` is the desk,
    seen through :class:`~helpkit.ports.IntakeContext` (its id, its own addresses, its
    tickets). A released message is not screened again.
    """
