"""desk.kb: the knowledge base through the facade (articles, tree, search, suggestions,
answers published from solved tickets, links, deflection), on the memory and SQLite stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from helpkit import Helpdesk
from helpkit.errors import (
    AccessDeniedError,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from helpkit.knowledge import ArticleAction, VersionState
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Actor

ANN = Actor.agent("ann")


@pytest.fixture(params=["memory", "sqlite"])
def desk(
    request: pytest.FixtureRequest, tmp_path: Path, helpkit_clock: FrozenClock
) -> Iterator[Helpdesk]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'kb.db'}"
    with Helpdesk(url, clock=helpkit_clock, entry_points=False) as opened:
        opened.add_agent("ann", "Ann Agent", email="ann@desk.example")
        yield opened


def test_an_article_goes_from_draft_to_published_and_back_to_archived(desk: Helpdesk) -> None:
    kb = desk.kb
    category = kb.add_category("Accounts", ANN, category_id="acc")
    section = kb.add_section(category.id, "Passwords", ANN, section_id="pw")
    article = kb.create("Reset your password", "Open settings.", ANN, section_id=section.id)
    assert article.status is VersionState.DRAFT
    assert kb.search("password") == []
    assert [h.article_id for h in kb.search("password", drafts=True)] == [article.id]
    published = kb.publish(article.id, ANN)
    assert published.status is VersionState.PUBLISHED
    assert [h.article_id for h in kb.search("password")] == [article.id]
    edited = kb.edit(article.id, ANN, body="Open settings, then Security.")
    assert [v.state for v in edited.versions] == [VersionState.PUBLISHED, VersionState.DRAFT]
    read = edited.variant("en")
    assert read is not None and read.body == "Open settings."  # customers read the published
    again = kb.publish(article.id, ANN)
    assert [v.state for v in again.versions] == [VersionState.ARCHIVED, VersionState.PUBLISHED]
    archived = kb.archive(article.id, ANN)
    assert archived.status is VersionState.ARCHIVED and kb.search("password") == []
    assert [c.action for c in kb.history(article.id)] == [
        ArticleAction.CREATED,
        ArticleAction.PUBLISHED,
        ArticleAction.EDITED,
        ArticleAction.PUBLISHED,
        ArticleAction.ARCHIVED,
    ]
    assert [a.id for a in kb.articles(section_id="pw")] == [article.id]
    with pytest.raises(InvalidTransitionError):
        kb.archive(article.id, ANN)
    with pytest.raises(InvalidTransitionError):
        kb.publish(article.id, ANN)


def test_a_stale_revision_and_a_contact_are_refused(desk: Helpdesk) -> None:
    article = desk.kb.create("Title", "Body", ANN)
    desk.kb.edit(article.id, ANN, title="New title")
    with pytest.raises(ConflictError):
        desk.kb.publish(article.id, ANN, expected_revision=article.revision)
    with pytest.raises(ValidationError):
        desk.kb.create("Title", "Body", Actor.contact("c1"))
    with pytest.raises(NotFoundError):
        desk.kb.create("Title", "Body", Actor.agent("nobody"))
    desk.add_agent("lee", "Lee Light", role="light_agent")  # no knowledge permission
    with pytest.raises(AccessDeniedError, match="knowledge"):
        desk.kb.publish(article.id, Actor.agent("lee"))
    with pytest.raises(AccessDeniedError, match="knowledge"):
        desk.kb.create("Title", "Body", Actor.agent("lee"))
    desk.deactivate_agent("ann")
    with pytest.raises(AccessDeniedError, match="inactive"):
        desk.kb.publish(article.id, ANN)
    assert desk.kb.article(article.id).revision == article.revision + 1


def test_locale_variants_fall_back_to_the_primary_language_then_the_default(
    desk: Helpdesk,
) -> None:
    article = desk.kb.create("Reset your password", "Open settings.", ANN)
    desk.kb.edit(article.id, ANN, locale="pt", title="Redefinir a senha", body="Abra.")
    with pytest.raises(ValidationError):
        desk.kb.edit(article.id, ANN, locale="de", title="Nur ein Titel")
    with pytest.raises(ValidationError):
        desk.kb.edit(article.id, ANN)
    published = desk.kb.publish(article.id, ANN)
    titles = {tag: published.variant(tag) for tag in ("pt-BR", "de", None)}
    assert {tag: v.title if v else None for tag, v in titles.items()} == {
        "pt-BR": "Redefinir a senha",
        "de": "Reset your password",
        None: "Reset your password",
    }
    hits = desk.kb.search("senha", locale="pt-BR")
    assert [(h.article_id, h.locale) for h in hits] == [(article.id, "pt")]


def test_publish_answer_drafts_a_solved_tickets_answer_linked_to_it(desk: Helpdesk) -> None:
    ticket = desk.open_ticket(
        Actor.system(), requester="carol@example.com", subject="VPN drops every hour",
        body="My VPN disconnects.",
    )  # fmt: skip
    desk.note(ticket.id, ANN, "internal: known issue")
    with pytest.raises(InvalidTransitionError):
        desk.kb.publish_answer(ticket.id, ANN)
    desk.reply(ticket.id, ANN, "Update the VPN client to 5.2; the hourly drop is fixed there.")
    desk.resolve(ticket.id, ANN)
    article = desk.kb.publish_answer(ticket.number, ANN)
    assert article.status is VersionState.DRAFT
    assert article.latest.variants[0].title == "VPN drops every hour"
    assert "5.2" in article.latest.variants[0].body
    assert [x.article_id for x in desk.kb.articles_of(ticket.id)] == [article.id]
    assert [x.ticket_id for x in desk.kb.tickets_of(article.id)] == [ticket.id]
    assert desk.kb.unlink(ticket.id, article.id, ANN) is True
    assert desk.kb.articles_of(ticket.id) == []
    assert desk.kb.link(ticket.id, article.id, ANN) is True
    assert desk.kb.link(ticket.id, article.id, ANN) is False


def test_a_ticket_without_a_public_answer_publishes_nothing(desk: Helpdesk) -> None:
    ticket = desk.open_ticket(
        Actor.system(), requester="carol@example.com", subject="Printer", body="Jammed."
    )
    desk.resolve(ticket.id, ANN)
    with pytest.raises(InvalidTransitionError):
        desk.kb.publish_answer(ticket.id, ANN)
    assert desk.kb.articles() == []


def test_suggestions_count_as_deflected_unless_a_ticket_follows(
    desk: Helpdesk, helpkit_clock: FrozenClock
) -> None:
    article = desk.kb.create("Reset your password", "Open settings, then reset.", ANN)
    desk.kb.publish(article.id, ANN)
    carol = desk.contact_for_email("carol@example.com")
    start = desk.now()
    nothing = desk.kb.suggest("Invoice copy", "Where is my invoice?")
    assert nothing.suggestion_id is None and nothing.hits == ()
    shown = [
        desk.kb.suggest("Forgot password", "I cannot log in", contact_id=carol.id),
        desk.kb.suggest("password reset", session="web-1"),
        desk.kb.suggest("password", session="web-2"),
    ]
    assert all(s.hits[0].article_id == article.id for s in shown)
    # Carol opens a ticket anyway; web-2's visitor too, and the host says so.
    helpkit_clock.advance(hours=1)
    ticket = desk.open_ticket(
        Actor.contact(carol.id), requester=carol.id, subject="Still locked out", body="Help"
    )
    assert shown[2].suggestion_id is not None
    desk.kb.opened_after(shown[2].suggestion_id, ticket.id)
    until = desk.now()
    early = desk.kb.deflection(start, until)
    assert (early.shown, early.ticketed, early.pending, early.deflected) == (3, 2, 1, 0)
    helpkit_clock.advance(days=2)
    later = desk.kb.deflection(start, until)
    assert (later.shown, later.ticketed, later.pending, later.deflected) == (3, 2, 0, 1)
    assert later.rate == pytest.approx(1 / 3)
    # Carol's ticket came after the window of a shorter one: then hers was deflected too.
    short = desk.kb.deflection(start, until, window=timedelta(minutes=30))
    assert (short.deflected, short.ticketed) == (2, 1)
