"""Properties of the knowledge base's domain: the article version lifecycle as a state machine
(against a plain model), the ranked fallback's search, and the locale fallback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from helpkit import knowledge
from helpkit.errors import InvalidTransitionError
from helpkit.knowledge import (
    Article,
    RankedIndex,
    Suggestion,
    VersionState,
    count_deflection,
    query_terms,
)
from helpkit.locales import choose_variant
from helpkit.stores.memory import MemoryStore
from helpkit.tickets import Actor

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ANN = Actor.agent("ann")

_WORDS = st.sampled_from(
    ["vpn", "printer", "password", "invoice", "laptop", "badge", "wifi", "refund", "mailbox"]
)


class ArticleLifecycle(RuleBasedStateMachine):
    """Random edits, publications and archivals of one article, against a model: a list of
    (state, text) per version."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.article, _ = knowledge.create(
            "a1", title="t0", body="b0", locale="en", actor=ANN, now=self.now
        )
        self.model: list[list[str]] = [["draft", "t0"]]
        self.revision = 1
        self.texts = 0

    def _tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now

    @rule()
    def edit(self) -> None:
        self.texts += 1
        title = f"t{self.texts}"
        self.article, change = knowledge.edit(
            self.article, title=title, body="b", actor=ANN, now=self._tick()
        )
        if self.model[-1][0] == "draft":
            self.model[-1][1] = title
        else:
            self.model.append(["draft", title])
        self.revision += 1
        assert change.version == len(self.model)

    @rule()
    def publish(self) -> None:
        if self.model[-1][0] != "draft":
            with pytest.raises(InvalidTransitionError):
                knowledge.publish(self.article, actor=ANN, now=self._tick())
            return
        self.article, _ = knowledge.publish(self.article, actor=ANN, now=self._tick())
        for version in self.model:
            if version[0] == "published":
                version[0] = "archived"
        self.model[-1][0] = "published"
        self.revision += 1

    @rule()
    def archive(self) -> None:
        if all(v[0] == "archived" for v in self.model):
            with pytest.raises(InvalidTransitionError):
                knowledge.archive(self.article, actor=ANN, now=self._tick())
            return
        self.article, _ = knowledge.archive(self.article, actor=ANN, now=self._tick())
        for version in self.model:
            version[0] = "archived"
        self.revision += 1

    @precondition(lambda self: self.article.published is not None)
    @rule()
    def customers_read_the_published_text(self) -> None:
        published = [v for v in self.model if v[0] == "published"]
        variant = self.article.variant("en")
        assert variant is not None and variant.title == published[0][1]

    @invariant()
    def matches_the_model(self) -> None:
        assert [[v.state.value, v.variants[0].title] for v in self.article.versions] == self.model
        assert self.article.revision == self.revision
        states = [v.state for v in self.article.versions]
        assert states.count(VersionState.PUBLISHED) <= 1
        assert VersionState.DRAFT not in states[:-1]
        # Rebuilding the article from its fields runs every check again.
        assert (
            Article(
                id="a1",
                section_id=None,
                default_locale="en",
                versions=self.article.versions,
                revision=self.article.revision,
                created_at=self.article.created_at,
                updated_at=self.article.updated_at,
            )
            == self.article
        )
        documents = knowledge.search_documents(self.article)
        kinds = {d.kind: d.version for d in documents}
        published = self.article.published
        assert kinds.get(knowledge.PUBLISHED) == (None if published is None else published.number)


TestArticleLifecycle = ArticleLifecycle.TestCase
TestArticleLifecycle.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


@given(
    query=st.lists(_WORDS, min_size=1, max_size=3, unique=True),
    noise=st.lists(st.lists(_WORDS, max_size=6), max_size=8),
)
def test_a_document_holding_every_query_term_ranks_above_one_holding_none(
    query: list[str], noise: list[list[str]]
) -> None:
    index = RankedIndex()
    index.add("all", " ".join(query), "")
    index.add("none", "holiday calendar", "office closed")
    for n, words in enumerate(noise):
        index.add(f"n{n}", "", " ".join(words))
    ranked = [key for key, _ in index.search(query, keep=lambda key: True, limit=1000)]
    assert "all" in ranked and "none" not in ranked
    # Kept out by ``keep``, it is not ranked at all; the rest keep their order.
    kept = [k for k, _ in index.search(query, keep=lambda key: key != "all", limit=1000)]
    assert kept == [k for k in ranked if k != "all"]


