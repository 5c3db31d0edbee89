"""helpkit's built-in plugin: the stores, blob stores and channels it ships, and its inbound
screens.

It registers through the very hooks third-party plugins use. (Replies and SLA notices leave
through :mod:`helpkit.delivery`, a step of the command pipeline, not through an observer.)
"""

from __future__ import annotations

from helpkit import screens
from helpkit.hookspecs import (
    RegisterBlobStore,
    RegisterChannel,
    RegisterScrubber,
    RegisterStore,
    hookimpl,
)
from helpkit.ports import BlobStore, InboundMessage, IntakeContext, Store


def _memory(url: str) -> Store:
    from helpkit.stores.memory import memory_store_factory

    return memory_store_factory(url)


def _sqlite(url: str) -> Store:
    from helpkit.stores.sqlite import sqlite_store_factory

    return sqlite_store_factory(url)


def _postgres(url: str) -> Store:
    # helpkit.stores.postgres imports psycopg only when a store is opened: without the
    # postgres extra this raises StoreError saying how to install it.
    from helpkit.stores.postgres import postgres_store_factory

    return postgres_store_factory(url)


@hookimpl
def helpkit_register_stores(register: RegisterStore) -> None:
    """The in-memory store (``memory://``), the SQLite store (``sqlite:///path.db``) and the
    PostgreSQL store (``postgresql://host/db?schema=name``, also ``postgres://``; it needs
    the ``postgres`` extra)."""
    register("memory", _memory)
    register("sqlite", _sqlite)
    register("postgresql", _postgres)
    register("postgres", _postgres)


def _memory_blobs(url: str) -> BlobStore:
    from helpkit.blobs.memory import memory_blob_store_factory

    return memory_blob_store_factory(url)


def _folder_blobs(url: str) -> BlobStore:
    from helpkit.blobs.folder import folder_blob_store_factory

    return folder_blob_store_factory(url)


def _sqlite_blobs(url: str) -> BlobStore:
    from helpkit.blobs.sqlite import SqliteBlobStore
    from helpkit.stores.sqlite import sqlite_store_factory

    # The blob store's own connections to the file (the desk's store keeps its own).
    return SqliteBlobStore(sqlite_store_factory(url))


@hookimpl
def helpkit_register_blob_stores(register: RegisterBlobStore) -> None:
    """The in-memory blob store (``memory://``), the folder blob store
    (``file:///path/to/folder``, content-addressed files) and the SQLite blob store
    (``sqlite:///path.db``, rows of an SQLite store's file; its options as the store's)."""
    register("memory", _memory_blobs)
    register("file", _folder_blobs)
    register("sqlite", _sqlite_blobs)


@hookimpl
def helpkit_register_scrubbers(register: RegisterScrubber) -> None:
    """The card number scrubber (``card_numbers``): Luhn-valid card numbers masked but their
    last four digits (off unless ``[privacy] scrubbers`` names it)."""
    from helpkit.scrubbers import CARD_NUMBERS, mask_card_numbers

    register(CARD_NUMBERS, mask_card_numbers)


@hookimpl
def helpkit_register_channels(register: RegisterChannel) -> None:
    """The recording channel (keeps messages in memory), the Maildir channel (writes each
    message as an email file into a Maildir folder), the SMTP channel (sends each message
    through an SMTP server) and the webhook channel (the endpoints of ``[webhooks.NAME]``:
    Standard Webhooks over HTTP)."""
    from helpkit.channels.maildir import maildir_channel_factory
    from helpkit.channels.recording import recording_channel_factory
    from helpkit.channels.smtp import smtp_channel_factory
    from helpkit.channels.webhook import webhook_channel_factory

    register("recording", recording_channel_factory)
    register("maildir", maildir_channel_factory)
    register("smtp", smtp_channel_factory)
    register("webhook", webhook_channel_factory)


@hookimpl
def helpkit_screen_inbound(message: InboundMessage, desk: IntakeContext) -> str | None:
    """The built-in screens (:func:`helpkit.screens.screen`): loops of the desk's own mail,
    bounces, auto-replies."""
    return screens.screen(message, desk)
