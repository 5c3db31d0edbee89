"""Scrubbers: the card number mask (properties: Luhn-valid numbers masked but their last four
digits, others untouched, idempotent), the ``[privacy]`` table, the hook, and scrubbing in the
pipeline and on inbound messages before anything is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit import Actor, DeskConfig, Helpdesk
from helpkit.errors import ConfigError, DuplicateError
from helpkit.events import Notified, event_to_dict
from helpkit.hookspecs import RegisterScrubber, hookimpl
from helpkit.ports import InboundMessage
from helpkit.scrubbers import PrivacyConfig, chain, luhn_valid, mask_card_numbers

ANN = Actor.agent("ann")
CARD = "4111 1111 1111 1111"
MASKED = "**** **** **** 1111"


def _luhn_complete(body: str) -> str:
    """``body`` with the check digit that makes it Luhn-valid."""
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("unreachable")


card_numbers = st.integers(min_value=12, max_value=18).flatmap(
    lambda n: st.text("0123456789", min_size=n, max_size=n).map(_luhn_complete)
)
separators = st.sampled_from(["", " ", "-"])


def _grouped(digits: str, separator: str) -> str:
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))


# ---------------------------------------------------------------- the mask


def test_worked_examples() -> None:
    assert mask_card_numbers(f"card {CARD} exp 12/27") == f"card {MASKED} exp 12/27"
    assert mask_card_numbers("5500-0000-0000-0004") == "****-****-****-0004"
    assert mask_card_numbers("4111111111111111") == "************1111"
    # Not Luhn-valid, too short, too long: left alone.
    assert mask_card_numbers("4111 1111 1111 1112") == "4111 1111 1111 1112"
    assert mask_card_numbers("order 123456789012") == "order 123456789012"
    assert mask_card_numbers("4111111111111111" + "1111") == "4111111111111111" + "1111"
    assert mask_card_numbers("") == ""


@given(card_numbers, separators, st.text(alphabet="abc .,:", max_size=10))
def test_a_valid_card_number_keeps_only_its_last_four_digits(
    digits: str, separator: str, around: str
) -> None:
    written = _grouped(digits, separator)
    masked = mask_card_numbers(f"{around} {written} {around}")
    kept = [c for c in masked if c.isdigit()]
    assert kept == list(digits[-4:])
    assert masked.count("*") == len(digits) - 4
    assert digits not in masked.replace(separator, "") if separator else digits not in masked


@given(st.text(max_size=80))
def test_masking_is_idempotent_and_keeps_the_length(text: str) -> None:
    once = mask_card_numbers(text)
    assert mask_card_numbers(once) == once
    assert len(once) == len(text)


@given(card_numbers)
def test_a_number_failing_the_luhn_check_is_left_alone(digits: str) -> None:
    wrong = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    assert not luhn_valid(wrong)
    assert mask_card_numbers(wrong) == wrong


def test_chain_runs_in_order_and_refuses_what_is_not_text() -> None:
    assert chain([str.upper, lambda t: t + "!"])("ok") == "OK!"
    with pytest.raises(ValueError):
        chain([lambda t: None])("x")  # type: ignore[list-item, return-value]


# ---------------------------------------------------------------- configuration and hook


def test_the_privacy_table() -> None:
    config = DeskConfig.from_dict({"privacy": {"scrubbers": ["card_numbers"]}})
    assert config.privacy == PrivacyConfig(scrubbers=("card_numbers",))
    assert DeskConfig().privacy.scrubbers == ()
    bads: tuple[object, ...] = (
        {"scrubbers": "card_numbers"},
        {"scrubbers": [""]},
        {"scrubbers": ["a", "a"]},
        {"scrub": []},
        [],
    )
    for bad in bads:
        with pytest.raises(ConfigError):
            DeskConfig.from_dict({"privacy": bad})
    with pytest.raises(ConfigError, match="no scrubber is registered as 'nope'"):
        Helpdesk(config={"privacy": {"scrubbers": ["nope"]}}, entry_points=False)


class EmailScrubber:
    @hookimpl
    def helpkit_register_scrubbers(self, register: RegisterScrubber) -> None:
        register("emails", lambda text: text.replace("@", " at "))


def test_a_plugin_registers_a_scrubber_run_after_the_ones_before_it() -> None:
    config = {"privacy": {"scrubbers": ["card_numbers", "emails"]}}
    with Helpdesk(config=config, plugins=[EmailScrubber()], entry_points=False) as desk:
        desk.add_agent("ann", "Ann")
        ticket = desk.open_ticket(
            ANN, requester="bob@example.com", subject="hi", body=f"{CARD} from bob@example.com"
        )
        assert desk.conversation(ticket)[0].body == f"{MASKED} from bob at example.com"


class Twice:
    @hookimpl
    def helpkit_register_scrubbers(self, register: RegisterScrubber) -> None:
        register("card_numbers", str.upper)


def test_a_scrubber_name_registered_twice_is_refused() -> None:
    with pytest.raises(DuplicateError, match="card_numbers"):
        Helpdesk(plugins=[Twice()], entry_points=False)


# ---------------------------------------------------------------- before anything is stored


def test_nothing_stored_holds_the_card_number() -> None:
    config = {
        "privacy": {"scrubbers": ["card_numbers"]},
        "triggers": [
            {
                "name": "tell",
                "when": {"field": "event", "has_any": ["comment_added"]},
                "actions": [
                    {"notify": ["group"], "subject": "New", "body": "On {{ticket.subject}}"}
                ],
            }
        ],
    }
    desk = Helpdesk(config=config, entry_points=False)
    with desk:
        desk.add_agent("ann", "Ann")
        ticket = desk.open_ticket(
            ANN, requester="bob@example.com", subject=f"Card {CARD}", body=f"It is {CARD}"
        )
        ticket = desk.note(ticket, ANN, f"Copied: {CARD.replace(' ', '-')}")
        ticket = desk.set_subject(ticket, ANN, f"Still {CARD}")
        message = InboundMessage(
            channel="email",
            sender_address="bob@example.com",
            sender_name="Bob",
            subject=f"Re: card {CARD}",
            body=f"Here: {CARD}",
            original=f"Here: {CARD}\n> old",
            received_at=datetime(2026, 3, 2, tzinfo=UTC),
            external_id="m1@example.com",
            headers={"auto-submitted": "auto-replied"},
        )
        desk.receive(message)
        stored = [json.dumps(event_to_dict(e)) for e in desk.history(ticket)]
        stored += [repr(desk.ticket(ticket)), repr(desk.suspended())]
        text = "\n".join(stored)
        assert "4111" not in text and MASKED in text
        assert any(isinstance(e, Notified) for e in desk.history(ticket))
        assert desk.ticket(ticket).subject == f"Still {MASKED}"
        assert desk.conversation(ticket)[0].body == f"It is {MASKED}"
        (suspended,) = desk.suspended()
        assert suspended.message is not None
        assert suspended.message.body == f"Here: {MASKED}"
        assert suspended.message.original == f"Here: {MASKED}\n> old"


def test_without_the_scrubber_the_text_is_kept_as_written() -> None:
    with Helpdesk(entry_points=False) as desk:
        desk.add_agent("ann", "Ann")
        ticket = desk.open_ticket(ANN, requester="bob@example.com", subject="x", body=CARD)
        assert desk.conversation(ticket)[0].body == CARD
