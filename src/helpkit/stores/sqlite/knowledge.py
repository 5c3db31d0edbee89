"""The SQLite store's knowledge base (:class:`helpkit.ports.KnowledgeBase`).

A mixin of :class:`~helpkit.stores.sqlite.store.SqliteStore`, kept apart because it is a
capability of its own (``knowledge``); it uses the store's connections. Tables of schema
version 9: ``kb_categories``, ``kb_sections``, ``kb_articles`` (each article whole, as JSON,
its revision a column), ``kb_changes`` (the audit trail), ``kb_docs`` (the search documents
of each article, replaced by each save) with the FTS5 indexes ``kb_fts_published`` and
``kb_fts_current`` over them, kept in step by triggers, ``kb_links`` and ``kb_suggestions``.

Documents are indexed by their index terms (:func:`helpkit.knowledge.index_terms`, the
memory store's), one FTS5 table per kind. A search reads how many documents hold each of its
terms (the kind's ``fts5vocab`` table), keeps the selective ones
(:func:`helpkit.knowledge.selective`: a term most documents hold weighs little and would make
the search rank most of the index), and runs one statement: the FTS5 match of any of them
(``"a" OR "b"``), each article in the variant a reader of the locale gets (the exact tag;
else the primary language, if the article has no variant of the tag; else the default
locale, if it has neither), ranked by ``bm25`` (the title weighing twice the body).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Final, TypeVar

from helpkit import serialize
from helpkit._checks import check_text
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
    Section,
    Suggestion,
    index_terms,
    search_documents,
    selective,
    stems,
)
from helpkit.locales import choose_variant
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

_KINDS: Final = frozenset({PUBLISHED, CURRENT})

_PAGE: Final = {
    kind: f"SELECT rowid, rank FROM kb_fts_{kind} WHERE kb_fts_{kind} MATCH ? "
    "ORDER BY rank LIMIT ? OFFSET ?"
    for kind in _KINDS
}
"""A page of the best documents of one kind holding a term (FTS5's rank: bm25, the title
weighing twice the body), rowids and ranks only: the rows are read for the page alone."""


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _decode(cls: type[_T], text: str) -> _T:
    try:
        return serialize.loads(cls, text)
    except (SchemaError, ValidationError) as exc:
        raise SchemaError(
            f"stored {cls.__name__} cannot be read ({exc}): the file was changed outside "
            "helpkit or is damaged"
        ) from exc


def _match(terms: Sequence[str]) -> str:
    # Each term is one word (checked): quoted, it is a plain term to FTS5, never syntax.
    return " OR ".join(f'"{term}"' for term in terms)


def _count(conn: sqlite3.Connection, docs: Sequence[tuple[str, str, str]], step: int) -> None:
    """Count documents (kind, title terms, body terms) in (``step`` 1) or out (-1) of the
    document and term counts."""
    if not docs:
        return
    per_kind: dict[str, int] = {}
    terms: dict[tuple[str, str], int] = {}
    for kind, title_terms, body_terms in docs:
        per_kind[kind] = per_kind.get(kind, 0) + step
        for term in set(title_terms.split()) | set(body_terms.split()):
            terms[(kind, term)] = terms.get((kind, term), 0) + step
    conn.executemany(
        "UPDATE kb_counts SET documents = documents + ? WHERE kind = ?",
        [(n, kind) for kind, n in per_kind.items()],
    )
    conn.executemany(
        "INSERT INTO kb_terms (kind, term, documents) VALUES (?, ?, ?) "
        "ON CONFLICT (kind, term) DO UPDATE SET documents = documents + excluded.documents",
        [(kind, term, n) for (kind, term), n in terms.items()],
    )
    if step < 0:
        conn.executemany(
            "DELETE FROM kb_terms WHERE kind = ? AND term = ? AND documents <= 0", list(terms)
        )


def _best(
    conn: sqlite3.Connection, kind: str, match: str, locale: str | None, limit: int
) -> list[ArticleHit]:
    """The best ``limit`` articles, each in its reader's variant: pages of the index's best
    documents, each kept if it is the variant a reader of ``locale`` gets of its article
    (:func:`helpkit.locales.choose_variant` over the article's locales) and its article is
    not in the list yet."""
    hits: list[ArticleHit] = []
    seen: set[str] = set()
    size = max(3 * limit, 20)
    offset = 0
    while len(hits) < limit:
        page = conn.execute(_PAGE[kind], (match, size, offset)).fetchall()
        if not page:
            break
        rowids = [row[0] for row in page]
        docs = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT rowid, article_id, version, locale, title FROM kb_docs "
                f"WHERE rowid IN ({_marks(len(rowids))})",
                rowids,
            )
        }
        articles = sorted({doc[0] for doc in docs.values()})
        held: dict[str, set[str]] = {}
        default: dict[str, str] = {}
        for article_id, tag, is_default in conn.execute(
            "SELECT article_id, locale, is_default FROM kb_docs "
            f"WHERE kind = ? AND article_id IN ({_marks(len(articles))})",
            (kind, *articles),
        ):
            held.setdefault(article_id, set()).add(tag)
            if is_default:
                default[article_id] = tag
        for rowid, rank in page:
            article_id, version, tag, title = docs[rowid]
            if article_id in seen or tag != choose_variant(
                held[article_id], locale, default[article_id]
            ):
                continue
            seen.add(article_id)
            hits.append(
                ArticleHit(
                    article_id=article_id, version=int(version), locale=tag, title=title,
                    score=-float(rank),
                )
            )  # fmt: skip
            if len(hits) == limit:
                break
        if len(page) < size:
            break
        offset += size
    return hits


class KnowledgeMixin:
    """The knowledge base of an SQLite store (a mixin of ``SqliteStore``)."""

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - SqliteStore's

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - SqliteStore's

    # ------------------------------------------------------------ tree

    def save_category(self, category: Category) -> None:
        """Insert or replace a category."""
        check_kb_record(category, Category)
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO kb_categories (id, position, body) VALUES (?, ?, ?)",
                (category.id, category.position, serialize.dumps(category)),
            )

    def categories(self) -> list[Category]:
        """Every category, by position then id."""
        with self._connection() as conn:
            rows = conn.execute("SELECT body FROM kb_categories ORDER BY position, id").fetchall()
        return [_decode(Category, row[0]) for row in rows]

    def save_section(self, section: Section) -> None:
        """Insert or replace a section of an existing category."""
        check_kb_record(section, Section)
        with self._transaction() as conn:
            found = conn.execute(
                "SELECT 1 FROM kb_categories WHERE id = ?", (section.category_id,)
            ).fetchone()
            if found is None:
                raise NotFoundError(f"no category {section.category_id!r:.200}")
            conn.execute(
                "INSERT OR REPLACE INTO kb_sections (id, category_id, position, body) "
                "VALUES (?, ?, ?, ?)",
                (section.id, section.category_id, section.position, serialize.dumps(section)),
            )

    def sections(self, category_id: str | None = None) -> list[Section]:
        """The sections (of one category), by category, position, then id."""
        with self._connection() as conn:
            if category_id is None:
                rows = conn.execute(
                    "SELECT body FROM kb_sections ORDER BY category_id, position, id"
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT body FROM kb_sections WHERE category_id = ? ORDER BY position, id",
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
                d.article_id, d.kind, d.locale, int(d.is_default), d.version, d.title,
                " ".join(index_terms(d.title)), " ".join(index_terms(d.body)),
            )
            for d in search_documents(article)
        ]  # fmt: skip
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT revision FROM kb_articles WHERE id = ?", (article.id,)
            ).fetchone()
            check_version(
                "article", article.id, None if row is None else int(row[0]), article.revision
            )
            if article.section_id is not None:
                found = conn.execute(
                    "SELECT 1 FROM kb_sections WHERE id = ?", (article.section_id,)
                ).fetchone()
                if found is None:
                    raise NotFoundError(f"no section {article.section_id!r:.200}")
            conn.execute(
                "INSERT OR REPLACE INTO kb_articles (id, section_id, revision, body) "
                "VALUES (?, ?, ?, ?)",
                (article.id, article.section_id, article.revision, body),
            )
            conn.execute(
                "INSERT INTO kb_changes (article_id, revision, body) VALUES (?, ?, ?)",
                (article.id, article.revision, entry),
            )
            old = conn.execute(
                "SELECT kind, title_terms, body_terms FROM kb_docs WHERE article_id = ?",
                (article.id,),
            ).fetchall()
            _count(conn, old, -1)
            conn.execute("DELETE FROM kb_docs WHERE article_id = ?", (article.id,))
            _count(conn, [(d[1], d[6], d[7]) for d in documents], 1)
            conn.executemany(
                "INSERT INTO kb_docs (article_id, kind, locale, is_default, version, title, "
                "title_terms, body_terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                documents,
            )

    def article(self, article_id: str) -> Article:
        """An article by id."""
        check_text(article_id, "an article id")
        with self._connection() as conn:
            row = conn.execute(
                "SELECT body FROM kb_articles WHERE id = ?", (article_id,)
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
        with self._connection() as conn:
            if section_id is None:
                rows = conn.execute(
                    "SELECT body FROM kb_articles WHERE id > ? ORDER BY id LIMIT ?",
                    (start, limit),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT body FROM kb_articles WHERE section_id = ? AND id > ? "
                    "ORDER BY id LIMIT ?",
                    (check_text(section_id, "a section id"), start, limit),
                ).fetchall()
        return [_decode(Article, row[0]) for row in rows]

    def article_changes(self, article_id: str) -> list[ArticleChange]:
        """An article's audit trail, oldest first."""
        check_text(article_id, "an article id")
        with self._connection() as conn:
            if (
                conn.execute("SELECT 1 FROM kb_articles WHERE id = ?", (article_id,)).fetchone()
                is None
            ):
                raise NotFoundError(f"no article {article_id!r:.200}")
            rows = conn.execute(
                "SELECT body FROM kb_changes WHERE article_id = ? ORDER BY revision",
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
        kind = search.kind
        with self._connection() as conn:
            found = conn.execute(
                "SELECT term, documents FROM kb_terms "
                f"WHERE kind = ? AND term IN ({_marks(len(wanted))})",
                (kind, *wanted),
            ).fetchall()
            total = conn.execute(
                "SELECT documents FROM kb_counts WHERE kind = ?", (kind,)
            ).fetchone()[0]
            chosen = selective(dict.fromkeys(wanted, 0) | {t: int(n) for t, n in found}, total)
            if not chosen:
                return []
            return _best(conn, kind, _match(chosen), search.locale, search.limit)

    # ------------------------------------------------------------ links

    def link_article(self, link: ArticleLink) -> bool:
        """Record that a ticket cites an article; False when it already did."""
        check_kb_record(link, ArticleLink)
        with self._transaction() as conn:
            if (
                conn.execute(
                    "SELECT 1 FROM kb_articles WHERE id = ?", (link.article_id,)
                ).fetchone()
                is None
            ):
                raise NotFoundError(f"no article {link.article_id!r:.200}")
            if (
                conn.execute("SELECT 1 FROM tickets WHERE id = ?", (link.ticket_id,)).fetchone()
                is None
            ):
                raise NotFoundError(f"no ticket {link.ticket_id!r:.200}")
            done = conn.execute(
                "INSERT OR IGNORE INTO kb_links (ticket_id, article_id, linked_us, body) "
                "VALUES (?, ?, ?, ?)",
                (link.ticket_id, link.article_id, _micros(link.linked_at), serialize.dumps(link)),
            )
            return done.rowcount == 1

    def unlink_article(self, ticket_id: str, article_id: str) -> bool:
        """Forget a link; whether there was one."""
        check_text(ticket_id, "a ticket id")
        check_text(article_id, "an article id")
        with self._transaction() as conn:
            done = conn.execute(
                "DELETE FROM kb_links WHERE ticket_id = ? AND article_id = ?",
                (ticket_id, article_id),
            )
            return done.rowcount == 1

    def ticket_articles(self, ticket_id: str) -> list[ArticleLink]:
        """The links of a ticket, oldest first."""
        check_text(ticket_id, "a ticket id")
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT body FROM kb_links WHERE ticket_id = ? ORDER BY linked_us, article_id",
                (ticket_id,),
            ).fetchall()
        return [_decode(ArticleLink, row[0]) for row in rows]

    def article_tickets(self, article_id: str) -> list[ArticleLink]:
        """The links to an article, oldest first."""
        check_text(article_id, "an article id")
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT body FROM kb_links WHERE article_id = ? ORDER BY linked_us, ticket_id",
                (article_id,),
            ).fetchall()
        return [_decode(ArticleLink, row[0]) for row in rows]

    # ------------------------------------------------------------ suggestions

    def record_suggestion(self, suggestion: Suggestion) -> None:
        """Keep a suggestion shown."""
        check_kb_record(suggestion, Suggestion)
        with self._transaction() as conn:
            done = conn.execute(
                "INSERT OR IGNORE INTO kb_suggestions (id, shown_us, body) VALUES (?, ?, ?)",
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
                "SELECT body FROM kb_suggestions WHERE id = ?", (suggestion_id,)
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
                "UPDATE kb_suggestions SET body = ? WHERE id = ?",
                (serialize.dumps(marked), suggestion_id),
            )
            return marked

    def suggestions(self, *, since: datetime, until: datetime) -> list[Suggestion]:
        """Suggestions shown in ``[since, until)``, by instant then id."""
        start, end = _micros(to_utc(since, "since")), _micros(to_utc(until, "until"))
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT body FROM kb_suggestions WHERE shown_us >= ? AND shown_us < ? "
                "ORDER BY shown_us, id",
                (start, end),
            ).fetchall()
        return [_decode(Suggestion, row[0]) for row in rows]
