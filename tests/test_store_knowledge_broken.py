"""The knowledge-base cases can fail: run against memory stores broken on purpose (customers
shown drafts, a stale save accepted, an article saved without its audit entry, a refused save
that has already reindexed the article or written it, an archived article still found,
results ranked by id or by the terms held regardless of how often, the reader's locale
ignored, a link unlink leaves in place, a link to no ticket, a suggestion marked again, a
suggestion shown at ``until`` listed), each must fail where the real store passes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from helpkit.errors import NotFoundError
from helpkit.knowledge import (
    CURRENT,
    PUBLISHED,
    Article,
    ArticleChange,
    ArticleHit,
    Suggestion,
    index_terms,
    search_documents,
)
from helpkit.stores.contract import check_article_save, check_version
from helpkit.stores.memory import MemoryStore
from helpkit.testing.conformance import StoreConformance

_ALL = 10_000  # a limit past every article of a case


class _DraftsToCustomersStore(MemoryStore):
    """Searches the current texts for everyone: customers find drafts."""

    def search_articles(
        self,
        terms: Sequence[str],
        *,
        locale: str | None = None,
        drafts: bool = False,
        limit: int = 10,
    ) -> list[ArticleHit]:
        return super().search_articles(terms, locale=locale, drafts=True, limit=limit)


def _reindex(store: MemoryStore, article: Article) -> None:
    """Replace the search documents of ``article`` in ``store`` (called with its lock held)."""
    for key in [k for k in store._kb_docs if k[0] == article.id]:
        del store._kb_docs[key]
        store._kb_index[key[1]].remove(key)
    for kind in (PUBLISHED, CURRENT):
        store._kb_locales.pop((article.id, kind), None)
    for doc in search_documents(article):
        key = (doc.article_id, doc.kind, doc.locale)
        store._kb_docs[key] = doc
        store._kb_index[doc.kind].add(key, doc.title, doc.body)
        held = store._kb_locales.get((doc.article_id, doc.kind), frozenset())
        store._kb_locales[(doc.article_id, doc.kind)] = held | {doc.locale}


class _UnguardedStore(MemoryStore):
    """Checks the article and its section, then writes it over whatever revision is stored."""

    def save_article(self, article: Article, change: ArticleChange) -> None:
        check_article_save(article, change)
        with self._lock:
            if article.section_id is not None and article.section_id not in self._kb_sections:
                raise NotFoundError(f"no section {article.section_id!r}")
            _reindex(self, article)
            self._kb_articles[article.id] = article
            self._kb_changes.setdefault(article.id, []).append(change)


class _NoAuditStore(MemoryStore):
    """Saves the article and its search documents but drops the audit entry."""

    def save_article(self, article: Article, change: ArticleChange) -> None:
        super().save_article(article, change)
        with self._lock:
            self._kb_changes[article.id].pop()


class _IndexFirstStore(MemoryStore):
    """Indexes the new text before the revision guard: a refused save is half written."""

    def save_article(self, article: Article, change: ArticleChange) -> None:
        with self._lock:
            _reindex(self, article)
        super().save_article(article, change)


class _SectionCheckedLateStore(MemoryStore):
    """Writes the article and its audit entry, then finds its section missing."""

    def save_article(self, article: Article, change: ArticleChange) -> None:
        check_article_save(article, change)
        with self._lock:
            known = article.section_id is None or article.section_id in self._kb_sections
        if known:
            super().save_article(article, change)
            return
        with self._lock:
            self._kb_articles[article.id] = article
            self._kb_changes.setdefault(article.id, []).append(change)
        raise NotFoundError(f"no section {article.section_id!r}")


class _ArchivedStillIndexedStore(MemoryStore):
    """Has nothing to index for an archived article, so leaves its old texts searchable."""

    def save_article(self, article: Article, change: ArticleChange) -> None:
        if search_documents(article):
            super().save_article(article, change)
            return
        check_article_save(article, change)
        with self._lock:
            stored = self._kb_articles.get(article.id)
            revision = None if stored is None else stored.revision
            check_version("article", article.id, revision, article.revision)
            self._kb_articles[article.id] = article
            self._kb_changes.setdefault(article.id, []).append(change)


class _IdOrderStore(MemoryStore):
    """Returns the articles holding a term in id order, whatever they hold."""

    def search_articles(
        self,
        terms: Sequence[str],
        *,
        locale: str | None = None,
        drafts: bool = False,
        limit: int = 10,
    ) -> list[ArticleHit]:
        hits = super().search_articles(terms, locale=locale, drafts=drafts, limit=_ALL)
        return sorted(hits, key=lambda h: h.article_id)[:limit]


class _NewestFirstStore(MemoryStore):
    """Returns the articles holding a term newest (highest id) first, whatever they hold."""

    def search_articles(
        self,
        terms: Sequence[str],
        *,
        locale: str | None = None,
        drafts: bool = False,
        limit: int = 10,
    ) -> list[ArticleHit]:
        hits = super().search_articles(terms, locale=locale, drafts=drafts, limit=_ALL)
        return sorted(hits, key=lambda h: h.article_id, reverse=True)[:limit]


class _TermsHeldStore(MemoryStore):
    """Scores an article by how many of the terms it holds, not how often (ties: newest)."""

    def search_articles(
        self,
        terms: Sequence[str],
        *,
        locale: str | None = None,
        drafts: bool = False,
        limit: int = 10,
    ) -> list[ArticleHit]:
        hits = super().search_articles(terms, locale=locale, drafts=drafts, limit=_ALL)
        wanted = set(index_terms(" ".join(terms)))
        kind = CURRENT if drafts else PUBLISHED
        scored: list[ArticleHit] = []
        for hit in hits:
            doc = self._kb_docs[(hit.article_id, kind, hit.locale)]
            held = len(wanted & set(index_terms(f"{doc.title} {doc.body}")))
            scored.append(
                ArticleHit(
                    article_id=hit.article_id,
                    version=hit.version,
                    locale=hit.locale,
                    title=hit.title,
                    score=float(held),
                )
            )
        scored.sort(key=lambda h: (h.score, h.article_id), reverse=True)
        return scored[:limit]


class _DefaultLocaleStore(MemoryStore):
    """Searches every article in its default text, whatever the reader's locale."""

    def search_articles(
        self,
        terms: Sequence[str],
        *,
        locale: str | None = None,
        drafts: bool = False,
        limit: int = 10,
    ) -> list[ArticleHit]:
        return super().search_articles(terms, drafts=drafts, limit=limit)


