# Over 600 lines: the knowledge base's values and the pure decisions on them (versions,
# locales, search documents and the ranked fallback) that the three stores share.
"""The knowledge base as values: articles with versions and locale variants, categories and
sections, the audit trail of article changes, links to tickets, suggestions, and ranking.

An :class:`Article` holds its :class:`ArticleVersion` s, numbered from 1. A version is a
``draft`` until it is published; publishing a draft archives the version published before
it; archiving an article archives every live version. Editing a published (or archived)
article starts a new draft from its latest text, so what customers read does not change
until the draft is published. At most one version is published and at most one is a draft
(always the latest). Each version holds a :class:`Variant` (title and body) per locale; a
reader gets the exact tag, else its primary language, else the article's default locale
(:func:`helpkit.locales.choose_variant`, as notification templates do).

Every change is a pure function of the article, the actor and "now" (:func:`create`,
:func:`edit`, :func:`publish`, :func:`archive`, :func:`move`) returning the new article and
the :class:`ArticleChange` that records it; a store saves both at once, guarded by the
article's ``revision``. The texts a store indexes for search are :func:`search_documents`;
the words a search looks for are :func:`query_terms`. :class:`RankedIndex` is the ranked
fallback (BM25 over these words) the memory store searches with. Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

import attrs

from helpkit._checks import (
    check_text,
    count,
    flag,
    ident,
    instance,
    instances_of,
    member_of,
    nonblank_text,
    optional_ident,
    optional_text,
    text,
)
from helpkit._records import replace
from helpkit._time import optional_utc, to_utc
from helpkit.errors import InvalidTransitionError, ValidationError
from helpkit.locales import check_locale, choose_variant, primary_language
from helpkit.tickets import Actor

__all__ = [
    "CURRENT",
    "PUBLISHED",
    "Article",
    "ArticleAction",
    "ArticleChange",
    "ArticleHit",
    "ArticleLink",
    "ArticleVersion",
    "Category",
    "Deflection",
    "RankedIndex",
    "SearchDocument",
    "Section",
    "Suggestion",
    "Variant",
    "VersionState",
    "archive",
    "count_deflection",
    "create",
    "edit",
    "index_terms",
    "move",
    "publish",
    "query_terms",
    "search_config",
    "search_documents",
    "selective",
    "stems",
    "words",
    "words_of",
]

PUBLISHED: Final = "published"
"""The kind of search document customers search: the published version's texts."""
CURRENT: Final = "current"
"""The kind of search document agents search: the draft's texts if there is one, else the
published version's."""


def _locale(value: object) -> str:
    return check_locale(value)


class VersionState(enum.Enum):
    """Where a version of an article stands."""

    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


@attrs.frozen(kw_only=True)
class Category:
    """The top of the knowledge base's tree: categories hold sections, sections articles."""

    id: str = attrs.field(validator=ident)
    name: str = attrs.field(validator=nonblank_text)
    position: int = attrs.field(default=0, validator=count)
    """Where it is listed among categories (then by id)."""
    description: str = attrs.field(default="", validator=text)


@attrs.frozen(kw_only=True)
class Section:
    """A section of a category; articles belong to a section (or to none)."""

    id: str = attrs.field(validator=ident)
    category_id: str = attrs.field(validator=ident)
    name: str = attrs.field(validator=nonblank_text)
    position: int = attrs.field(default=0, validator=count)
    description: str = attrs.field(default="", validator=text)


@attrs.frozen(kw_only=True)
class Variant:
    """An article version's text in one locale."""

    locale: str = attrs.field(converter=_locale)
    title: str = attrs.field(validator=nonblank_text)
    body: str = attrs.field(validator=text)


def _variants(value: Iterable[Variant]) -> tuple[Variant, ...]:
    if not isinstance(value, tuple | list):
        raise ValidationError(f"variants must be a list of Variant; got {value!r:.60}")
    found = tuple(sorted(value, key=lambda v: v.locale if isinstance(v, Variant) else ""))
    seen: set[str] = set()
    for variant in found:
        if not isinstance(variant, Variant):
            raise ValidationError(f"variants holds {variant!r:.60}, not a Variant")
        if variant.locale in seen:
            raise ValidationError(f"locale {variant.locale!r} is given twice")
        seen.add(variant.locale)
    if not found:
        raise ValidationError("a version has at least one variant")
    return found


