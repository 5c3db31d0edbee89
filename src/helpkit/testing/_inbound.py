"""Hypothesis strategies for intake: inbound messages and the receipts an inbox keeps (public
through :mod:`helpkit.testing.strategies`)."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from helpkit.ports import Address, InboundAttachment, InboundMessage, Receipt, ReceiptState
from helpkit.testing._basics import (
    _BODIES,
    _CHANNEL_NAMES,
    _EMAILS,
    _INSTANTS,
    _LATER,
    _NAMES,
    _check_strategy,
    _ident,
    _text,
)

__all__ = ["inbound_messages", "receipts"]

_MESSAGE_IDS = _ident("msg-").map(lambda s: f"{s}@example.com")
_FILENAMES = st.sampled_from(["report.pdf", "écran.png", "log.txt", "データ.csv", "a b"])
_CONTENT_TYPES = st.sampled_from(
    ["application/pdf", "image/png", "text/plain; charset=utf-8", "application/octet-stream"]
)
_HEADER_NAMES = st.sampled_from(
    ["Auto-Submitted", "Precedence", "X-Autoreply", "Received", "List-Id", "X-Été"]
)
_ADDRESSES = st.builds(Address, _EMAILS, st.none() | _NAMES)


@st.composite
def _attachments(draw: st.DrawFn) -> InboundAttachment:
    inline = draw(st.booleans())
    return InboundAttachment(
        filename=draw(_FILENAMES),
        content_type=draw(_CONTENT_TYPES),
        data=draw(st.binary(max_size=300)),
        inline=inline,
        content_id=draw(st.none() | _MESSAGE_IDS) if inline else None,
    )


def inbound_messages(
    *,
    channels: st.SearchStrategy[str] | None = None,
    external_ids: st.SearchStrategy[str | None] | None = None,
) -> st.SearchStrategy[InboundMessage]:
    """Valid :class:`~helpkit.ports.InboundMessage` values: senders with and without names,
    recipients, headers, threading ids, quoted originals, parser notes, and attachments whose
    bytes are anything (empty, binary, not UTF-8).

    ``channels`` defaults to the usual channel names; ``external_ids`` to a Message-ID-like
    id or ``None`` (a message the inbox cannot dedupe).
    """
    _check_strategy("channels", channels)
    _check_strategy("external_ids", external_ids)
    return _inbound_messages(
        channels if channels is not None else _CHANNEL_NAMES,
        external_ids if external_ids is not None else st.none() | _MESSAGE_IDS,
    )


@st.composite
def _inbound_messages(
    draw: st.DrawFn,
    channels: st.SearchStrategy[str],
    external_ids: st.SearchStrategy[str | None],
) -> InboundMessage:
    return InboundMessage(
        channel=draw(channels),
        sender_address=draw(_EMAILS),
        sender_name=draw(st.none() | _NAMES),
        subject=draw(_text()),
        body=draw(_BODIES),
        received_at=draw(_INSTANTS),
        external_id=draw(external_ids),
        in_reply_to=draw(st.none() | _MESSAGE_IDS),
        references=draw(st.lists(_MESSAGE_IDS, max_size=3)),
        ticket_number=draw(st.none() | st.integers(min_value=1, max_value=10**6)),
        to=draw(st.lists(_ADDRESSES, max_size=2)),
        cc=draw(st.lists(_ADDRESSES, max_size=2)),
        headers=draw(st.dictionaries(_HEADER_NAMES, _text(), max_size=3)),
        original=draw(st.none() | _text()),
        attachments=draw(st.lists(_attachments(), max_size=3)),
        notes=draw(st.lists(_text(), max_size=2)),
    )


def receipts(
    *,
    states: st.SearchStrategy[ReceiptState] | None = None,
    keys: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Receipt]:
    """Valid :class:`~helpkit.ports.Receipt` values, shaped as an inbox keeps them: a
    ``suspended`` one holds its message and a reason; a ``created`` or ``commented`` one names
    its ticket (and comment), without the message; a ``discarded`` one has neither.

    ``states`` defaults to every :class:`~helpkit.ports.ReceiptState`; ``keys`` to
    ``<channel>:<Message-ID>`` keys.
    """
    _check_strategy("states", states)
    _check_strategy("keys", keys)
    return _receipts(
        states if states is not None else st.sampled_from(ReceiptState),
        keys
        if keys is not None
        else st.builds(lambda c, m: f"{c}:{m}", _CHANNEL_NAMES, _MESSAGE_IDS),
    )


@st.composite
def _receipts(
    draw: st.DrawFn, states: st.SearchStrategy[ReceiptState], keys: st.SearchStrategy[str]
) -> Receipt:
    state = draw(states)
    if not isinstance(state, ReceiptState):
        raise InvalidArgument(f"states drew {state!r}, not a ReceiptState")
    received = draw(_INSTANTS)
    ingested = state in (ReceiptState.CREATED, ReceiptState.COMMENTED)
    ticket_id = draw(_ident("ticket-")) if ingested else None
    suspended = state is ReceiptState.SUSPENDED
    return Receipt(
        key=draw(keys),
        state=state,
        received_at=received,
        updated_at=received + draw(_LATER),
        ticket_id=ticket_id,
        comment_id=draw(st.none() | _ident("comment-")) if ingested else None,
        reason=draw(st.sampled_from(["auto-reply", "bounce", "loop", "stranger"]))
        if suspended or draw(st.booleans())
        else None,
        message=draw(inbound_messages()) if suspended else None,
    )
