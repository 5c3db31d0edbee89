"""The PostgreSQL store's knowledge base (:class:`helpkit.ports.KnowledgeBase`).

A mixin of :class:`~helpkit.stores.postgres.store.PostgresStore` (capability ``knowledge``);
it uses the store's connections. Tables of schema version 7, as in the SQLite store:
``kb_categories``, ``kb_sections``, ``kb_articles`` (each article whole, as JSON, its revision
a column), ``kb_changes`` (the audit trail, keyed by article and revision, so of two saves
over one revision the second finds the key taken: ConflictError), ``kb_docs`` (the search
documents of each article, replaced by each save, each with its ``tsvector``), ``kb_links``
and ``kb_suggestions``.

A document's ``tsvector`` holds its words under the text search configuration of its
locale's language (:func:`helpkit.knowledge.search_config`: ``english`` for ``en``,
``simple`` for a language PostgreSQL has none for) and under ``simple`` (the words as they
are), the title weighted A and the body B; a GIN index serves the match. A search looks for
any of its terms (``websearch_to_tsquery`` of ``"a" or "b"``) under the reader's
configuration and under ``simple``, so a document in another language still matches on
words spelt alike; the documents of the kind asked, each article in the variant a reader of
the locale gets (as in the SQLite store), ranked by ``ts_rank``. Like the other stores it
looks up only the query's selective words (:func:`helpkit.knowledge.selective`, on the
document counts per index term that each save keeps in ``kb_terms``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final, TypeVar

import psycopg

from helpkit import serialize
from helpkit._checks import check_text
from helpkit._time import to_utc
from helpkit.errors import DuplicateError, NotFoundError, SchemaError, ValidationError
from helpkit.knowledge import (
    Article,
    ArticleChange,
    ArticleHit,
    ArticleLink,
    Category,
    Section,
    Suggestion,
    index_terms,
    search_config,
    search_documents,
    selective,
    stems,
    words_of,
)
from helpkit.stores.contract import (
    check_article_save,
    check_kb_record,
    check_limit,
    check_search,
    check_version,
)
from helpkit.stores.sqlite.encoding import _micros

__all__ = ["KnowledgeMixin"]

_T = TypeVar("_T")

_SEARCH: Final = """
    WITH q AS (
        SELECT websearch_to_tsquery(%(config)s::regconfig, %(query)s)
            || websearch_to_tsquery('simple', %(query)s) AS query
    )
    SELECT d.article_id, d.version, d.locale, d.title, ts_rank(d.tsv, q.query) AS rank
    FROM kb_docs d, q
    WHERE d.tsv @@ q.query AND d.kind = %(kind)s AND (
        d.locale = %(tag)s::text
        OR (d.locale = %(primary)s::text AND NOT EXISTS (
            SELECT 1 FROM kb_docs e
            WHERE e.article_id = d.article_id AND e.kind = d.kind AND e.locale = %(tag)s::text))
        OR (d.is_default AND NOT EXISTS (
            SELECT 1 FROM kb_docs e
            WHERE e.article_id = d.article_id AND e.kind = d.kind
                AND e.locale IN (%(tag)s::text, %(primary)s::text)))
    )
    ORDER BY rank DESC, d.article_id
    LIMIT %(limit)s