@attrs.frozen(kw_only=True)
class ArticleVersion:
    """One version of an article: its state and its text per locale."""

    number: int = attrs.field(validator=count)
    state: VersionState = attrs.field(validator=member_of(VersionState))
    variants: tuple[Variant, ...] = attrs.field(converter=_variants)
    """One per locale, by locale."""
    created_at: datetime = attrs.field(converter=to_utc)
    created_by: Actor = attrs.field(validator=instance(Actor))
    published_at: datetime | None = attrs.field(default=None, converter=optional_utc)

    def locales(self) -> frozenset[str]:
        """The locales it has a variant for."""
        return frozenset(v.locale for v in self.variants)

    def variant(self, locale: str) -> Variant:
        """Its variant of ``locale`` (a tag it has: see :meth:`Article.variant`)."""
        for variant in self.variants:
            if variant.locale == locale:
                return variant
        raise ValidationError(f"version {self.number} has no {locale!r} variant")


def _version_tuple(value: Iterable[ArticleVersion]) -> tuple[ArticleVersion, ...]:
    return tuple(value)


def _id_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _check_versions(article: Article) -> None:
    states = [v.state for v in article.versions]
    if not article.versions:
        raise ValidationError("an article has at least one version")
    for index, version in enumerate(article.versions, start=1):
        if version.number != index:
            raise ValidationError(
                f"article versions are numbered 1, 2, ...; found {version.number}"
            )
        if article.default_locale not in version.locales():
            raise ValidationError(
                f"version {index} has no variant in the default locale {article.default_locale!r}"
            )
    if states.count(VersionState.PUBLISHED) > 1:
        raise ValidationError("an article has at most one published version")
    if states.count(VersionState.DRAFT) > 1 or (
        VersionState.DRAFT in states and states[-1] is not VersionState.DRAFT
    ):
        raise ValidationError("an article has at most one draft, its latest version")


@attrs.frozen(kw_only=True)
class Article:
    """A knowledge base article: its versions, its section and default locale, and its
    ``revision`` (1 when created, one more at each change: the version a store's save is
    guarded by)."""

    id: str = attrs.field(validator=ident)
    section_id: str | None = attrs.field(validator=optional_ident)
    default_locale: str = attrs.field(converter=_locale)
    versions: tuple[ArticleVersion, ...] = attrs.field(
        converter=_version_tuple, validator=instances_of(ArticleVersion, container=tuple)
    )
    revision: int = attrs.field(validator=count)
    created_at: datetime = attrs.field(converter=to_utc)
    updated_at: datetime = attrs.field(converter=to_utc)

    def __attrs_post_init__(self) -> None:
        _check_versions(self)
        if self.revision < 1:
            raise ValidationError("an article's revision starts at 1")

    @property
    def latest(self) -> ArticleVersion:
        """The latest version."""
        return self.versions[-1]

    @property
    def published(self) -> ArticleVersion | None:
        """The published version, if any."""
        for version in self.versions:
            if version.state is VersionState.PUBLISHED:
                return version
        return None

    @property
    def draft(self) -> ArticleVersion | None:
        """The draft (always the latest version), if any."""
        latest = self.versions[-1]
        return latest if latest.state is VersionState.DRAFT else None

    @property
    def current(self) -> ArticleVersion | None:
        """What an agent works on: the draft, else the published version (None when every
        version is archived)."""
        return self.draft or self.published

    @property
    def status(self) -> VersionState:
        """``published`` while a version is published (even with a draft pending), else
        ``draft`` while there is a draft, else ``archived``."""
        if self.published is not None:
            return VersionState.PUBLISHED
        return VersionState.DRAFT if self.draft is not None else VersionState.ARCHIVED

    def variant(self, language: str | None, *, drafts: bool = False) -> Variant | None:
        """The text a reader of ``language`` gets: of the published version (of the current
        one with ``drafts``), in the exact tag, else its primary language, else the default
        locale. None when there is no such version."""
        version = self.current if drafts else self.published
        if version is None:
            return None
        return version.variant(choose_variant(version.locales(), language, self.default_locale))


