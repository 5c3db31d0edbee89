"""The built-in inbound screens (helpkit.screens) and the helpkit_screen_inbound hook."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit import Helpdesk, hookimpl
from helpkit.errors import PluginError
from helpkit.intake import IntakeKind
from helpkit.ports import InboundMessage, IntakeContext
from helpkit.screens import OUT_OF_OFFICE_PREFIXES, auto_reply, bounce, loop, screen

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def message(**fields: Any) -> InboundMessage:
    values: dict[str, Any] = {
        "channel": "email",
        "sender_address": "ann@acme.example",
        "sender_name": "Ann",
        "subject": "The printer on floor 2",
        "body": "It jams.",
        "received_at": AT,
        "external_id": "m1@acme.example",
    }
    values.update(fields)
    return InboundMessage(**values)


class Desk:
    """The part of a desk the built-in screens read."""

    desk_id = "desk42"
    own_addresses = frozenset({"support@desk.example"})


# ------------------------------------------------------------------ auto-replies


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
        ({"Auto-Submitted": "auto-generated"}, "Auto-Submitted: auto-generated"),
        ({"Auto-Submitted": "Auto-Notified; owner-email=x@y"}, "Auto-Submitted: auto-notified"),
        ({"Precedence": "bulk"}, "Precedence: bulk"),
        ({"Precedence": "Junk"}, "Precedence: junk"),
        ({"Precedence": "list"}, "Precedence: list"),
        ({"X-Autoreply": "yes"}, "X-Autoreply"),
        ({"X-Autorespond": "Out of office"}, "X-Autorespond"),
        ({"X-Auto-Response-Suppress": "All"}, "X-Auto-Response-Suppress"),
        ({"X-Auto-Response-Suppress": "DR, OOF, AutoReply"}, "X-Auto-Response-Suppress"),
        (
            {"Content-Type": 'multipart/report; report-type="disposition-notification"'},
            "read receipt",
        ),
    ],
)
def test_auto_reply_headers(headers: dict[str, str], why: str) -> None:
    reason = auto_reply(message(headers=headers))
    assert reason is not None and reason.startswith("auto-reply: ")
    assert why in reason


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "no"},
        {"Auto-Submitted": " No "},
        {"Precedence": "first-class"},
        {"X-Autoreply": "no"},
        {"X-Auto-Response-Suppress": "None"},
        {"X-Auto-Response-Suppress": "DR, RN, NRN"},
        {"Content-Type": "multipart/mixed; boundary=x"},
    ],
)
def test_a_persons_headers_pass(headers: dict[str, str]) -> None:
    assert auto_reply(message(headers=headers)) is None
    assert screen(message(headers=headers), Desk()) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: The printer",
        "Automatic reply: The printer",
        "Auto-Reply: ticket",
        "[Auto-Reply] ticket",
        "Out of Office AutoReply: The printer",
        "Réponse automatique : L'imprimante",
        "Absence du bureau",
        "Automatische Antwort: Drucker",
        "Abwesenheitsnotiz: Drucker",
        "Respuesta automática: impresora",
        "Fuera de la oficina - vuelvo el lunes",
        "Automatisch antwoord: printer",
        "Afwezig: printer",
        "Risposta automatica: stampante",
        "Fuori ufficio",
        "Resposta automática: impressora",
        "Fora do escritório: impressora",
    ],
)
def test_out_of_office_subjects_in_seven_languages(subject: str) -> None:
    reason = auto_reply(message(subject=subject))
    assert reason is not None and "out-of-office subject" in reason


@pytest.mark.parametrize(
    "subject",
    [
        "Question about automatic reply settings",
        "How do I set an out of office message?",
        "Re: [#12] Printer",
        "Absences de la semaine",
        "Abwesenheitsregelung im Team",  # starts like "abwesenheit" but is another word
        "",
    ],
)
def test_ordinary_subjects_pass(subject: str) -> None:
    assert auto_reply(message(subject=subject)) is None


def _accented(text: str, data: st.DataObject) -> str:
    """``text`` with random case and, where the letter takes one, random accents."""
    out = []
    for char in text:
        upper = data.draw(st.booleans())
        char = char.upper() if upper else char
        if char.lower() in "aeiou" and data.draw(st.booleans()):
            char = unicodedata.normalize("NFC", char + "\u0301")
        out.append(char)
    return "".join(out)


@given(
    st.sampled_from(OUT_OF_OFFICE_PREFIXES),
    st.sampled_from([": ", " : ", " - ", ":"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30),
    st.data(),
)
def test_every_out_of_office_prefix_in_any_case_and_accents(
    prefix: str, separator: str, rest: str, data: st.DataObject
) -> None:
    subject = _accented(prefix, data) + separator + rest
    assert auto_reply(message(subject=subject)) is not None
    assert auto_reply(message(subject=_accented(prefix, data))) is not None
    assert auto_reply(message(subject=f"[{_accented(prefix, data)}] {rest}")) is not None


@given(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
        max_size=60,
    )
)
def test_screens_never_raise_and_say_their_kind(subject: str) -> None:
    for reason in (
        auto_reply(message(subject=subject)),
        bounce(message(subject=subject)),
        screen(message(subject=subject), Desk()),  # type: ignore[arg-type]
    ):
        assert reason is None or reason.split(":")[0] in ("auto-reply", "bounce", "loop")


# ------------------------------------------------------------------ bounces and loops


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        (
            {
                "headers": {
                    "Content-Type": "multipart/report; report-type=delivery-status; boundary=b"
                }
            },
            "delivery status report",
        ),
        ({"sender_address": "MAILER-DAEMON@mx.acme.example"}, "sent by"),
        ({"sender_address": "postmaster@acme.example"}, "sent by"),
        ({"sender_address": "MAILER-DAEMON"}, "sent by"),
        ({"headers": {"Return-Path": "<>"}}, "empty Return-Path"),
        ({"headers": {"Return-Path": "< >"}}, "empty Return-Path"),
    ],
)
def test_bounces(fields: dict[str, Any], why: str) -> None:
    reason = bounce(message(**fields))
    assert reason is not None and reason.startswith("bounce: ") and why in reason


def test_a_return_path_with_an_address_is_no_bounce() -> None:
    assert bounce(message(headers={"Return-Path": "<ann@acme.example>"})) is None
    assert bounce(message(sender_address="daemon-fan@acme.example")) is None


def test_loops() -> None:
    desk = Desk()
    ours = message(headers={"X-Helpkit-Desk": "desk42"})
    assert screen(ours, desk) == "loop: it carries this desk's X-Helpkit-Desk header"  # type: ignore[arg-type]
    theirs = message(headers={"X-Helpkit-Desk": "another"})
    assert loop(theirs, desk_id="desk42") is None
    repeated = message(headers={"X-Helpkit-Desk": "another\ndesk42"})
    assert loop(repeated, desk_id="desk42") is not None
    own = message(sender_address="Support@Desk.example")
    reason = loop(own, desk_id="desk42", own_addresses={"support@desk.example"})
    assert reason == "loop: sent from the desk's own address support@desk.example"


def test_screen_order_is_loop_bounce_auto_reply() -> None:
    everything = message(
        sender_address="support@desk.example",
        headers={"Auto-Submitted": "auto-replied", "Return-Path": "<>"},
    )
    assert (screen(everything, Desk()) or "").startswith("loop:")  # type: ignore[arg-type]
    both = message(headers={"Auto-Submitted": "auto-replied", "Return-Path": "<>"})
    assert (screen(both, Desk()) or "").startswith("bounce:")  # type: ignore[arg-type]


# ------------------------------------------------------------------ the hook


class VipScreen:
    """A plugin screen: holds back every message whose subject says "spam"."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def helpkit_screen_inbound(self, message: InboundMessage, desk: IntakeContext) -> str | None:
        self.seen.append(desk.desk_id)
        return "spam: the subject says so" if "spam" in message.subject else None