class _StickyLinkStore(MemoryStore):
    """Says a link is gone but keeps it."""

    def unlink_article(self, ticket_id: str, article_id: str) -> bool:
        with self._lock:
            return (ticket_id, article_id) in self._kb_links


class _UnknownTicketLinkStore(MemoryStore):
    """Links an article to any ticket id, one that does not exist included."""

    def _ticket_exists(self, ticket_id: str) -> bool:
        return True


class _UntilIncludedStore(MemoryStore):
    """Lists the suggestions shown up to ``until`` included (the window is half-open)."""

    def suggestions(self, *, since: datetime, until: datetime) -> list[Suggestion]:
        return super().suggestions(since=since, until=until + timedelta(microseconds=1))


class _RemarkStore(MemoryStore):
    """Marks a suggestion with the latest ticket, over the first one recorded."""

    def mark_suggestion(self, suggestion_id: str, ticket_id: str) -> Suggestion:
        found = super().mark_suggestion(suggestion_id, ticket_id)
        if found.ticket_id == ticket_id:
            return found
        marked = Suggestion(
            id=found.id,
            shown_at=found.shown_at,
            article_ids=found.article_ids,
            contact_id=found.contact_id,
            session=found.session,
            ticket_id=ticket_id,
        )
        with self._lock:
            self._kb_suggestions[suggestion_id] = marked
        return marked


@pytest.mark.parametrize(
    ("broken", "example"),
    [
        (_DraftsToCustomersStore, "test_customers_search_published_texts_agents_search_drafts"),
        (_UnguardedStore, "test_a_stale_revision_is_refused_and_writes_nothing"),
        (_NoAuditStore, "test_an_article_is_saved_whole_with_its_audit_trail"),
        (_IndexFirstStore, "test_a_stale_revision_is_refused_and_writes_nothing"),
        (_SectionCheckedLateStore, "test_bad_saves_are_refused_before_anything_is_written"),
        (_ArchivedStillIndexedStore, "test_customers_search_published_texts_agents_search_drafts"),
        (_IdOrderStore, "test_search_ranks_the_article_holding_more_terms_first"),
        (_NewestFirstStore, "test_search_ranks_the_article_holding_more_terms_first"),
        (_TermsHeldStore, "test_search_ranks_the_article_holding_more_terms_first"),
        (_DefaultLocaleStore, "test_each_article_is_searched_in_its_readers_variant"),
        (_StickyLinkStore, "test_links_between_tickets_and_articles"),
        (_UnknownTicketLinkStore, "test_links_between_tickets_and_articles"),
        (_UntilIncludedStore, "test_suggestions_are_kept_and_marked_once"),
        (_RemarkStore, "test_suggestions_are_kept_and_marked_once"),
    ],
)
def test_the_knowledge_examples_catch_a_broken_store(
    broken: type[MemoryStore], example: str
) -> None:
    getattr(StoreConformance(), example)(MemoryStore())  # the real store passes
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        getattr(StoreConformance(), example)(broken())