class ArticleAction(enum.Enum):
    """What a change did to an article."""

    CREATED = "created"
    EDITED = "edited"
    PUBLISHED = "published"
    ARCHIVED = "archived"
    MOVED = "moved"


@attrs.frozen(kw_only=True)
class ArticleChange:
    """One entry of an article's audit trail: who did what, when, to which version."""

    article_id: str = attrs.field(validator=ident)
    revision: int = attrs.field(validator=count)
    """The article's revision after the change."""
    at: datetime = attrs.field(converter=to_utc)
    actor: Actor = attrs.field(validator=instance(Actor))
    action: ArticleAction = attrs.field(validator=member_of(ArticleAction))
    version: int = attrs.field(validator=count)
    """The version the change made or touched."""
    detail: str = attrs.field(default="", validator=text)
    """What changed, in words (the locale edited, the section moved to...)."""


def _changed(
    article: Article,
    actor: Actor,
    now: datetime,
    action: ArticleAction,
    version: int,
    detail: str,
    **fields: object,
) -> tuple[Article, ArticleChange]:
    at = to_utc(now, "now")
    if not isinstance(actor, Actor):
        raise ValidationError(f"actor must be an Actor; got {actor!r:.60}")
    revision = article.revision + 1
    changed = replace(article, revision=revision, updated_at=max(at, article.updated_at), **fields)
    return changed, ArticleChange(
        article_id=article.id,
        revision=revision,
        at=at,
        actor=actor,
        action=action,
        version=version,
        detail=detail,
    )


def create(
    article_id: str,
    *,
    title: str,
    body: str,
    locale: str,
    actor: Actor,
    now: datetime,
    section_id: str | None = None,
) -> tuple[Article, ArticleChange]:
    """A new article whose first version is a draft in ``locale`` (its default locale)."""
    at = to_utc(now, "now")
    if not isinstance(actor, Actor):
        raise ValidationError(f"actor must be an Actor; got {actor!r:.60}")
    first = ArticleVersion(
        number=1,
        state=VersionState.DRAFT,
        variants=[Variant(locale=locale, title=title, body=body)],
        created_at=at,
        created_by=actor,
    )
    article = Article(
        id=article_id,
        section_id=section_id,
        default_locale=locale,
        versions=(first,),
        revision=1,
        created_at=at,
        updated_at=at,
    )
    change = ArticleChange(
        article_id=article.id,
        revision=1,
        at=at,
        actor=actor,
        action=ArticleAction.CREATED,
        version=1,
        detail=f"draft in {article.default_locale}",
    )
    return article, change


def edit(
    article: Article,
    *,
    title: str,
    body: str,
    actor: Actor,
    now: datetime,
    locale: str | None = None,
) -> tuple[Article, ArticleChange]:
    """Set the text of one locale (the default one when ``locale`` is None): in the draft if
    there is one, else in a new draft made from the latest version's texts."""
    tag = article.default_locale if locale is None else check_locale(locale)
    variant = Variant(locale=tag, title=title, body=body)
    latest = article.latest
    kept = [v for v in latest.variants if v.locale != tag]
    if latest.state is VersionState.DRAFT:
        version = replace(latest, variants=(*kept, variant))
        versions = (*article.versions[:-1], version)
    else:
        version = ArticleVersion(
            number=latest.number + 1,
            state=VersionState.DRAFT,
            variants=(*kept, variant),
            created_at=to_utc(now, "now"),
            created_by=actor,
        )
        versions = (*article.versions, version)
    return _changed(
        article, actor, now, ArticleAction.EDITED, version.number, f"{tag}", versions=versions
    )


