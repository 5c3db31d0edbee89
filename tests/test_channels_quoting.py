"""Quoted history in replies (helpkit.channels.quoting): the forms of each mail reader and
language are cut off, the sender's own text never is."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit.channels.quoting import split_quoted

NEW = "Still broken after the update.\n\nThanks,\nBob"
HISTORY = "> Have you tried turning it off and on again?\n>\n> Ana"


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, 2 Mar 2026 at 09:30, Ana <support@help.example> wrote:",
        # Gmail wraps a long attribution line
        "On Mon, 2 Mar 2026 at 09:30, Ana from the Acme Support desk <support@help.example>\n"
        "wrote:",
        "On 2 Mar 2026, at 09:30, Ana <support@help.example> wrote:",  # Apple Mail
        "On 03/02/2026 09:30 AM, Ana wrote:",  # Thunderbird
        "Le lun. 2 mars 2026 à 09:30, Ana <support@help.example> a écrit :",
        "Le 02/03/2026 à 09:30, Ana a écrit :",
        "Am 02.03.2026 um 09:30 schrieb Ana <support@help.example>:",
        "Am Mo., 2. März 2026 um 09:30 Uhr schrieb Ana <support@help.example>:",
        "El lun, 2 mar 2026 a las 09:30, Ana (<support@help.example>) escribió:",
        "Op ma 2 mrt. 2026 om 09:30 schreef Ana <support@help.example>:",
        "Il giorno lun 2 mar 2026 alle ore 09:30 Ana <support@help.example> ha scritto:",
        "-----Original Message-----\nFrom: Ana <support@help.example>\nSent: Monday, March 2, "
        "2026 9:30 AM",
        "-----Ursprüngliche Nachricht-----\nVon: Ana <support@help.example>",
        "-----Message d'origine-----\nDe : Ana <support@help.example>",
        "________________________________\nFrom: Ana <support@help.example>\n"
        "Sent: Monday, March 2, 2026 9:30 AM\nTo: Bob <bob@acme.example>\nSubject: RE: [#42] VPN",
        "From: Ana <support@help.example>\nSent: Monday, March 2, 2026 9:30 AM\nTo: Bob",
        "De : Ana <support@help.example>\nEnvoyé : lundi 2 mars 2026 09:30\nÀ : Bob",
        "Von: Ana <support@help.example>\nGesendet: Montag, 2. März 2026 09:30\nAn: Bob",
        "*From:* Ana <support@help.example>\n*Date:* Monday, March 2, 2026 9:30 AM",
    ],
)
def test_each_form_of_history_is_cut_off(attribution: str) -> None:
    text = f"{NEW}\n\n{attribution}\n\n{HISTORY}\n"
    split = split_quoted(text)
    assert split.body == NEW
    assert split.stripped
    assert split.quoted.startswith(attribution.split("\n", 1)[0])
    assert text.startswith(split.body)


def test_a_trailing_quote_block_is_cut_off() -> None:
    split = split_quoted(f"{NEW}\n\n{HISTORY}\n\n")
    assert (split.body, split.quoted) == (NEW, f"{HISTORY}\n\n")


def test_an_inline_answer_keeps_its_quotes() -> None:
    text = "> Which version?\n3.2.1\n> Which OS?\nLinux\n"
    assert split_quoted(text).body == text
    assert not split_quoted(text).stripped


@pytest.mark.parametrize(
    "text",
    [
        "On Monday the printer wrote: error 42 on the display.\nPlease help.",
        "On Monday the printer wrote:\nPC LOAD LETTER",  # no digit: not an attribution
        "From: my laptop\nit will not boot.",  # a From: line without a Sent: line
        "Le serveur a écrit :\nrien du tout",
    ],
)
def test_the_senders_own_text_is_kept(text: str) -> None:
    split = split_quoted(text)
    assert split.body == text
    assert split.quoted == ""


def test_a_message_that_is_only_a_quote_is_kept_whole() -> None:
    text = f"On Mon, 2 Mar 2026 at 09:30, Ana wrote:\n{HISTORY}"
    assert split_quoted(text).body == text
    assert split_quoted(HISTORY).body == HISTORY


def test_the_first_history_marker_wins() -> None:
    text = (
        f"{NEW}\n\nOn Mon, 2 Mar 2026 at 09:30, Ana wrote:\n> Hello\n>\n"
        "> On Sun, 1 Mar 2026 at 08:00, Bob wrote:\n>> first\n"
    )
    assert split_quoted(text).body == NEW


LINES = st.lists(
    st.one_of(
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n"), max_size=60),
        st.sampled_from(
            [
                "",
                "> quoted",
                ">",
                "On Mon, 2 Mar 2026 at 09:30, Ana wrote:",
                "wrote:",
                "-----Original Message-----",
                "From: Ana",
                "Sent: 2 March 2026",
                "_" * 32,
                "Am 2.3.2026 schrieb Ana:",
            ]
        ),
    ),
    max_size=30,
)


@settings(max_examples=400, deadline=None)
@given(LINES)
def test_the_body_is_a_prefix_and_stripping_again_changes_nothing(lines: list[str]) -> None:
    text = "\n".join(lines)
    split = split_quoted(text)
    assert text.startswith(split.body)
    if split.stripped:
        assert split.body.strip()
        assert text.startswith(split.body) and split.quoted in text
        assert split_quoted(split.body).body == split.body
    else:
        assert split.body == text


@settings(max_examples=200, deadline=None)
@given(
    new=st.lists(
        st.from_regex(r"[A-Za-z][A-Za-z ,.!?']{0,50}", fullmatch=True), min_size=1, max_size=6
    ),
    quoted=st.lists(st.text(max_size=40).map(lambda s: "> " + s.replace("\n", " ")), max_size=8),
    form=st.sampled_from(
        [
            "On Tue, 3 Mar 2026 at 10:{m:02d}, Ana <a@help.example> wrote:",
            "Le mar. 3 mars 2026 à 10:{m:02d}, Ana a écrit :",
            "Am 03.03.2026 um 10:{m:02d} schrieb Ana:",
            "-----Original Message-----\nFrom: Ana\nSent: 3 March 2026 10:{m:02d}",
        ]
    ),
    minute=st.integers(0, 59),
)
def test_new_text_above_any_history_is_kept_exactly(
    new: list[str], quoted: list[str], form: str, minute: int
) -> None:
    body = "\n".join(new).rstrip()
    if not body.strip() or body.lstrip()[:2].lower() in {"on", "le", "am", "el", "op", "il"}:
        body = "Hello " + body
    text = f"{body}\n\n{form.format(m=minute)}\n" + "\n".join(quoted)
    assert split_quoted(text).body == body.rstrip()