"""
"""The best documents of one kind holding a term, one per article (its reader's variant).
Without a locale, ``tag`` and ``primary`` are NULL: only default variants qualify."""

_DOC: Final = (
    "INSERT INTO kb_docs (article_id, kind, locale, is_default, version, title, body, terms, "
    "tsv) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
    "setweight(to_tsvector(%s::regconfig, %s), 'A') "
    "|| setweight(to_tsvector('simple', %s), 'A') "
    "|| setweight(to_tsvector(%s::regconfig, %s), 'B') "
    "|| setweight(to_tsvector('simple', %s), 'B'))"
)


def _count(conn: psycopg.Cursor[Any], docs: Sequence[tuple[str, str]], step: int) -> None:
    """Count documents (kind, their distinct terms) in (``step`` 1) or out (-1) of the
    document and term counts; terms in one order, so concurrent saves do not deadlock."""
    if not docs:
        return
    per_kind: dict[str, int] = {}
    terms: dict[tuple[str, str], int] = {}
    for kind, text in docs:
        per_kind[kind] = per_kind.get(kind, 0) + step
        for term in text.split():
            terms[(kind, term)] = terms.get((kind, term), 0) + step
    conn.executemany(
        "UPDATE kb_counts SET documents = documents + %s WHERE kind = %s",
        [(n, kind) for kind, n in sorted(per_kind.items())],
    )
    ordered = sorted(terms.items())
    conn.executemany(
        "INSERT INTO kb_terms (kind, term, documents) VALUES (%s, %s, %s) "
        "ON CONFLICT (kind, term) "
        "DO UPDATE SET documents = kb_terms.documents + excluded.documents",
        [(kind, term, n) for (kind, term), n in ordered],
    )
    if step < 0:
        conn.executemany(
            "DELETE FROM kb_terms WHERE kind = %s AND term = %s AND documents <= 0",
            [key for key, _ in ordered],
        )


def _decode(cls: type[_T], text: str) -> _T:
    try:
        return serialize.loads(cls, text)
    except (SchemaError, ValidationError) as exc:
        raise SchemaError(
            f"stored {cls.__name__} cannot be read ({exc}): the file was changed outside "
            "helpkit or is damaged"
        ) from exc


def _match(terms: Sequence[str]) -> str:
    # Each term is one word (checked): quoted, it is a plain term to websearch_to_tsquery.
    return " or ".join(f'"{term}"' for term in terms)


class KnowledgeMixin:
    """The knowledge base of a PostgreSQL store (a mixin of ``PostgresStore``)."""

    def _reading(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def _transaction(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    # ------------------------------------------------------------ tree

    def save_category(self, category: Category) -> None:
        """Insert or replace a category."""
        check_kb_record(category, Category)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO kb_categories (id, position, body) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET position = excluded.position, body = excluded.body",
                (category.id, category.position, serialize.dumps(category)),
            )

    def categories(self) -> list[Category]:
        """Every category, by position then id."""
        with self._reading() as conn:
            rows = conn.execute("SELECT body FROM kb_categories ORDER BY position, id").fetchall()
        return [_decode(Category, row[0]) for row in rows]

    def save_section(self, section: Section) -> None:
        """Insert or replace a section of an existing category."""
        check_kb_record(section, Section)
        with self._transaction() as conn:
            found = conn.execute(
                "SELECT 1 FROM kb_categories WHERE id = %s", (section.category_id,)
            ).fetchone()
            if found is None:
                raise NotFoundError(f"no category {section.category_id!r:.200}")
            conn.execute(
                "INSERT INTO kb_sections (id, category_id, position, body) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET category_id = excluded.category_id, "
                "position = excluded.position, body = excluded.body",
                (section.id, section.category_id, section.position, serialize.dumps(section)),
            )

    def sections(self, category_id: str | None = None) -> list[Section]:
        """The sections (of one category), by category, position, then id."""
        with self._reading() as conn:
            if category_id is None:
                rows = conn.execute(
                    "SELECT body FROM kb_sections ORDER BY category_id, position, id"
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT body FROM kb_sections WHERE category_id = %s ORDER BY position, id",
                    (check_text(category_id, "a category id"),),
                ).fetchall()
        return [_decode(Section, row[0]) for row in rows]

    # ------------------------------------------------------------ articles

    def save_article(self, article: Article, change: ArticleChange) -> None:
        """Save an article with its audit entry, guarded by its revision."""
        check_article_save(article, change)
        body = serialize.dumps(article)
        entry = serialize.dumps(change)
        documents = [
            (
                d.article_id, d.kind, d.locale, d.is_default, d.version, d.title, d.body,
                " ".join(sorted(set(index_terms(d.title)) | set(index_terms(d.body)))),
                search_config(d.locale), d.title, d.title,
                search_config(d.locale), d.body, d.body,
            )
            for d in search_documents(article)
        ]  # fmt: skip
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT revision FROM kb_articles WHERE id = %s FOR UPDATE", (article.id,)
            ).fetchone()
            check_version(
                "article", article.id, None if row is None else int(row[0]), article.revision
            )
            if article.section_id is not None:
                found = conn.execute(
                    "SELECT 1 FROM kb_sections WHERE id = %s", (article.section_id,)
                ).fetchone()
                if found is None:
                    raise NotFoundError(f"no section {article.section_id!r:.200}")
            conn.execute(
                "INSERT INTO kb_articles (id, section_id, revision, body) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET section_id = excluded.section_id, "
                "revision = excluded.revision, body = excluded.body",
                (article.id, article.section_id, article.revision, body),
            )
            conn.execute(
                "INSERT INTO kb_changes (article_id, revision, body) VALUES (%s, %s, %s)",
                (article.id, article.revision, entry),
            )
            old = conn.execute(
                "SELECT kind, terms FROM kb_docs WHERE article_id = %s", (article.id,)
            ).fetchall()
            _count(conn, [(str(k), str(t)) for k, t in old], -1)
            conn.execute("DELETE FROM kb_docs WHERE article_id = %s", (article.id,))
            if documents:
                conn.executemany(_DOC, documents)
            _count(conn, [(d[1], d[7]) for d in documents], 1)

    def article(self, article_id: str) -> Article:
        """An article by id."""
        check_text(article_id, "an article id")
        with self._reading() as conn:
            row = conn.execute(
                "SELECT body FROM kb_articles WHERE id = %s", (article_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no article {article_id!r:.200}")
        return _decode(Article, row[0])

    def articles(
        self, *, section_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[Article]:
        """Articles (of one section) by id, those after id ``after``."""
        check_limit(limit)
        start = "" if after is None else check_text(after, "after")
        with self._reading() as conn:
            if section_id is None:
                rows = conn.execute(
                    "SELECT body FROM kb_articles WHERE id > %s ORDER BY id LIMIT %s",
                    (start, limit),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT body FROM kb_articles WHERE section_id = %s AND id > %s "
                    "ORDER BY id LIMIT %s",
                    (check_text(section_id, "a section id"), start, limit),
                ).fetchall()
        return [_decode(Article, row[0]) for row in rows]

    def article_changes(self, article_id: str) -> list[ArticleChange]:
        """An article's audit trail, oldest first."""
        check_text(article_id, "an article id")
        with self._reading() as conn:
            if (
                conn.execute("SELECT 1 FROM kb_articles WHERE id = %s", (article_id,)).fetchone()
                is None
            ):
                raise NotFoundError(f"no article {article_id!r:.200}")
            rows = conn.execute(
                "SELECT body FROM kb_changes WHERE article_id = %s ORDER BY revision",
                (article_id,),
            ).fetchall()
        return [_decode(ArticleChange, row[0]) for row in rows]

    def search_articles(
        self,
        terms: Sequence[str],
        *,
        locale: str | None = None,
        drafts: bool = False,
        limit: int = 10,
    ) -> list[ArticleHit]:
        """The best ``limit`` articles holding any of ``terms``, ranked by FTS5's bm25."""
        search = check_search(terms, locale, drafts, limit)
        wanted = stems(search.terms)
        if not wanted:
            return []
        with self._reading() as conn:
            found = conn.execute(
                "SELECT term, documents FROM kb_terms WHERE kind = %s AND term = ANY(%s)",
                (search.kind, list(wanted)),
            ).fetchall()
            total = conn.execute(
                "SELECT documents FROM kb_counts WHERE kind = %s", (search.kind,)
            ).fetchone()
            counted = dict.fromkeys(wanted, 0) | {str(t): int(n) for t, n in found}
            chosen = words_of(search.terms, selective(counted, int(total[0]) if total else 0))
            if not chosen:
                return []
            rows = conn.execute(
                _SEARCH,
                {
                    "config": search_config(search.locale),
                    "query": _match(chosen),
                    "kind": search.kind,
                    "tag": search.locale,
                    "primary": search.primary,
                    "limit": search.limit,
                },
            ).fetchall()
        return [
            ArticleHit(article_id=a, version=int(v), locale=loc, title=t, score=float(rank))
            for a, v, loc, t, rank in rows
        ]

    # ------------------------------------------------------------ links

    def link_article(self, link: ArticleLink) -> bool:
        """Record that a ticket cites an article; False when it already did."""
        check_kb_record(link, ArticleLink)
        with self._transaction() as conn:
            if (
                conn.execute(
                    "SELECT 1 FROM kb_articles WHERE id = %s", (link.article_id,)
                ).fetchone()
                is None
            ):
                raise NotFoundError(f"no article {link.article_id!r:.200}")
            if (
                conn.execute("SELECT 1 FROM tickets WHERE id = %s", (link.ticket_id,)).fetchone()
                is None
            ):
                raise NotFoundError(f"no ticket {link.ticket_id!r:.200}")
            done = conn.execute(
                "INSERT INTO kb_links (ticket_id, article_id, linked_us, body) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (link.ticket_id, link.article_id, _micros(link.linked_at), serialize.dumps(link)),
            )
            return done.rowcount == 1

    def unlink_article(self, ticket_id: str, article_id: str) -> bool:
        """Forget a link; whether there was one."""
        check_text(ticket_id, "a ticket id")
        check_text(article_id, "an article id")
        with self._transaction() as conn:
            done = conn.execute(
                "DELETE FROM kb_links WHERE ticket_id = %s AND article_id = %s",
                (ticket_id, article_id),
            )
            return done.rowcount == 1

    def ticket_articles(self, ticket_id: str) -> list[ArticleLink]:
        """The links of a ticket, oldest first."""
        check_text(ticket_id, "a ticket id")
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT body FROM kb_links WHERE ticket_id = %s ORDER BY linked_us, article_id",
                (ticket_id,),
            ).fetchall()
        return [_decode(ArticleLink, row[0]) for row in rows]

    def article_tickets(self, article_id: str) -> list[ArticleLink]:
        """The links to an article, oldest first."""
        check_text(article_id, "an article id")
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT body FROM kb_links WHERE article_id = %s ORDER BY linked_us, ticket_id",
                (article_id,),
            ).fetchall()
        return [_decode(ArticleLink, row[0]) for row in rows]

    # ------------------------------------------------------------ suggestions

    def record_suggestion(self, suggestion: Suggestion) -> None:
        """Keep a suggestion shown."""
        check_kb_record(suggestion, Suggestion)
        with self._transaction() as conn:
            done = conn.execute(
                "INSERT INTO kb_suggestions (id, shown_us, body) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (suggestion.id, _micros(suggestion.shown_at), serialize.dumps(suggestion)),
            )
            if done.rowcount != 1:
                raise DuplicateError(f"suggestion {suggestion.id!r:.200} was recorded before")

    def mark_suggestion(self, suggestion_id: str, ticket_id: str) -> Suggestion:
        """Record the ticket opened after a suggestion (the first one recorded stays)."""
        check_text(suggestion_id, "a suggestion id")
        check_text(ticket_id, "a ticket id")
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT body FROM kb_suggestions WHERE id = %s FOR UPDATE", (suggestion_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no suggestion {suggestion_id!r:.200}")
            found = _decode(Suggestion, row[0])
            if found.ticket_id is not None:
                return found
            marked = Suggestion(
                id=found.id,
                shown_at=found.shown_at,
                article_ids=found.article_ids,
                contact_id=found.contact_id,
                session=found.session,
                ticket_id=ticket_id,
            )
            conn.execute(
                "UPDATE kb_suggestions SET body = %s WHERE id = %s",
                (serialize.dumps(marked), suggestion_id),
            )
            return marked

    def suggestions(self, *, since: datetime, until: datetime) -> list[Suggestion]:
        """Suggestions shown in ``[since, until)``, by instant then id."""
        start, end = _micros(to_utc(since, "since")), _micros(to_utc(until, "until"))
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT body FROM kb_suggestions WHERE shown_us >= %s AND shown_us < %s "
                "ORDER BY shown_us, id",
                (start, end),
            ).fetchall()
        return [_decode(Suggestion, row[0]) for row in rows]