def publish(article: Article, *, actor: Actor, now: datetime) -> tuple[Article, ArticleChange]:
    """Publish the draft; the version published before it is archived.
    InvalidTransitionError when there is no draft."""
    draft = article.draft
    if draft is None:
        raise InvalidTransitionError(f"article {article.id!r} has no draft to publish")
    at = to_utc(now, "now")
    earlier = tuple(
        replace(v, state=VersionState.ARCHIVED) if v.state is VersionState.PUBLISHED else v
        for v in article.versions[:-1]
    )
    versions = (*earlier, replace(draft, state=VersionState.PUBLISHED, published_at=at))
    return _changed(
        article, actor, now, ArticleAction.PUBLISHED, draft.number, "", versions=versions
    )


def archive(article: Article, *, actor: Actor, now: datetime) -> tuple[Article, ArticleChange]:
    """Withdraw the article: its published version and its draft are archived.
    InvalidTransitionError when every version already is."""
    if article.current is None:
        raise InvalidTransitionError(f"article {article.id!r} is already archived")
    versions = tuple(
        v if v.state is VersionState.ARCHIVED else replace(v, state=VersionState.ARCHIVED)
        for v in article.versions
    )
    return _changed(
        article, actor, now, ArticleAction.ARCHIVED, article.latest.number, "", versions=versions
    )


def move(
    article: Article, section_id: str | None, *, actor: Actor, now: datetime
) -> tuple[Article, ArticleChange]:
    """Put the article in another section (None: in none)."""
    if section_id is not None:
        check_text(section_id, "a section id")
    return _changed(
        article,
        actor,
        now,
        ArticleAction.MOVED,
        article.latest.number,
        f"to {section_id or 'no section'}",
        section_id=section_id,
    )


# ---------------------------------------------------------------- search


@attrs.frozen(kw_only=True)
class SearchDocument:
    """A text a store indexes for search: one variant of one version of an article."""

    article_id: str = attrs.field(validator=ident)
    kind: str = attrs.field(validator=nonblank_text)
    """:data:`PUBLISHED` (what customers search) or :data:`CURRENT` (what agents search)."""
    version: int = attrs.field(validator=count)
    locale: str = attrs.field(converter=_locale)
    is_default: bool = attrs.field(validator=flag)
    """Whether it is the article's default locale (what a reader of another language gets)."""
    title: str = attrs.field(validator=text)
    body: str = attrs.field(validator=text)


def search_documents(article: Article) -> tuple[SearchDocument, ...]:
    """What a store indexes for ``article``: each variant of its published version (kind
    :data:`PUBLISHED`) and of its current version (kind :data:`CURRENT`). An archived
    article has none."""
    found: list[SearchDocument] = []
    for kind, version in ((PUBLISHED, article.published), (CURRENT, article.current)):
        if version is None:
            continue
        found.extend(
            SearchDocument(
                article_id=article.id,
                kind=kind,
                version=version.number,
                locale=v.locale,
                is_default=v.locale == article.default_locale,
                title=v.title,
                body=v.body,
            )
            for v in version.variants
        )
    return tuple(found)


@attrs.frozen(kw_only=True)
class ArticleHit:
    """One search result: the article, the version and locale that matched, and its score
    (higher is better; comparable only within one search of one store)."""

    article_id: str = attrs.field(validator=ident)
    version: int = attrs.field(validator=count)
    locale: str = attrs.field(converter=_locale)
    title: str = attrs.field(validator=text)
    score: float = attrs.field()


_WORD: Final = re.compile(r"[^\W_]+")

STOPWORDS: Final = frozenset(
    (
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "ought",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "hi",
        "hello",
        "thanks",
        "thank",
        "please",
        "dear",
        "regards",
        "get",
        "got",
        "also",
        "still",
        "s",
        "t",
        "don",
        "doesn",
        "didn",
        "isn",
        "wasn",
        "won",
        "can't",
        "cant",
        "im",
        "ive",
    )
)
"""Words too common to say what a text is about (English); a search ignores them."""

_MAX_WORD: Final = 40