def test_a_plugin_screen_suspends_and_runs_before_the_built_ins() -> None:
    plugin = VipScreen()
    desk = Helpdesk(plugins=[plugin], entry_points=False, config={"intake": {"desk_id": "d1"}})
    held = desk.receive(message(subject="spam offer", headers={"Auto-Submitted": "auto-replied"}))
    assert held.kind is IntakeKind.SUSPENDED
    assert held.reason == "spam: the subject says so"
    assert plugin.seen == ["d1"]
    passed = desk.receive(message(external_id="m2@acme.example"))
    assert passed.kind is IntakeKind.CREATED
    assert [r.key for r in desk.suspended()] == ["email:m1@acme.example"]


class BrokenScreen:
    def __init__(self, result: object) -> None:
        self.result = result

    @hookimpl
    def helpkit_screen_inbound(self, message: InboundMessage, desk: IntakeContext) -> object:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.mark.parametrize("result", [42, "", "  ", RuntimeError("boom")])
def test_a_broken_screen_is_a_plugin_error_and_writes_nothing(result: object) -> None:
    desk = Helpdesk(plugins=[BrokenScreen(result)], entry_points=False)
    with pytest.raises(PluginError, match="helpkit_screen_inbound"):
        desk.receive(message())
    assert desk.store.receipt("email:m1@acme.example") is None  # type: ignore[attr-defined]
    assert not desk.tickets().items


def test_plugins_that_screen_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    desk = Helpdesk(plugins=[VipScreen()], entry_points=False)
    screening = {info.name: info.screens_inbound for info in desk.plugins.plugins()}
    assert screening["helpkit.builtins"] is True
    assert [v for k, v in screening.items() if k != "helpkit.builtins"] == [True]
    from helpkit.cli import main

    assert main(["plugins"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("helpkit.builtins")]
    assert line.endswith(" screen=yes")
