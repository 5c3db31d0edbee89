"""The knowledge base of a desk (``desk.kb``): articles, their tree, search, suggestions for
a new ticket, answers published from solved tickets, links to tickets, and deflection.

A service beside the directory: it writes the knowledge base straight through the store's
:class:`~helpkit.ports.KnowledgeBase` capability (an article is not a ticket, so nothing
goes through the command pipeline), each change decided by the pure functions of
:mod:`helpkit.knowledge` and saved with its audit entry, guarded by the article's revision.
It sees the desk through :class:`~helpkit.ports.DeskContext` (the store, the clock, tickets
and their history), never the facade.

Staff commands (everything that writes articles, categories, sections and links) take the
acting :class:`~helpkit.tickets.Actor`: an active agent of the desk whose role holds the
``knowledge`` permission (see the page *Access*), or a system actor.
Customers' reads (:meth:`KnowledgeBaseService.search` without ``drafts``,
:meth:`~KnowledgeBaseService.suggest`) see only published texts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final, cast

import attrs

from helpkit import knowledge
from helpkit._checks import check_int, check_text
from helpkit._time import to_utc
from helpkit.errors import ConfigError, ConflictError, InvalidTransitionError, ValidationError
from helpkit.fold import conversation
from helpkit.knowledge import (
    Article,
    ArticleChange,
    ArticleHit,
    ArticleLink,
    Category,
    Deflection,
    Section,
    Suggestion,
    count_deflection,
    query_terms,
)
from helpkit.locales import check_locale
from helpkit.ports import Capability, DeskContext, KnowledgeBase
from helpkit.queries import SortOrder, TicketQuery
from helpkit.tickets import Actor, ActorKind, StatusCategory, Ticket

__all__ = ["DEFLECTION_WINDOW", "KnowledgeBaseService", "Suggested"]

DEFLECTION_WINDOW: Final = timedelta(hours=24)
"""How long after a suggestion a ticket of the same person counts as not deflected."""

_ANSWERED: Final = frozenset({StatusCategory.SOLVED, StatusCategory.CLOSED})


@attrs.frozen
class Suggested:
    """What :meth:`KnowledgeBaseService.suggest` showed: the articles, and the id of the
    suggestion recorded for deflection (None when there was nothing to show)."""

    suggestion_id: str | None
    hits: tuple[ArticleHit, ...]


class KnowledgeBaseService:
    """The knowledge base of one desk (see the module's documentation)."""

    def __init__(
        self,
        context: DeskContext,
        new_id: Callable[[], str],
        *,
        window: timedelta = DEFLECTION_WINDOW,
        authorize: Callable[[Actor], object] | None = None,
    ) -> None:
        self._context = context
        self._new_id = new_id
        # The desk's check of an agent's role (the knowledge permission); raises to refuse.
        self._authorize = authorize
        if not isinstance(window, timedelta) or window <= timedelta(0):
            raise ConfigError(f"the deflection window is a positive duration; got {window!r}")
        self.window = window

    # ------------------------------------------------------------ plumbing

    @property
    def _kb(self) -> KnowledgeBase:
        store = self._context.store
        if Capability.KNOWLEDGE not in store.capabilities:
            raise ConfigError(
                f"the store {type(store).__name__} keeps no knowledge base (it does not declare "
                "the 'knowledge' capability)"
            )
        return cast(KnowledgeBase, store)

    def _staff(self, actor: Actor) -> Actor:
        if not isinstance(actor, Actor):
            raise ValidationError(f"actor must be an Actor; got {actor!r:.60}")
        if actor.kind is ActorKind.CONTACT:
            raise ValidationError(f"{actor} is a contact: only agents change the knowledge base")
        if self._authorize is not None:
            self._authorize(actor)
        if actor.kind is ActorKind.AGENT and not self._context.store.get_agent(actor.id).active:
            raise InvalidTransitionError(f"agent {actor.id!r} is inactive")
        return actor

    def _save(self, made: tuple[Article, ArticleChange]) -> Article:
        self._kb.save_article(*made)
        return made[0]

    def _current(self, article_id: str, expected_revision: int | None) -> Article:
        article = self._kb.article(check_text(article_id, "an article id"))
        if expected_revision is not None:
            check_int(expected_revision, "expected_revision", minimum=1)
            if article.revision != expected_revision:
                raise ConflictError(
                    f"article {article.id!r} is at revision {article.revision}, not "
                    f"{expected_revision}: it changed since you read it. Reload and retry."
                )
        return article

    # ------------------------------------------------------------ the tree

    def add_category(
        self,
        name: str,
        actor: Actor,
        *,
        category_id: str | None = None,
        position: int = 0,
        description: str = "",
    ) -> Category:
        """Add (or, with the id of one, replace) a category."""
        self._staff(actor)
        category = Category(
            id=category_id or self._new_id(), name=name, position=position, description=description
        )
        self._kb.save_category(category)
        return category

    def add_section(
        self,
        category_id: str,
        name: str,
        actor: Actor,
        *,
        section_id: str | None = None,
        position: int = 0,
        description: str = "",
    ) -> Section:
        """Add (or, with the id of one, replace) a section of a category."""
        self._staff(actor)
        section = Section(
            id=section_id or self._new_id(),
            category_id=category_id,
            name=name,
            position=position,
            description=description,
        )
        self._kb.save_section(section)
        return section

    def categories(self) -> list[Category]:
        """Every category, by position then id."""
        return self._kb.categories()

    def sections(self, category_id: str | None = None) -> list[Section]:
        """The sections (of one category)."""
        return self._kb.sections(category_id)

    # ------------------------------------------------------------ articles

    def create(
        self,
        title: str,
        body: str,
        actor: Actor,
        *,
        locale: str = "en",
        section_id: str | None = None,
        article_id: str | None = None,
    ) -> Article:
        """A new article, a draft in ``locale`` (its default locale)."""
        self._staff(actor)
        return self._save(
            knowledge.create(
                article_id or self._new_id(),
                title=title,
                body=body,
                locale=locale,
                actor=actor,
                now=self._context.now(),
                section_id=section_id,
            )
        )

    def edit(
        self,
        article_id: str,
        actor: Actor,
        *,
        title: str | None = None,
        body: str | None = None,
        locale: str | None = None,
        expected_revision: int | None = None,
    ) -> Article:
        """Set the title and body of one locale (the default one when None; either left out
        keeps the latest version's text of that locale): in the draft, or a new draft."""
        self._staff(actor)
        if title is None and body is None:
            raise ValidationError("an edit sets a title, a body or both")
        article = self._current(article_id, expected_revision)
        tag = article.default_locale if locale is None else check_locale(locale)
        latest = {v.locale: v for v in article.latest.variants}.get(tag)
        if latest is None and (title is None or body is None):
            raise ValidationError(f"a new {tag!r} variant needs a title and a body")
        new_title = title if title is not None else cast(knowledge.Variant, latest).title
        new_body = body if body is not None else cast(knowledge.Variant, latest).body
        return self._save(
            knowledge.edit(
                article,
                title=new_title,
                body=new_body,
                locale=tag,
                actor=actor,
                now=self._context.now(),
            )
        )

    def publish(
        self, article_id: str, actor: Actor, *, expected_revision: int | None = None
    ) -> Article:
        """Publish the article's draft (archiving the version published before)."""
        self._staff(actor)
        article = self._current(article_id, expected_revision)
        return self._save(knowledge.publish(article, actor=actor, now=self._context.now()))

    def archive(
        self, article_id: str, actor: Actor, *, expected_revision: int | None = None
    ) -> Article:
        """Withdraw the article: every live version archived."""
        self._staff(actor)
        article = self._current(article_id, expected_revision)
        return self._save(knowledge.archive(article, actor=actor, now=self._context.now()))

    def move(
        self,
        article_id: str,
        section_id: str | None,
        actor: Actor,
        *,
        expected_revision: int | None = None,
    ) -> Article:
        """Put the article in another section (None: in none)."""
        self._staff(actor)
        article = self._current(article_id, expected_revision)
        return self._save(knowledge.move(article, section_id, actor=actor, now=self._context.now()))

    def article(self, article_id: str) -> Article:
        """An article by id."""
        return self._kb.article(article_id)

    def articles(
        self, *, section_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[Article]:
        """Articles (of one section), by id."""
        return self._kb.articles(section_id=section_id, after=after, limit=limit)

    def history(self, article_id: str) -> list[ArticleChange]:
        """An article's audit trail: who changed what, when."""
        return self._kb.article_changes(article_id)

    # ------------------------------------------------------------ search and suggestions

    def search(
        self, text: str, *, locale: str | None = None, drafts: bool = False, limit: int = 10
    ) -> list[ArticleHit]:
        """Articles for ``text``, best first: their published text (what customers read),
        or with ``drafts`` their current text (agents)."""
        return self._kb.search_articles(
            query_terms(text), locale=locale, drafts=drafts, limit=limit
        )

    def suggest(
        self,
        subject: str,
        body: str = "",
        *,
        locale: str | None = None,
        contact_id: str | None = None,
        session: str | None = None,
        limit: int = 3,
    ) -> Suggested:
        """The top published articles for a ticket about to be opened (its subject weighs
        first), recorded as a suggestion shown (to count deflection) when there are any."""
        terms = query_terms(f"{check_text(subject, 'subject')}\n{check_text(body, 'body')}")
        hits = tuple(self._kb.search_articles(terms, locale=locale, limit=limit))
        if not hits:
            return Suggested(None, ())
        suggestion = Suggestion(
            id=self._new_id(),
            shown_at=self._context.now(),
            article_ids=tuple(h.article_id for h in hits),
            contact_id=contact_id,
            session=session,
        )
        self._kb.record_suggestion(suggestion)
        return Suggested(suggestion.id, hits)

    def opened_after(self, suggestion_id: str, ticket: Ticket | str | int) -> Suggestion:
        """Record that a ticket was opened after a suggestion (the host calls it when the
        person it was shown to opens one anyway): the suggestion did not deflect it."""
        opened = self._context.ticket(ticket)
        return self._kb.mark_suggestion(suggestion_id, opened.id)

    def deflection(
        self, since: datetime, until: datetime, *, window: timedelta | None = None
    ) -> Deflection:
        """What became of the suggestions shown in ``[since, until)``: a suggestion is
        deflected when no ticket followed within ``window`` (the service's by default): none
        recorded with :meth:`opened_after`, and none opened by its contact."""
        span = self.window if window is None else window
        if not isinstance(span, timedelta) or span <= timedelta(0):
            raise ValidationError(f"window must be a positive duration; got {span!r:.60}")
        start, end = to_utc(since, "since"), to_utc(until, "until")
        shown = self._kb.suggestions(since=start, until=end)
        followed = {
            s.id: self._contact_opened(s.contact_id, s.shown_at, s.shown_at + span)
            for s in shown
            if s.ticket_id is None and s.contact_id is not None
        }
        return count_deflection(shown, ticketed=followed, now=self._context.now(), window=span)

    def _contact_opened(self, contact_id: str, start: datetime, end: datetime) -> bool:
        query = TicketQuery(requester_ids={contact_id}, sort=SortOrder.CREATED_DESC, limit=50)
        while True:
            page = self._context.store.query(query)
            for ticket in page:
                if ticket.created_at < start:
                    return False
                if ticket.created_at < end:
                    return True
            if page.next_cursor is None:
                return False
            query = attrs.evolve(query, after=page.next_cursor)

    # ------------------------------------------------------------ tickets

    def publish_answer(
        self,
        ticket: Ticket | str | int,
        actor: Actor,
        *,
        title: str | None = None,
        locale: str = "en",
        section_id: str | None = None,
    ) -> Article:
        """A draft article made of a solved (or closed) ticket's public answer (its last
        public comment by an agent), titled with its subject, linked to the ticket."""
        self._staff(actor)
        found = self._context.ticket(ticket)
        if found.category not in _ANSWERED:
            raise InvalidTransitionError(
                f"ticket #{found.number} is {found.status}: only a solved or closed ticket's "
                "answer is published"
            )
        answers = [
            c
            for c in conversation(self._context.history(found.id))
            if c.public and c.author.kind is ActorKind.AGENT
        ]
        if not answers:
            raise InvalidTransitionError(f"ticket #{found.number} has no public answer")
        article = self.create(
            title or found.subject, answers[-1].body, actor, locale=locale, section_id=section_id
        )
        self._kb.link_article(
            ArticleLink(
                ticket_id=found.id,
                article_id=article.id,
                linked_at=self._context.now(),
                linked_by=actor,
            )
        )
        return article

    def link(self, ticket: Ticket | str | int, article_id: str, actor: Actor) -> bool:
        """Record that a ticket cites an article; False when it already did."""
        self._staff(actor)
        found = self._context.ticket(ticket)
        return self._kb.link_article(
            ArticleLink(
                ticket_id=found.id,
                article_id=check_text(article_id, "an article id"),
                linked_at=self._context.now(),
                linked_by=actor,
            )
        )

    def unlink(self, ticket: Ticket | str | int, article_id: str, actor: Actor) -> bool:
        """Forget that a ticket cites an article; whether it did."""
        self._staff(actor)
        found = self._context.ticket(ticket)
        return self._kb.unlink_article(found.id, check_text(article_id, "an article id"))

    def articles_of(self, ticket: Ticket | str | int) -> list[ArticleLink]:
        """The articles a ticket cites, oldest link first."""
        return self._kb.ticket_articles(self._context.ticket(ticket).id)

    def tickets_of(self, article_id: str) -> list[ArticleLink]:
        """The tickets citing an article, oldest link first."""
        self._kb.article(check_text(article_id, "an article id"))
        return self._kb.article_tickets(article_id)
