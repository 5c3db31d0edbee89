"""Contacts, organizations, agents and groups: validation and normalization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit.errors import NaiveDatetimeError, ValidationError
from helpkit.people import (
    Agent,
    Contact,
    Group,
    Organization,
    normalize_domain,
    normalize_email,
    normalize_name,
)
from helpkit.testing.strategies import contacts, emails, organizations

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def contact(**overrides: object) -> Contact:
    values: dict[str, object] = {
        "id": "c1",
        "name": "José Ñúñez",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return Contact(**values)  # type: ignore[arg-type]


def test_name_matching_is_case_and_accent_insensitive() -> None:
    assert normalize_name("José Ñúñez") == normalize_name("jose nunez") == "jose nunez"
    assert normalize_name("  ZOË   saldaña ") == "zoe saldana"
    assert normalize_name("Straße") == normalize_name("STRASSE")
    assert normalize_name("Ｊｏｓé") == "jose"  # full-width letters fold too (NFKD)
    assert normalize_name("José") != normalize_name("Josefa")


@given(st.text())
def test_normalize_name_is_idempotent(name: str) -> None:
    once = normalize_name(name)
    assert normalize_name(once) == once


def test_contact_name_key_and_email_normalization() -> None:
    c = contact(emails=["  Jose.Nunez@Example.COM ", "jose.nunez@example.com", "J@b.io"])
    assert c.emails == ("jose.nunez@example.com", "j@b.io")  # lower-cased, deduplicated, ordered
    assert c.email == "jose.nunez@example.com"
    assert c.name_key == "jose nunez"
    assert contact().email is None


def test_single_email_string_is_a_list_of_one() -> None:
    assert contact(emails="a@example.org").emails == ("a@example.org",)


def test_non_ascii_local_part_is_kept() -> None:
    assert normalize_email("Renée@Example.fr") == "renée@example.fr"


@pytest.mark.parametrize(
    "bad",
    ["", "plain", "a@b", "a@@b.com", "a b@c.com", "a@-b.com", "a@b-.com", "<a@b.com>", "a@b..com"],
)
def test_bad_emails_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="not a valid email"):
        normalize_email(bad)
    with pytest.raises(ValidationError):
        contact(emails=[bad])


def test_emails_must_be_strings_in_a_list() -> None:
    with pytest.raises(ValidationError):
        contact(emails=[42])
    with pytest.raises(ValidationError):
        contact(emails={"a@b.com": 1})


@given(emails())
def test_generated_emails_are_accepted_and_normalized_idempotently(email: str) -> None:
    normalized = normalize_email(email)
    assert normalized == email.lower()
    assert normalize_email(normalized) == normalized


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("@example.com", "example.com"),
        ("example.com.", "example.com"),
        (" sub.example.co.uk ", "sub.example.co.uk"),
    ],
)
def test_domains_normalized(raw: str, expected: str) -> None:
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize("bad", ["", "localhost", "exa mple.com", "-a.com", "a_b.com", "é.com"])
def test_bad_domains_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="not a valid domain"):
        normalize_domain(bad)


def test_organization_domains() -> None:
    org = Organization(
        id="o1",
        name="Société Générale",
        domains=["SG.fr", "@sg.fr", "socgen.com"],
        created_at=T0,
        updated_at=T0,
    )
    assert org.domains == ("sg.fr", "socgen.com")
    assert org.name_key == "societe generale"
    with pytest.raises(ValidationError):
        Organization(id="o1", name="X", domains=["nope"], created_at=T0, updated_at=T0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("en", "en"), ("pt-BR", "pt-BR"), ("pt_BR", "pt-BR"), ("es-419", "es-419"), (None, None)],
)
def test_languages(raw: str | None, expected: str | None) -> None:
    assert contact(language=raw).language == expected


@pytest.mark.parametrize("bad", ["e", "english-language-tag-x", "en-", "12", "en\n", " en"])
def test_bad_languages(bad: str) -> None:
    # "en\n" used to slip through (``$`` matches before a trailing newline).
    with pytest.raises(ValidationError, match="BCP 47"):
        contact(language=bad)


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/Argentina/Buenos_Aires", "UTC"])
def test_time_zones(zone: str) -> None:
    assert contact(timezone=zone).timezone == zone


@pytest.mark.parametrize("bad", ["Mars/Olympus", "", "../etc/passwd", "Europe/Paris "])
def test_bad_time_zones(bad: str) -> None:
    with pytest.raises(ValidationError, match="time zone"):
        contact(timezone=bad)


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_names_required(bad: object) -> None:
    with pytest.raises(ValidationError, match="name"):
        contact(name=bad)


def test_name_whitespace_collapsed_but_case_kept() -> None:
    assert contact(name="  José\t Ñúñez ").name == "José Ñúñez"


@pytest.mark.parametrize("bad", ["", " c1", "c1 ", None])
def test_ids(bad: object) -> None:
    with pytest.raises(ValidationError, match="id"):
        contact(id=bad)


def test_times_are_aware_and_utc() -> None:
    paris = timezone(timedelta(hours=1))
    c = contact(created_at=datetime(2026, 1, 1, 10, tzinfo=paris))
    assert c.created_at == datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert c.created_at.utcoffset() == timedelta(0)
    with pytest.raises(NaiveDatetimeError, match="naive"):
        contact(created_at=datetime(2026, 1, 1))


def test_optional_texts_blank_is_none_and_version_positive() -> None:
    c = contact(phone="  ", segment=" enterprise ")
    assert c.phone is None
    assert c.segment == "enterprise"
    for bad in (0, -1, True, "1"):
        with pytest.raises(ValidationError, match="version"):
            contact(version=bad)


def test_errors_are_value_errors_for_generic_handlers() -> None:
    with pytest.raises(ValueError, match="email"):
        normalize_email("nope")
    assert issubclass(ValidationError, ValueError)


def test_contacts_are_frozen() -> None:
    c = contact()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        c.name = "x"  # type: ignore[misc]
    assert attrs.evolve(c, name="Zoë").name_key == "zoe"


def test_agents_and_groups() -> None:
    agent = Agent(id="a1", name="Ana", email="Ana@Example.com", group_ids=["l1", "l2", "l1"])
    assert agent.email == "ana@example.com"
    assert agent.group_ids == ("l1", "l2")
    assert agent.in_group("l2")
    assert not agent.in_group("l3")
    assert Group(id="l2", name="Technicians", tier=2).tier == 2
    for bad in (0, 10, True, "2"):
        with pytest.raises(ValidationError, match="tier"):
            Group(id="g", name="G", tier=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Agent(id="a1", name="Ana", email="not-an-email")


@given(contacts())
def test_generated_contacts_survive_evolve(c: Contact) -> None:
    # Every generated contact is already normalized: rebuilding it changes nothing.
    assert attrs.evolve(c) == c
    assert c.updated_at >= c.created_at
    assert all(e == e.lower() for e in c.emails)


@given(organizations(with_domains=False))
def test_organizations_without_domains(org: Organization) -> None:
    assert org.domains == ()
    assert attrs.evolve(org) == org
