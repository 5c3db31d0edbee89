"""Thread tokens (helpkit.thread_tokens): signed for one ticket, verified for it only, and
carried in the Message-ID of every outbound email of a desk with a secret."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from helpkit.channels.mime import (
    message_bytes,
    message_id,
    outbound_message_id,
    parse_sender,
    render,
)
from helpkit.errors import ConfigError
from helpkit.ports import OutboundMessage, Recipient
from helpkit.thread_tokens import (
    MIN_SECRET_BYTES,
    ThreadTokens,
    message_id_parts,
    parse_token,
    sent_ticket_id,
    tokens_in,
)

SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
ticket_ids = st.text(alphabet=SAFE, min_size=1, max_size=64)
secrets = st.binary(min_size=MIN_SECRET_BYTES, max_size=64)
TOKENS = ThreadTokens("a secret of the desk, long enough")


@given(secrets, ticket_ids)
def test_a_token_verifies_for_its_ticket(secret: bytes, ticket_id: str) -> None:
    tokens = ThreadTokens(secret)
    token = tokens.sign(ticket_id)
    assert token.startswith("hk1-")
    assert tokens.verify(token) == ticket_id
    assert parse_token(token) is not None


@given(secrets, ticket_ids, ticket_ids)
def test_a_token_never_verifies_for_another_ticket(secret: bytes, one: str, other: str) -> None:
    assume(one != other)
    tokens = ThreadTokens(secret)
    token = tokens.sign(one)
    forged = f"hk1-{other}-{token.rpartition('-')[2]}"
    assert tokens.verify(forged) is None


@given(secrets, ticket_ids, st.data())
def test_any_altered_token_fails(secret: bytes, ticket_id: str, data: st.DataObject) -> None:
    tokens = ThreadTokens(secret)
    token = tokens.sign(ticket_id)
    index = data.draw(st.integers(0, len(token) - 1))
    kind = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    char = data.draw(st.sampled_from(SAFE + "234567."))
    if kind == "replace":
        assume(token[index] != char)
        altered = token[:index] + char + token[index + 1 :]
    elif kind == "insert":
        altered = token[:index] + char + token[index:]
    else:
        altered = token[:index] + token[index + 1 :]
    # The signature is read case-insensitively: changing only its case is not an alteration.
    assume(altered.lower() != token.lower() or altered[:-16] != token[:-16])
    assert tokens.verify(altered) is None


@given(secrets, secrets, ticket_ids)
def test_another_secret_does_not_verify(one: bytes, other: bytes, ticket_id: str) -> None:
    assume(one != other)
    assert ThreadTokens(other).verify(ThreadTokens(one).sign(ticket_id)) is None


def test_signature_compare_is_case_insensitive_and_text_secrets_are_utf8() -> None:
    token = TOKENS.sign("t1")
    head, _, signature = token.rpartition("-")
    assert signature == signature.lower()
    assert TOKENS.verify(f"{head}-{signature.upper()}") == "t1"
    assert ThreadTokens(b"a secret of the desk, long enough").sign("t1") == token


@pytest.mark.parametrize("secret", ["short", b"", "x" * (MIN_SECRET_BYTES - 1), 42, None])
def test_a_short_or_wrong_secret_is_a_config_error(secret: object) -> None:
    with pytest.raises(ConfigError):
        ThreadTokens(secret)  # type: ignore[arg-type]


def test_ids_that_cannot_be_in_a_message_id_get_no_token() -> None:
    assert TOKENS.sign("has space") == ""
    assert TOKENS.sign("dot.ted") == ""
    assert TOKENS.sign("x" * 129) == ""
    assert TOKENS.verify("") is None
    assert TOKENS.verify("hk1-abc") is None
    assert TOKENS.verify("hk2-abc-" + "a" * 16) is None


def test_the_desk_id_comes_from_the_secret_and_tells_nothing_of_it() -> None:
    one, two = ThreadTokens("s" * 20), ThreadTokens("t" * 20)
    assert one.desk_id == ThreadTokens("s" * 20).desk_id
    assert one.desk_id != two.desk_id
    assert len(one.desk_id) == 16 and one.desk_id.isalnum()
    assert "s" * 5 not in one.desk_id
    assert "s" * 20 not in repr(one)


@given(
    ticket_ids, st.integers(1, 10**6), st.sampled_from(["reply", "sla_notice", "acknowledgement"])
)
def test_message_ids_carry_the_token_and_the_sent_ticket(
    ticket_id: str, seq: int, kind: str
) -> None:
    token = TOKENS.sign(ticket_id)
    written = message_id(f"{ticket_id}-{seq}-{kind}", "example.com", token)
    assert written == f"<{ticket_id}-{seq}-{kind}.{token}@example.com>"
    assert tokens_in([written]) == [token]
    assert TOKENS.verify(tokens_in([written])[0]) == ticket_id
    assert sent_ticket_id(written) == ticket_id
    assert sent_ticket_id(written.strip("<>")) == ticket_id


def test_message_id_without_a_token_or_with_an_unsafe_one() -> None:
    assert message_id("k-1-reply", "example.com") == "<k-1-reply@example.com>"
    assert message_id("k-1-reply", "example.com", "bad token") == "<k-1-reply@example.com>"
    assert tokens_in(["<k-1-reply@example.com>", "no-at-sign"]) == []
    assert sent_ticket_id("<someone@else.example>") is None
    assert message_id_parts(" <a.b.c@host> ") == ["a", "b", "c"]


def test_a_rendered_email_carries_the_token_in_its_message_id() -> None:
    token = TOKENS.sign("ticket1")
    message = OutboundMessage(
        ticket_id="ticket1",
        ticket_number=7,
        subject="[#7] Printer",
        body="Hello",
        comment_id="c1",
        author_name="Agent",
        to=[Recipient("contact", "c", "Ann", "ann@example.com")],
        sent_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
        idempotency_key="ticket1-3-reply",
        thread_token=token,
    )
    email = render(message, sender=parse_sender("Support <support@desk.example>"))
    read = message_from_bytes(message_bytes(email), policy=email_policy.default)
    assert read["Message-ID"] == f"<ticket1-3-reply.{token}@desk.example>"
    assert read["Message-ID"] == outbound_message_id(message, "desk.example")
    assert TOKENS.verify(tokens_in([read["Message-ID"]])[0]) == "ticket1"
