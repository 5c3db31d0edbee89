"""The memory store's knowledge base (:class:`helpkit.ports.KnowledgeBase`).

A mixin of :class:`~helpkit.stores.memory.MemoryStore`, kept apart because it is a capability
of its own (``knowledge``); it uses the store's lock. Search is the ranked fallback of the
domain, :class:`helpkit.knowledge.RankedIndex` (BM25 over lightly stemmed words), one index
per kind of search document, kept up to date by each save.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar, cast

from helpkit._checks import check_text
from helpkit._codec import decoder, encoder
from helpkit._time import to_utc
from helpkit.errors import DuplicateError, NotFoundError, SchemaError, ValidationError
from helpkit.knowledge import (
    CURRENT,
    PUBLISHED,
    Article,
    ArticleChange,
    ArticleHit,
    ArticleLink,
    Category,
    RankedIndex,
    SearchDocument,
    Section,
    Suggestion,
    search_documents,
)
from helpkit.stores.contract import (
    check_article_save,
    check_kb_record,
    check_limit,
    check_search,
    check_version,
)

__all__ = ["KnowledgeMixin"]

_T = TypeVar("_T")

_DocKey = tuple[str, str, str]  # article id, kind, locale


def _copy(cls: type[_T], value: _T) -> _T:
    # Through the storage codec, as the memory store copies tickets: nothing shared.
    try:
        copied: _T = decoder(cls)(encoder(cls)(value))
    except (SchemaError, TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ValidationError(f"{cls.__name__} cannot be stored: {exc}") from exc
    return copied


class KnowledgeMixin:
    """The knowledge base of a memory store (a mixin of ``MemoryStore``)."""

    _lock: threading.Lock

    def _check_open(self) -> None:
        raise NotImplementedError  # pragma: no cover - MemoryStore's

    def _ticket_exists(self, ticket_id: str) -> bool:
        raise NotImplementedError  # pragma: no cover - MemoryStore's

    def _init_knowledge(self) -> None:
        self._kb_categories: dict[str, Category] = {}
        self._kb_sections: dict[str, Section] = {}
        self._kb_articles: dict[str, Article] = {}
        self._kb_changes: dict[str, list[ArticleChange]] = {}
        self._kb_docs: dict[_DocKey, SearchDocument] = {}
        self._kb_locales: dict[tuple[str, str], frozenset[str]] = {}
        self._kb_index = {PUBLISHED: RankedIndex(), CURRENT: RankedIndex()}
        self._kb_links: dict[tuple[str, str], ArticleLink] = {}
        self._kb_suggestions: dict[str, Suggestion] = {}

    def _clear_knowledge(self) -> None:
        self._init_knowledge()

    # ------------------------------------------------------------ tree

    def save_category(self, category: Category) -> None:
        """Insert or replace a category."""
        check_kb_record(category, Category)
        copied = _copy(Category, category)
        with self._lock:
            self._check_open()
            self._kb_categories[copied.id] = copied

    def categories(self) -> list[Category]:
        """Every category, by position then id."""
        with self._lock:
            self._check_open()
            found = list(self._kb_categories.values())
        return sorted(found, key=lambda c: (c.position, c.id))

    def save_section(self, section: Section) -> None:
        """Insert or replace a section of an existing category."""
        check_kb_record(section, Section)
        copied = _copy(Section, section)
        with self._lock:
            self._check_open()
            if copied.category_id not in self._kb_categories:
                raise NotFoundError(f"no category {copied.category_id!r:.200}")
            self._kb_sections[copied.id] = copied

    def sections(self, category_id: str | None = None) -> list[Section]:
        """The sections (of one category), by category, position, then id."""
        if category_id is not None:
            check_text(category_id, "a category id")
        with self._lock:
            self._check_open()
            found = [
                s
                for s in self._kb_sections.values()
                if category_id is None or s.category_id == category_id
            ]
        return sorted(found, key=lambda s: (s.category_id, s.position, s.id))

    # ------------------------------------------------------------ articles

    def save_article(self, article: Article, change: ArticleChange) -> None:
        """Save an article with its audit entry, guarded by its revision."""
        check_article_save(article, change)
        copied = _copy(Article, article)
        entry = _copy(ArticleChange, change)
        documents = search_documents(copied)
        with self._lock:
            self._check_open()
            stored = self._kb_articles.get(copied.id)
            check_version(
                "article", copied.id, None if stored is None else stored.revision, copied.revision
            )
            if copied.section_id is not None and copied.section_id not in self._kb_sections:
                raise NotFoundError(f"no section {copied.section_id!r:.200}")
            for key in [k for k in self._kb_docs if k[0] == copied.id]:
                del self._kb_docs[key]
                self._kb_index[key[1]].remove(key)
            for kind in (PUBLISHED, CURRENT):
                self._kb_locales.pop((copied.id, kind), None)
            for doc in documents:
                key = (doc.article_id, doc.kind, doc.locale)
                self._kb_docs[key] = doc
                self._kb_index[doc.kind].add(key, doc.title, doc.body)
                self._kb_locales[(doc.article_id, doc.kind)] = self._kb_locales.get(
                    (doc.article_id, doc.kind), frozenset()
                ) | {doc.locale}
            self._kb_articles[copied.id] = copied
            self._kb_changes.setdefault(copied.id, []).append(entry)

    def article(self, article_id: str) -> Article:
        """An article by id."""
        check_text(article_id, "an article id")
        with self._lock:
            self._check_open()
            found = self._kb_articles.get(article_id)
        if found is None:
            raise NotFoundError(f"no article {article_id!r:.200}")
        return found

    def articles(
        self, *, section_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[Article]:
        """Articles (of one section) by id, those after id ``after``."""
        check_limit(limit)
        if section_id is not None:
            check_text(section_id, "a section id")
        if after is not None:
            check_text(after, "after")
        with self._lock:
            self._check_open()
            found = [
                a
                for a in self._kb_articles.values()
                if (section_id is None or a.section_id == section_id)
                and (after is None or a.id > after)
            ]
        found.sort(key=lambda a: a.id)
        return found[:limit]

    def article_changes(self, article_id: str) -> list[ArticleChange]:
        """An article's audit trail, oldest first."""
        check_text(article_id, "an article id")
        with self._lock:
            self._check_open()
            if article_id not in self._kb_articles:
                raise NotFoundError(f"no article {article_id!r:.200}")
            return list(self._kb_changes.get(article_id, ()))

    def search_articles(
        self,
        terms: Sequence[str],
        *,
        locale: str | None = None,
        drafts: bool = False,
        limit: int = 10,
    ) -> list[ArticleHit]:
        """The best ``limit`` articles holding any of ``terms``, ranked by BM25."""
        search = check_search(terms, locale, drafts, limit)
        if not search.terms:
            return []
        with self._lock:
            self._check_open()
            locales = self._kb_locales

            def readable(key: object) -> bool:
                article_id, kind, tag = cast(_DocKey, key)
                held = locales.get((article_id, kind), frozenset())
                if search.locale is not None and search.locale in held:
                    return bool(tag == search.locale)
                if search.primary is not None and search.primary in held:
                    return bool(tag == search.primary)
                return self._kb_docs[cast(_DocKey, key)].is_default

            ranked = self._kb_index[search.kind].search(
                search.terms, keep=readable, limit=search.limit
            )
            docs = [(self._kb_docs[cast(_DocKey, key)], score) for key, score in ranked]
        return [
            ArticleHit(
                article_id=d.article_id,
                version=d.version,
                locale=d.locale,
                title=d.title,
                score=score,
            )
            for d, score in docs
        ]

    # ------------------------------------------------------------ links

    def link_article(self, link: ArticleLink) -> bool:
        """Record that a ticket cites an article; False when it already did."""
        check_kb_record(link, ArticleLink)
        copied = _copy(ArticleLink, link)
        with self._lock:
            self._check_open()
            if copied.article_id not in self._kb_articles:
                raise NotFoundError(f"no article {copied.article_id!r:.200}")
            if not self._ticket_exists(copied.ticket_id):
                raise NotFoundError(f"no ticket {copied.ticket_id!r:.200}")
            key = (copied.ticket_id, copied.article_id)
            if key in self._kb_links:
                return False
            self._kb_links[key] = copied
            return True

    def unlink_article(self, ticket_id: str, article_id: str) -> bool:
        """Forget a link; whether there was one."""
        check_text(ticket_id, "a ticket id")
        check_text(article_id, "an article id")
        with self._lock:
            self._check_open()
            return self._kb_links.pop((ticket_id, article_id), None) is not None

    def ticket_articles(self, ticket_id: str) -> list[ArticleLink]:
        """The links of a ticket, oldest first."""
        check_text(ticket_id, "a ticket id")
        with self._lock:
            self._check_open()
            found = [v for (t, _), v in self._kb_links.items() if t == ticket_id]
        return sorted(found, key=lambda link: (link.linked_at, link.article_id))

    def article_tickets(self, article_id: str) -> list[ArticleLink]:
        """The links to an article, oldest first."""
        check_text(article_id, "an article id")
        with self._lock:
            self._check_open()
            found = [v for (_, a), v in self._kb_links.items() if a == article_id]
        return sorted(found, key=lambda link: (link.linked_at, link.ticket_id))

    # ------------------------------------------------------------ suggestions

    def record_suggestion(self, suggestion: Suggestion) -> None:
        """Keep a suggestion shown."""
        check_kb_record(suggestion, Suggestion)
        copied = _copy(Suggestion, suggestion)
        with self._lock:
            self._check_open()
            if copied.id in self._kb_suggestions:
                raise DuplicateError(f"suggestion {copied.id!r:.200} was recorded before")
            self._kb_suggestions[copied.id] = copied

    def mark_suggestion(self, suggestion_id: str, ticket_id: str) -> Suggestion:
        """Record the ticket opened after a suggestion (the first one recorded stays)."""
        check_text(suggestion_id, "a suggestion id")
        check_text(ticket_id, "a ticket id")
        with self._lock:
            self._check_open()
            found = self._kb_suggestions.get(suggestion_id)
            if found is None:
                raise NotFoundError(f"no suggestion {suggestion_id!r:.200}")
            if found.ticket_id is None:
                found = Suggestion(
                    id=found.id,
                    shown_at=found.shown_at,
                    article_ids=found.article_ids,
                    contact_id=found.contact_id,
                    session=found.session,
                    ticket_id=ticket_id,
                )
                self._kb_suggestions[suggestion_id] = found
            return found

    def suggestions(self, *, since: datetime, until: datetime) -> list[Suggestion]:
        """Suggestions shown in ``[since, until)``, by instant then id."""
        start, end = to_utc(since, "since"), to_utc(until, "until")
        with self._lock:
            self._check_open()
            found = [s for s in self._kb_suggestions.values() if start <= s.shown_at < end]
        return sorted(found, key=lambda s: (s.shown_at, s.id))