def words(text: str) -> list[str]:
    """The words of ``text``, case-folded, accents removed (``Résumé`` is ``resume``)."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return [w for w in _WORD.findall(plain) if len(w) <= _MAX_WORD]


def query_terms(text: str, *, limit: int = 16) -> tuple[str, ...]:
    """The words a search for ``text`` looks for: its words but the stopwords and single
    letters, each once, in order, at most ``limit`` (a ticket's subject, then its body)."""
    found: dict[str, None] = {}
    for word in words(check_text(text, "a search")):
        if len(word) > 1 and word not in STOPWORDS:
            found[word] = None
            if len(found) >= limit:
                break
    return tuple(found)


def _stem(word: str) -> str:
    # A light English suffix stripper: plurals, -ing, -ed. Enough for a fallback ranker.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def index_terms(text: str) -> list[str]:
    """The terms :class:`RankedIndex` keeps of ``text`` (and looks up for a query): its
    words but the stopwords, lightly stemmed (``passwords`` and ``password`` are one)."""
    return [_stem(w) for w in words(text) if w not in STOPWORDS]


def words_of(terms: Iterable[str], chosen: Iterable[str]) -> tuple[str, ...]:
    """The query words whose index term is one of ``chosen`` (what :func:`selective` kept),
    for a store that looks words up in an index of its own (PostgreSQL's)."""
    kept = set(chosen)
    return tuple(t for t in dict.fromkeys(terms) if t not in STOPWORDS and _stem(t) in kept)


def stems(terms: Iterable[str]) -> tuple[str, ...]:
    """The index terms of query words (as :func:`index_terms` makes them), each once."""
    return tuple(dict.fromkeys(_stem(t) for t in terms if t not in STOPWORDS))


SELECTIVE_TERMS: Final = 6
"""At most this many terms of a query are looked up: the most selective."""
COMMON_SHARE: Final = 0.1
COMMON_FLOOR: Final = 500
"""A term more than :data:`COMMON_FLOOR` documents and more than :data:`COMMON_SHARE` of the
documents searched hold is left out of a query: its weight is small, and it would make the
search rank a large part of the index (a small index keeps every term)."""


def selective(frequencies: Mapping[str, int], total: int) -> tuple[str, ...]:
    """The terms a search looks up, given how many of the ``total`` documents hold each: the
    :data:`SELECTIVE_TERMS` rarest of those some document holds, but the common ones (see
    :data:`COMMON_FLOOR`), unless every term is common: then the rarest alone. Ties keep the
    query's order."""
    present = sorted((t for t, n in frequencies.items() if n > 0), key=lambda t: frequencies[t])
    common = max(COMMON_FLOOR, total * COMMON_SHARE)
    rare = [t for t in present if frequencies[t] <= common]
    return tuple((rare or present[:1])[:SELECTIVE_TERMS])


_K1: Final = 1.2
_B: Final = 0.75
_TITLE_WEIGHT: Final = 2


class RankedIndex:
    """An inverted index ranked by BM25 (k1 1.2, b 0.75; a title's terms count twice): the
    memory store's search, and a reference for the others. Keys are any hashable values."""

    def __init__(self) -> None:
        self._postings: dict[str, dict[object, int]] = {}
        self._lengths: dict[object, int] = {}
        self._terms: dict[object, tuple[str, ...]] = {}
        self._total = 0

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, key: object, title: str, body: str) -> None:
        """Index a document under ``key`` (replacing the one there)."""
        self.remove(key)
        counts: dict[str, int] = {}
        for term in index_terms(title):
            counts[term] = counts.get(term, 0) + _TITLE_WEIGHT
        for term in index_terms(body):
            counts[term] = counts.get(term, 0) + 1
        length = sum(counts.values())
        for term, tf in counts.items():
            self._postings.setdefault(term, {})[key] = tf
        self._lengths[key] = length
        self._terms[key] = tuple(counts)
        self._total += length

    def remove(self, key: object) -> None:
        """Forget the document under ``key`` (nothing if none)."""
        terms = self._terms.pop(key, None)
        if terms is None:
            return
        self._total -= self._lengths.pop(key)
        for term in terms:
            postings = self._postings[term]
            del postings[key]
            if not postings:
                del self._postings[term]

    def search(
        self, query: Sequence[str], *, keep: Callable[[object], bool], limit: int
    ) -> list[tuple[object, float]]:
        """The best ``limit`` documents that hold a term of ``query`` (words, as
        :func:`query_terms` gives them; the :func:`selective` ones are looked up) and that
        ``keep`` accepts, best first (ties by key's text), with their scores."""
        n = len(self._lengths)
        if not n:
            return []
        average = self._total / n or 1.0
        scores: dict[object, float] = {}
        wanted = stems(query)
        frequencies = {t: len(self._postings.get(t, ())) for t in wanted}
        for term in selective(frequencies, n):
            postings = self._postings[term]
            idf = math.log(1.0 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            for key, tf in postings.items():
                norm = tf + _K1 * (1.0 - _B + _B * self._lengths[key] / average)
                scores[key] = scores.get(key, 0.0) + idf * tf * (_K1 + 1.0) / norm
        ranked = sorted(scores.items(), key=lambda item: (-item[1], str(item[0])))
        found: list[tuple[object, float]] = []
        for key, score in ranked:
            if keep(key):
                found.append((key, score))
                if len(found) >= limit:
                    break
        return found


_SEARCH_CONFIGS: Final = {
    "da": "danish",
    "de": "german",
    "en": "english",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "hu": "hungarian",
    "it": "italian",
    "nb": "norwegian",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sv": "swedish",
    "tr": "turkish",
}


def search_config(locale: str | None) -> str:
    """The PostgreSQL text search configuration of a locale's language (``english`` for
    ``en-GB``), ``simple`` for a language it has none for."""
    if locale is None:
        return "simple"
    return _SEARCH_CONFIGS.get(primary_language(locale), "simple")


# ---------------------------------------------------------------- links and deflection


@attrs.frozen(kw_only=True)
class ArticleLink:
    """A ticket citing an article."""

    ticket_id: str = attrs.field(validator=ident)
    article_id: str = attrs.field(validator=ident)
    linked_at: datetime = attrs.field(converter=to_utc)
    linked_by: Actor = attrs.field(validator=instance(Actor))


@attrs.frozen(kw_only=True)
class Suggestion:
    """Articles shown to someone about to open a ticket, recorded to count deflection."""

    id: str = attrs.field(validator=ident)
    shown_at: datetime = attrs.field(converter=to_utc)
    article_ids: tuple[str, ...] = attrs.field(
        converter=_id_tuple, validator=instances_of(str, container=tuple)
    )
    contact_id: str | None = attrs.field(default=None, validator=optional_ident)
    """Who was shown them, if known."""
    session: str | None = attrs.field(default=None, validator=optional_text)
    """The host's session (a browser session, a chat), if any."""
    ticket_id: str | None = attrs.field(default=None, validator=optional_ident)
    """The ticket opened after it (by that session, or naming the suggestion), once known."""


@attrs.frozen
class Deflection:
    """Suggestions shown in a period, and what became of them."""

    shown: int
    deflected: int
    """No ticket was opened within the window after them."""
    ticketed: int
    """A ticket was opened within the window after them."""
    pending: int
    """Their window is not over yet, and no ticket was opened so far."""

    @property
    def rate(self) -> float | None:
        """Deflected among those decided (deflected or ticketed); None when none is."""
        decided = self.deflected + self.ticketed
        return None if decided == 0 else self.deflected / decided


def count_deflection(
    suggestions: Iterable[Suggestion],
    *,
    ticketed: Mapping[str, bool],
    now: datetime,
    window: timedelta,
) -> Deflection:
    """Count ``suggestions``: ``ticketed[id]`` says whether a ticket followed one within
    ``window`` (a suggestion marked with a ticket counts as followed whatever it says);
    one that was not and whose window ends after ``now`` is pending."""
    at = to_utc(now, "now")
    shown = deflected = followed = pending = 0
    for suggestion in suggestions:
        shown += 1
        if suggestion.ticket_id is not None or ticketed.get(suggestion.id, False):
            followed += 1
        elif suggestion.shown_at + window > at:
            pending += 1
        else:
            deflected += 1
    return Deflection(shown, deflected, followed, pending)
