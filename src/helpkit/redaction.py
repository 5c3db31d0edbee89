"""Redaction and erasure as data: what a redacted comment, event or contact becomes (pure).

A redaction keeps the shape of the audit trail and drops its content. The comment stays in
the history (its id, author, time, visibility, channel, thread ids) with ``body`` set to
:data:`REDACTED`, no ``original``, ``redacted`` set and, when its files are redacted too, no
attachments; the decision (:func:`decide`) appends a
:class:`~helpkit.events.CommentRedacted` event saying who, when and why, never the text.

:func:`redact_events` rewrites the events of a history that carry the comment: its
``comment_added`` event, the ``merge_received`` events that copied it onto another ticket,
and the ``notified`` events whose rendered subject or body quote its text
(:func:`quoted_texts`). Folding a rewritten history gives the same ticket as before: a ticket's
state holds no comment text (only counts), so ``replay(history) == stored state`` stays true.

:func:`tombstone` is what an erased contact becomes: its id, its creation time and the
``erased`` flag, nothing else.

Nothing here reads a clock or a store: "now" and the history are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from helpkit._checks import check_text
from helpkit._records import replace
from helpkit.errors import InvalidTransitionError, NotFoundError, ValidationError
from helpkit.events import CommentAdded, CommentRedacted, Event, MergeReceived, Notified
from helpkit.outcomes import Draft, Outcome
from helpkit.people import Contact
from helpkit.tickets import Actor, Comment, Ticket

__all__ = [
    "ERASED_NAME",
    "MIN_QUOTED",
    "REDACTED",
    "attachments_in",
    "comments_of",
    "decide",
    "find_comment",
    "quoted_texts",
    "redact_comment",
    "redact_events",
    "redacted_comments",
    "tombstone",
]

REDACTED: Final = "[redacted]"
"""What a redacted text reads."""

ERASED_NAME: Final = "[erased]"
"""The name an erased contact keeps (a contact's name may not be blank)."""

MIN_QUOTED: Final = 8
"""The shortest text (in characters, surrounding space aside) looked for in the rendered
notifications of a ticket: shorter texts ("ok", "thanks") would match unrelated ones."""


def comments_of(events: Iterable[Event]) -> list[Comment]:
    """Every comment the events carry, in order (those merged in included)."""
    found: list[Comment] = []
    for event in events:
        if isinstance(event, CommentAdded):
            found.append(event.comment)
        elif isinstance(event, MergeReceived):
            found.extend(event.comments)
    return found


def attachments_in(events: Iterable[Event]) -> frozenset[str]:
    """The SHA-256 of every attachment of the comments ``events`` carry."""
    return frozenset(a.sha256 for c in comments_of(events) for a in c.attachments)


def find_comment(events: Iterable[Event], comment_id: str) -> Comment:
    """The comment ``comment_id`` of a history (NotFoundError when it has none)."""
    wanted = check_text(comment_id, "a comment id")
    for comment in comments_of(events):
        if comment.id == wanted:
            return comment
    raise NotFoundError(f"the ticket has no comment {wanted!r:.60}")


def redacted_comments(events: Iterable[Event]) -> frozenset[str]:
    """The ids of the comments a ``comment_redacted`` event of the history names."""
    return frozenset(e.comment_id for e in events if isinstance(e, CommentRedacted))


def redact_comment(comment: Comment, *, attachments: bool) -> Comment:
    """``comment`` with its text gone (and its files, with ``attachments``)."""
    return replace(
        comment,
        body=REDACTED,
        original=None,
        redacted=True,
        attachments=() if attachments else comment.attachments,
    )


def quoted_texts(comment: Comment) -> tuple[str, ...]:
    """The texts of ``comment`` that a rendered notification may quote: its body and its
    original, surrounding space stripped, those of at least :data:`MIN_QUOTED` characters."""
    texts = []
    for value in (comment.body, comment.original):
        if value is not None and not comment.redacted:
            stripped = value.strip()
            if len(stripped) >= MIN_QUOTED and stripped not in texts:
                texts.append(stripped)
    return tuple(texts)


def _quotes(value: str, texts: Sequence[str]) -> bool:
    return any(text in value for text in texts)


def redact_events(
    events: Iterable[Event], comment_id: str, *, attachments: bool, texts: Sequence[str] = ()
) -> list[Event]:
    """The events of ``events`` that carry comment ``comment_id`` or quote one of ``texts``,
    rewritten without them (same ticket, seq, type, time and actor); events that need no
    change are left out. Idempotent: rewriting a rewritten event changes nothing."""
    rewritten: list[Event] = []
    for event in events:
        new: Event | None = None
        if isinstance(event, CommentAdded) and event.comment.id == comment_id:
            comment = redact_comment(event.comment, attachments=attachments)
            if comment != event.comment:
                new = replace(event, comment=comment)
        elif isinstance(event, MergeReceived) and any(c.id == comment_id for c in event.comments):
            comments = tuple(
                redact_comment(c, attachments=attachments) if c.id == comment_id else c
                for c in event.comments
            )
            if comments != event.comments:
                new = replace(event, comments=comments)
        elif isinstance(event, Notified) and texts:
            subject = REDACTED if _quotes(event.subject, texts) else event.subject
            body = REDACTED if _quotes(event.body, texts) else event.body
            if (subject, body) != (event.subject, event.body):
                new = replace(event, subject=subject, body=body)
        if new is not None:
            rewritten.append(new)
    return rewritten


def decide(
    ticket: Ticket,
    history: Sequence[Event],
    comment_id: str,
    *,
    actor: Actor,
    at: datetime,
    reason: str,
    attachments: bool,
) -> Outcome:
    """Record the redaction of comment ``comment_id`` of ``ticket`` (whose events are
    ``history``): a ``comment_redacted`` event. Closed tickets are redacted too (a redaction
    changes no state). A comment already redacted raises InvalidTransitionError; a blank
    reason ValidationError; a comment the history lacks NotFoundError."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("a redaction needs a reason (who asked for it, or why)")
    if not isinstance(attachments, bool):
        raise ValidationError(f"attachments must be true or false; got {attachments!r:.40}")
    comment = find_comment(history, comment_id)
    if comment.id in redacted_comments(history):
        raise InvalidTransitionError(f"comment {comment.id!r} was already redacted")
    draft = Draft(ticket, at, actor)
    draft.emit(
        CommentRedacted,
        ticket.id,
        comment_id=comment.id,
        reason=reason.strip(),
        attachments=tuple(a.id for a in comment.attachments) if attachments else (),
    )
    return draft.outcome()


def tombstone(contact: Contact, at: datetime) -> Contact:
    """What ``contact`` becomes when it is erased: its id, creation time and the next
    version, named :data:`ERASED_NAME`, with no address, phone, language, time zone,
    organization, segment or VIP flag."""
    return Contact(
        id=contact.id,
        name=ERASED_NAME,
        created_at=contact.created_at,
        updated_at=max(at, contact.updated_at),
        version=contact.version + 1,
        erased=True,
    )
