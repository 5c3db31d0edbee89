"""helpkit's built-in plugin: the stores and channels it ships, and reply notifications.

It registers through the very hooks third-party plugins use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from helpkit.events import CommentAdded, Event, SlaBreached, SlaWarned
from helpkit.hookspecs import RegisterChannel, RegisterStore, hookimpl
from helpkit.ports import Store

if TYPE_CHECKING:
    from helpkit.desk import Helpdesk


def _memory(url: str) -> Store:
    from helpkit.stores.memory import memory_store_factory

    return memory_store_factory(url)


def _sqlite(url: str) -> Store:
    from helpkit.stores.sqlite import sqlite_store_factory

    return sqlite_store_factory(url)


@hookimpl
def helpkit_register_stores(register: RegisterStore) -> None:
    """The in-memory store (``memory://``) and the SQLite store (``sqlite:///path.db``)."""
    register("memory", _memory)
    register("sqlite", _sqlite)


@hookimpl
def helpkit_register_channels(register: RegisterChannel) -> None:
    """The recording channel (keeps messages in memory)."""
    from helpkit.channels.recording import recording_channel_factory

    register("recording", recording_channel_factory)


@hookimpl
def helpkit_event(event: Event, desk: Helpdesk) -> None:
    """Send public comments to the requester and followers (never internal notes), and SLA
    warnings and breaches to the agents the escalation rules name."""
    if isinstance(event, CommentAdded) and event.comment.public:
        desk.deliver_comment(event.ticket_id, event.comment)
    elif isinstance(event, (SlaWarned, SlaBreached)):
        desk.deliver_sla_notice(event)
