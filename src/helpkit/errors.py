"""The helpkit exception hierarchy.

Every error helpkit raises on purpose is a :class:`HelpkitError`. Errors about bad input are
also :class:`ValueError` (or :class:`LookupError` for missing things) so that generic handlers
in host applications keep working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from helpkit.events import Event

__all__ = [
    "AccessDeniedError",
    "AttachmentError",
    "BlobCorruptionError",
    "BrokerError",
    "CalendarError",
    "ConfigError",
    "ConflictError",
    "DeliveryRefusedError",
    "DuplicateError",
    "HelpkitError",
    "InvalidTransitionError",
    "MergeError",
    "NaiveDatetimeError",
    "NotFoundError",
    "PluginError",
    "RatingError",
    "ReadOnlyTicketError",
    "SchemaError",
    "StoreError",
    "UnknownBackendError",
    "ValidationError",
]


class HelpkitError(Exception):
    """Base class of every error helpkit raises on purpose."""


class ValidationError(HelpkitError, ValueError):
    """An argument or a value object is invalid."""


class NaiveDatetimeError(ValidationError):
    """A datetime without a time zone was given where an aware one is required."""


class CalendarError(ValidationError):
    """A business calendar is malformed or cannot answer (e.g. it has no open time)."""


class ConfigError(ValidationError):
    """A configuration file or mapping is invalid."""


class RatingError(ValidationError):
    """A satisfaction rating was refused: its token is not the desk's (malformed, tampered
    with), it expired, or it names no one who may rate the ticket now; nothing was written."""


class DuplicateError(ValidationError):
    """A value that must be unique (an email, a domain, a plugin name) is already taken."""


class AttachmentError(ValidationError):
    """Files attached to a comment break a limit (size, count, total) or are malformed (a
    content type that is not ``type/subtype``); nothing was written. ``filename`` names the
    file at fault (``None`` when the fault is not one file's)."""

    def __init__(self, message: str, *, filename: str | None = None) -> None:
        super().__init__(message)
        self.filename = filename


class NotFoundError(HelpkitError, LookupError):
    """A ticket, contact, organization, agent or group does not exist."""


class AccessDeniedError(HelpkitError):
    """The actor may not do this: a contact who is no party of the ticket, an agent whose
    role lacks the permission, who is inactive, or who is restricted to their groups' tickets.
    Nothing was written. (A customer's view answers NotFoundError instead where saying
    "denied" would reveal that another customer's ticket exists: see the page *Access*.)"""


class InvalidTransitionError(HelpkitError):
    """The command is not allowed in the ticket's current state."""


class ReadOnlyTicketError(InvalidTransitionError):
    """The ticket is closed (or merged) and cannot change any more."""


class MergeError(InvalidTransitionError):
    """A merge was refused (self-merge, closed target, cycle...)."""


class ConflictError(HelpkitError):
    """A write was based on a stale version; nothing was written. Reload and retry.

    When a command was given the version its caller saw (``expected_seq=``), the error says
    what happened since: ``ticket_id``, ``expected_seq``, ``current_seq`` and ``events``, the
    ticket's events after ``expected_seq`` (so a host can say "Ann replied meanwhile").
    Otherwise those may be unknown (``None`` and empty).
    """

    def __init__(
        self,
        message: str,
        *,
        ticket_id: str | None = None,
        expected_seq: int | None = None,
        current_seq: int | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        super().__init__(message)
        self.ticket_id = ticket_id
        self.expected_seq = expected_seq
        self.current_seq = current_seq
        self.events: tuple[Event, ...] = tuple(events)


class StoreError(HelpkitError):
    """A storage backend failed or holds data it cannot read."""


class SchemaError(StoreError):
    """Stored data has a schema this version of helpkit cannot read or refuses to touch."""


class BlobCorruptionError(StoreError):
    """A blob store holds bytes under an address that are not what the address names (their
    SHA-256 differs): the stored copy was damaged. ``sha256`` is the address read."""

    def __init__(self, message: str, *, sha256: str) -> None:
        super().__init__(message)
        self.sha256 = sha256


class BrokerError(HelpkitError):
    """A message broker (the NATS sink's) could not be reached or did not take what was sent."""


class DeliveryRefusedError(HelpkitError):
    """A channel's receiver refused a message for good (a webhook endpoint answered
    ``410 Gone``): raised from ``Channel.deliver``, it makes the relay give the delivery up at
    once (a dead letter, ``delivery_failed`` with ``final``) instead of trying it again."""


class PluginError(HelpkitError):
    """A plugin is malformed or misbehaved while being registered."""


class UnknownBackendError(PluginError, LookupError):
    """No store or channel is registered under the requested name or URL scheme."""