@given(
    extra=st.lists(_WORDS, min_size=1, max_size=4, unique=True),
    keep=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_a_document_holding_more_of_the_query_ranks_above_its_subset(
    extra: list[str], keep: list[bool]
) -> None:
    # Same length documents: one holds every query word, the other only the first.
    index = RankedIndex()
    index.add("full", "", " ".join(extra))
    index.add("part", "", " ".join([extra[0]] * len(extra)))
    index.add("other", "", "calendar holiday")
    scores = dict(index.search(extra, keep=lambda key: True, limit=10))
    if len(extra) > 1:
        assert scores["full"] > scores["part"]
    removed = [k for k, flag in zip(["full", "part", "other"], keep, strict=False) if not flag]
    for key in removed:
        index.remove(key)
    left = {k for k, _ in index.search(extra, keep=lambda key: True, limit=10)}
    assert left.isdisjoint(removed)


@settings(max_examples=30, deadline=None)
@given(states=st.lists(st.sampled_from(["draft", "published", "edited", "archived"]), max_size=6))
def test_customers_find_only_published_articles(states: list[str]) -> None:
    store = MemoryStore()
    expected_public, expected_agents = set(), set()
    for n, state in enumerate(states):
        made = knowledge.create(
            f"a{n}", title="Password help", body="reset", locale="en", actor=ANN, now=T0
        )
        store.save_article(*made)
        article = made[0]
        if state != "draft":
            made = knowledge.publish(article, actor=ANN, now=T0)
            store.save_article(*made)
        if state == "edited":
            made = knowledge.edit(made[0], title="Passphrase", body="x", actor=ANN, now=T0)
            store.save_article(*made)
        if state == "archived":
            store.save_article(*knowledge.archive(made[0], actor=ANN, now=T0))
        if state in ("published", "edited"):
            expected_public.add(f"a{n}")
        if state in ("draft", "published"):
            expected_agents.add(f"a{n}")
    public = {h.article_id for h in store.search_articles(["password"], limit=100)}
    agents = {h.article_id for h in store.search_articles(["password"], drafts=True, limit=100)}
    assert public == expected_public
    assert agents == expected_agents
    for hit in store.search_articles(["password"], limit=100):
        assert store.article(hit.article_id).published is not None


@given(
    variants=st.sets(st.sampled_from(["de", "de-at", "pt", "pt-br", "en", "fr-ca"])),
    language=st.one_of(st.none(), st.sampled_from(["de", "DE-at", "de-ch", "pt-BR", "fr", "en"])),
)
def test_the_variant_is_the_exact_tag_else_the_primary_language_else_the_default(
    variants: set[str], language: str | None
) -> None:
    chosen = choose_variant(variants, language, "default")
    if language is None:
        assert chosen == "default"
    elif language.lower() in variants:
        assert chosen == language.lower()
    elif language.lower().split("-")[0] in variants:
        assert chosen == language.lower().split("-")[0]
    else:
        assert chosen == "default"


def test_query_terms_drop_stopwords_fold_case_and_accents() -> None:
    assert query_terms("How do I reset MY Résumé password?") == ("reset", "resume", "password")
    assert query_terms("the and of") == ()
    assert len(query_terms(" ".join(f"w{n}" for n in range(40)))) == 16


def test_deflection_counts_each_suggestion_once() -> None:
    shown = [
        Suggestion(id="s1", shown_at=T0, article_ids=("a",)),
        Suggestion(id="s2", shown_at=T0, article_ids=("a",), ticket_id="t1"),
        Suggestion(id="s3", shown_at=T0 + timedelta(hours=23), article_ids=("a",)),
        Suggestion(id="s4", shown_at=T0, article_ids=("a",)),
    ]
    found = count_deflection(
        shown, ticketed={"s4": True}, now=T0 + timedelta(hours=24), window=timedelta(hours=24)
    )
    assert (found.shown, found.deflected, found.ticketed, found.pending) == (4, 1, 2, 1)
    assert found.rate == pytest.approx(1 / 3)


@given(
    frequencies=st.dictionaries(_WORDS, st.integers(min_value=0, max_value=5000)),
    total=st.integers(min_value=1, max_value=20_000),
)
def test_a_search_looks_up_the_rarest_terms_some_document_holds(
    frequencies: dict[str, int], total: int
) -> None:
    chosen = knowledge.selective(frequencies, total)
    present = {t for t, n in frequencies.items() if n > 0}
    assert set(chosen) <= present and len(chosen) <= knowledge.SELECTIVE_TERMS
    assert bool(chosen) == bool(present)
    if chosen:
        left_out = present - set(chosen)
        assert all(frequencies[t] >= max(frequencies[c] for c in chosen) for t in left_out) or (
            all(
                frequencies[t] > max(knowledge.COMMON_FLOOR, total * knowledge.COMMON_SHARE)
                for t in left_out
            )
        )
