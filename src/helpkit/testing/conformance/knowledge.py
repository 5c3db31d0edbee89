"""Conformance cases of the knowledge base (:attr:`~helpkit.ports.Capability.KNOWLEDGE`).

Categories and sections (a section needs its category), articles saved with their audit
entries under a revision guard (a stale or skipped revision is refused and writes nothing),
ranked search over the published texts for customers and the current texts for agents, each
article once in the variant a reader of the locale gets, links between tickets and articles,
and suggestions. Persistent stores keep it all across reopening. Skipped, with the reason
shown, for stores that do not declare the capability.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest

from helpkit import knowledge
from helpkit.errors import ConflictError, DuplicateError, NotFoundError, ValidationError
from helpkit.knowledge import (
    Article,
    ArticleAction,
    ArticleLink,
    Category,
    Section,
    Suggestion,
    query_terms,
)
from helpkit.ports import Capability, KnowledgeBase, Store
from helpkit.ports import missing_members as _missing
from helpkit.testing.conformance.helpers import (
    BASE_TIME,
    ReopenStore,
    StoreFactory,
    _open,
    change_of,
)
from helpkit.tickets import Actor

__all__ = ["KnowledgeCases"]

_ANN = Actor.agent("ann")
_M = timedelta(minutes=1)


def _kb(store: Store) -> KnowledgeBase:
    if Capability.KNOWLEDGE not in store.capabilities:
        pytest.skip("the store does not declare Capability.KNOWLEDGE")
    assert _missing(store, KnowledgeBase) == (), "a store with KNOWLEDGE implements KnowledgeBase"
    return cast(KnowledgeBase, store)


def _saved(kb: KnowledgeBase, made: tuple[Article, knowledge.ArticleChange]) -> Article:
    kb.save_article(*made)
    return made[0]


def _published(
    kb: KnowledgeBase, article_id: str, title: str, body: str, *, locale: str = "en"
) -> Article:
    at = BASE_TIME
    draft = _saved(
        kb,
        knowledge.create(article_id, title=title, body=body, locale=locale, actor=_ANN, now=at),
    )
    return _saved(kb, knowledge.publish(draft, actor=_ANN, now=at + _M))


def _ids(kb: KnowledgeBase, text: str, **options: object) -> list[str]:
    hits = kb.search_articles(query_terms(text), **options)  # type: ignore[arg-type]
    return [h.article_id for h in hits]


class KnowledgeCases:
    """The knowledge base: tree, articles and their audit trail, search, links, suggestions."""

    def test_categories_and_sections_form_a_tree(self, store: Store) -> None:
        kb = _kb(store)
        kb.save_category(Category(id="c2", name="Billing", position=2))
        kb.save_category(Category(id="c1", name="Accounts", position=1))
        kb.save_section(Section(id="s1", category_id="c1", name="Passwords"))
        kb.save_section(Section(id="s0", category_id="c2", name="Invoices"))
        kb.save_category(Category(id="c1", name="Your account", position=1))
        assert [c.name for c in kb.categories()] == ["Your account", "Billing"]
        assert [s.id for s in kb.sections()] == ["s1", "s0"]
        assert [s.id for s in kb.sections("c2")] == ["s0"]
        with pytest.raises(NotFoundError):
            kb.save_section(Section(id="s9", category_id="nope", name="Lost"))
        assert [s.id for s in kb.sections()] == ["s1", "s0"]

    def test_an_article_is_saved_whole_with_its_audit_trail(self, store: Store) -> None:
        kb = _kb(store)
        kb.save_category(Category(id="c1", name="Accounts"))
        kb.save_section(Section(id="s1", category_id="c1", name="Passwords"))
        made = knowledge.create(
            "a1", title="Reset", body="Click reset.", locale="en", actor=_ANN, now=BASE_TIME,
            section_id="s1",
        )  # fmt: skip
        article = _saved(kb, made)
        article = _saved(kb, knowledge.publish(article, actor=_ANN, now=BASE_TIME + _M))
        article = _saved(
            kb,
            knowledge.edit(
                article, title="Zurücksetzen", body="Klicken.", locale="de", actor=_ANN,
                now=BASE_TIME + 2 * _M,
            ),
        )  # fmt: skip
        assert kb.article("a1") == article
        assert [a.id for a in kb.articles(section_id="s1")] == ["a1"]
        trail = kb.article_changes("a1")
        assert [(c.revision, c.action, c.version) for c in trail] == [
            (1, ArticleAction.CREATED, 1),
            (2, ArticleAction.PUBLISHED, 1),
            (3, ArticleAction.EDITED, 2),
        ]
        assert trail[2].actor == _ANN and trail[2].at == BASE_TIME + 2 * _M
        with pytest.raises(NotFoundError):
            kb.article("a2")
        with pytest.raises(NotFoundError):
            kb.article_changes("a2")

    def test_a_stale_revision_is_refused_and_writes_nothing(self, store: Store) -> None:
        kb = _kb(store)
        first = _published(kb, "a1", "Reset your password", "Click reset password.")
        edited, change = knowledge.edit(
            first, title="Other", body="words", actor=_ANN, now=BASE_TIME + _M
        )
        kb.save_article(edited, change)
        kept = (kb.article("a1"), kb.article_changes("a1"), _ids(kb, "words", drafts=True))
        assert kept[2] == ["a1"]
        stale = knowledge.archive(first, actor=_ANN, now=BASE_TIME + 2 * _M)
        twice = knowledge.edit(edited, title="Again", body="more", actor=_ANN, now=BASE_TIME)
        skipped = knowledge.publish(twice[0], actor=_ANN, now=BASE_TIME + 2 * _M)
        again = knowledge.create("a1", title="New", body="", locale="en", actor=_ANN, now=BASE_TIME)
        for refused in (stale, skipped, again):
            with pytest.raises(ConflictError):
                kb.save_article(*refused)
            assert (
                kb.article("a1"),
                kb.article_changes("a1"),
                _ids(kb, "words", drafts=True),
            ) == kept
        assert _ids(kb, "more", drafts=True) == [] and _ids(kb, "password") == ["a1"]

    def test_bad_saves_are_refused_before_anything_is_written(self, store: Store) -> None:
        kb = _kb(store)
        article, change = knowledge.create(
            "a1", title="T", body="B", locale="en", actor=_ANN, now=BASE_TIME, section_id="s9"
        )
        with pytest.raises(NotFoundError):
            kb.save_article(article, change)
        other, other_change = knowledge.create(
            "a2", title="T", body="B", locale="en", actor=_ANN, now=BASE_TIME
        )
        with pytest.raises(ValidationError):
            kb.save_article(other, change)  # the entry of another article
        with pytest.raises(ValidationError):
            kb.save_article(cast(Article, "a2"), other_change)
        assert kb.articles() == []
        with pytest.raises(NotFoundError):
            kb.article_changes("a1")

    def test_customers_search_published_texts_agents_search_drafts(self, store: Store) -> None:
        kb = _kb(store)
        _published(kb, "a1", "Reset your password", "Open settings, then reset the password.")
        draft = _saved(kb, knowledge.create(
            "a2", title="Password rules", body="Passwords need twelve characters.",
            locale="en", actor=_ANN, now=BASE_TIME,
        ))  # fmt: skip
        _published(kb, "a3", "Download invoices", "Invoices are under billing.")
        assert _ids(kb, "password") == ["a1"]
        assert sorted(_ids(kb, "password", drafts=True)) == ["a1", "a2"]
        # An edit of a published article is a draft: customers still find the old text.
        edited = knowledge.edit(
            kb.article("a1"), title="Change your passphrase", body="Use the passphrase page.",
            actor=_ANN, now=BASE_TIME + 5 * _M,
        )  # fmt: skip
        kb.save_article(*edited)
        assert _ids(kb, "password") == ["a1"]
        assert _ids(kb, "passphrase") == []
        assert _ids(kb, "passphrase", drafts=True) == ["a1"]
        kb.save_article(*knowledge.publish(edited[0], actor=_ANN, now=BASE_TIME + 6 * _M))
        assert _ids(kb, "passphrase") == ["a1"]
        # Archived: found by no one.
        kb.save_article(*knowledge.archive(kb.article("a3"), actor=_ANN, now=BASE_TIME))
        assert _ids(kb, "invoices") == [] and _ids(kb, "invoices", drafts=True) == []
        assert kb.search_articles([]) == [] and draft.status.value == "draft"

    def test_search_ranks_the_article_holding_more_terms_first(self, store: Store) -> None:
        kb = _kb(store)
        _published(kb, "a1", "Printer setup", "Connect the printer to the office network.")
        _published(kb, "a2", "VPN access", "The VPN client needs your network password.")
        _published(kb, "a3", "Network password for the VPN", "Reset the VPN network password.")
        _published(kb, "a4", "Holiday calendar", "Office closed on public holidays.")
        _published(kb, "a5", "Floor plan", "A printer stands on each floor.")
        ids = _ids(kb, "vpn network password")
        assert ids[0] == "a3" and set(ids) == {"a1", "a2", "a3"}
        # How often, not only whether: a1 names the printer twice (title and body), a5 (a
        # later id) once.
        assert _ids(kb, "printer") == ["a1", "a5"]
        hits = kb.search_articles(["vpn", "network", "password"], limit=2)
        assert [h.article_id for h in hits] == ids[:2]
        assert hits[0].score >= hits[1].score
        assert hits[0].title == "Network password for the VPN" and hits[0].locale == "en"

    def test_each_article_is_searched_in_its_readers_variant(self, store: Store) -> None:
        kb = _kb(store)
        article = _published(kb, "a1", "Reset your password", "Open the settings page.")
        with_de = knowledge.edit(
            article, title="Passwort zurücksetzen", body="Öffnen Sie die Einstellungen.",
            locale="de", actor=_ANN, now=BASE_TIME + _M,
        )  # fmt: skip
        kb.save_article(*with_de)
        kb.save_article(*knowledge.publish(with_de[0], actor=_ANN, now=BASE_TIME + 2 * _M))
        _published(kb, "a2", "Password policy", "Rules for passwords.")
        assert _ids(kb, "passwort", locale="de") == ["a1"]
        assert _ids(kb, "passwort", locale="de-AT") == ["a1"]
        # A German reader reads a1 in German: its English words do not find it; a2 has no
        # German variant, so they read (and find) its default text.
        assert _ids(kb, "password", locale="de") == ["a2"]
        assert sorted(_ids(kb, "password", locale="fr")) == ["a1", "a2"]
        assert sorted(_ids(kb, "password")) == ["a1", "a2"]
        hits = kb.search_articles(["passwort"], locale="de-ch")
        assert [(h.article_id, h.locale, h.version) for h in hits] == [("a1", "de", 2)]

    def test_search_arguments_are_checked(self, store: Store) -> None:
        kb = _kb(store)
        for terms in (["two words"], ['"quoted'], ["Upper"], "text", ["a*"], [""]):
            with pytest.raises(ValidationError):
                kb.search_articles(cast(list[str], terms))
        with pytest.raises(ValidationError):
            kb.search_articles(["ok"], locale="not a tag")
        with pytest.raises(ValidationError):
            kb.search_articles(["ok"], limit=0)

    def test_links_between_tickets_and_articles(self, store: Store) -> None:
        kb = _kb(store)
        store.commit([change_of(_open("t1", 0, BASE_TIME))])
        store.commit([change_of(_open("t2", 0, BASE_TIME))])
        _published(kb, "a1", "One", "first")
        _published(kb, "a2", "Two", "second")
        link = ArticleLink(ticket_id="t1", article_id="a1", linked_at=BASE_TIME, linked_by=_ANN)
        assert kb.link_article(link) is True
        assert kb.link_article(link) is False
        later = BASE_TIME + _M
        kb.link_article(
            ArticleLink(ticket_id="t1", article_id="a2", linked_at=later, linked_by=_ANN)
        )
        kb.link_article(
            ArticleLink(ticket_id="t2", article_id="a1", linked_at=later, linked_by=_ANN)
        )
        assert [x.article_id for x in kb.ticket_articles("t1")] == ["a1", "a2"]
        assert [x.ticket_id for x in kb.article_tickets("a1")] == ["t1", "t2"]
        assert kb.ticket_articles("t1")[0] == link
        with pytest.raises(NotFoundError):
            kb.link_article(ArticleLink(
                ticket_id="t9", article_id="a1", linked_at=BASE_TIME, linked_by=_ANN
            ))  # fmt: skip
        with pytest.raises(NotFoundError):
            kb.link_article(ArticleLink(
                ticket_id="t1", article_id="a9", linked_at=BASE_TIME, linked_by=_ANN
            ))  # fmt: skip
        assert kb.unlink_article("t1", "a1") is True
        assert kb.unlink_article("t1", "a1") is False
        assert [x.article_id for x in kb.ticket_articles("t1")] == ["a2"]
        assert [x.ticket_id for x in kb.article_tickets("a1")] == ["t2"]

    def test_suggestions_are_kept_and_marked_once(self, store: Store) -> None:
        kb = _kb(store)
        shown = [
            Suggestion(id=f"s{n}", shown_at=BASE_TIME + n * _M, article_ids=("a1",), session="w")
            for n in range(3)
        ]
        for suggestion in reversed(shown):
            kb.record_suggestion(suggestion)
        with pytest.raises(DuplicateError):
            kb.record_suggestion(shown[0])
        assert kb.suggestions(since=BASE_TIME, until=BASE_TIME + 2 * _M) == shown[:2]
        marked = kb.mark_suggestion("s1", "t1")
        assert marked.ticket_id == "t1"
        assert kb.mark_suggestion("s1", "t2").ticket_id == "t1"
        assert kb.suggestions(since=BASE_TIME + _M, until=BASE_TIME + 2 * _M) == [marked]
        with pytest.raises(NotFoundError):
            kb.mark_suggestion("s9", "t1")

    def test_the_knowledge_base_survives_reopening(
        self, make_store: StoreFactory, reopen_store: ReopenStore
    ) -> None:
        store = make_store()
        try:
            kb = _kb(store)
            if Capability.PERSISTENT not in store.capabilities:
                pytest.skip("the store does not declare Capability.PERSISTENT")
            kb.save_category(Category(id="c1", name="Accounts"))
            kb.save_section(Section(id="s1", category_id="c1", name="Passwords"))
            article = _published(kb, "a1", "Reset your password", "Click reset.")
            store.commit([change_of(_open("t1", 0, BASE_TIME))])
            kb.link_article(
                ArticleLink(ticket_id="t1", article_id="a1", linked_at=BASE_TIME, linked_by=_ANN)
            )
            kb.record_suggestion(Suggestion(id="s1", shown_at=BASE_TIME, article_ids=("a1",)))
            trail = kb.article_changes("a1")
        finally:
            store.close()
        reopened = reopen_store(store)
        try:
            kb = cast(KnowledgeBase, reopened)
            assert kb.article("a1") == article
            assert kb.article_changes("a1") == trail
            assert [s.id for s in kb.sections()] == ["s1"]
            assert _ids(kb, "password") == ["a1"]
            assert [x.article_id for x in kb.ticket_articles("t1")] == ["a1"]
            assert [s.id for s in kb.suggestions(since=BASE_TIME, until=BASE_TIME + _M)] == ["s1"]
        finally:
            reopened.close()
