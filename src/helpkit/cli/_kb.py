"""``helpkit kb``: the knowledge base (articles, their tree, search, suggestions, answers
published from solved tickets, links, deflection)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from helpkit import serialize
from helpkit.cli._commands import _ticket_ref
from helpkit.cli._errors import UsageError
from helpkit.cli._numbers import int_range
from helpkit.cli._output import _emit_json
from helpkit.desk import Helpdesk
from helpkit.knowledge import Article, ArticleHit

__all__ = ["add_kb_commands"]


def _article_line(article: Article) -> str:
    variant = article.latest.variant(article.default_locale)
    return (
        f"{article.id}  {article.status.value:9}  v{article.latest.number}  "
        f"r{article.revision}  {variant.title}"
    )


def _done(article: Article, args: argparse.Namespace, what: str) -> int:
    if args.json:
        _emit_json(serialize.to_data(article))
    else:
        print(f"article {article.id} {what}: {_article_line(article)}")
    return 0


def _hits(hits: list[ArticleHit] | tuple[ArticleHit, ...], args: argparse.Namespace) -> None:
    if args.json:
        _emit_json([serialize.to_data(h) for h in hits])
        return
    if not hits:
        print("no articles found")
    for hit in hits:
        print(f"{hit.article_id}  {hit.score:10.4g}  [{hit.locale}]  {hit.title}")


def cmd_kb_add(desk: Helpdesk, args: argparse.Namespace) -> int:
    article = desk.kb.create(
        args.title,
        args.body,
        args.actor,
        locale=args.locale,
        section_id=args.section,
        article_id=args.id,
    )
    return _done(article, args, "added as a draft")


def cmd_kb_edit(desk: Helpdesk, args: argparse.Namespace) -> int:
    if args.title is None and args.body is None:
        raise UsageError("kb edit: give --title, --body or both")
    article = desk.kb.edit(
        args.article,
        args.actor,
        title=args.title,
        body=args.body,
        locale=args.locale,
        expected_revision=args.revision,
    )
    return _done(article, args, "edited (a draft until published)")


def cmd_kb_publish(desk: Helpdesk, args: argparse.Namespace) -> int:
    article = desk.kb.publish(args.article, args.actor, expected_revision=args.revision)
    return _done(article, args, "published")


def cmd_kb_archive(desk: Helpdesk, args: argparse.Namespace) -> int:
    article = desk.kb.archive(args.article, args.actor, expected_revision=args.revision)
    return _done(article, args, "archived")


def cmd_kb_list(desk: Helpdesk, args: argparse.Namespace) -> int:
    articles = desk.kb.articles(section_id=args.section, limit=args.limit)
    if args.json:
        _emit_json([serialize.to_data(a) for a in articles])
        return 0
    if not articles:
        print("no articles (add one: helpkit kb add TITLE --body TEXT)")
    for article in articles:
        print(_article_line(article))
    return 0


def cmd_kb_show(desk: Helpdesk, args: argparse.Namespace) -> int:
    article = desk.kb.article(args.article)
    history = desk.kb.history(article.id)
    links = desk.kb.tickets_of(article.id)
    if args.json:
        _emit_json(
            {
                "article": serialize.to_data(article),
                "history": [serialize.to_data(c) for c in history],
                "tickets": [serialize.to_data(x) for x in links],
            }
        )
        return 0
    print(_article_line(article))
    print(f"section {article.section_id or '-'}, default locale {article.default_locale}")
    for version in article.versions:
        print(f"  v{version.number} {version.state.value} ({', '.join(sorted(version.locales()))})")
    variant = article.variant(args.locale, drafts=True)
    if variant is not None:
        print(f"\n[{variant.locale}] {variant.title}\n{variant.body}\n")
    print("history:")
    for change in history:
        detail = f" {change.detail}" if change.detail else ""
        print(
            f"  r{change.revision} {change.at:%Y-%m-%d %H:%M} {change.actor} "
            f"{change.action.value} v{change.version}{detail}"
        )
    if links:
        print("tickets: " + ", ".join(x.ticket_id for x in links))
    return 0


def cmd_kb_search(desk: Helpdesk, args: argparse.Namespace) -> int:
    hits = desk.kb.search(args.text, locale=args.locale, drafts=args.drafts, limit=args.limit)
    _hits(hits, args)
    return 0


def cmd_kb_suggest(desk: Helpdesk, args: argparse.Namespace) -> int:
    suggested = desk.kb.suggest(
        args.subject,
        args.body,
        locale=args.locale,
        contact_id=args.contact,
        session=args.session,
        limit=args.limit,
    )
    if args.json:
        _emit_json(
            {
                "suggestion_id": suggested.suggestion_id,
                "hits": [serialize.to_data(h) for h in suggested.hits],
            }
        )
        return 0
    _hits(suggested.hits, args)
    if suggested.suggestion_id is not None:
        print(f"suggestion {suggested.suggestion_id} recorded")
    return 0


def cmd_kb_from_ticket(desk: Helpdesk, args: argparse.Namespace) -> int:
    article = desk.kb.publish_answer(
        _ticket_ref(args.ticket),
        args.actor,
        title=args.title,
        locale=args.locale,
        section_id=args.section,
    )
    return _done(article, args, f"drafted from ticket {args.ticket}")


def cmd_kb_link(desk: Helpdesk, args: argparse.Namespace) -> int:
    if args.remove:
        done = desk.kb.unlink(_ticket_ref(args.ticket), args.article, args.actor)
        print(
            f"ticket {args.ticket} {'no longer cites' if done else 'did not cite'} {args.article}"
        )
    else:
        done = desk.kb.link(_ticket_ref(args.ticket), args.article, args.actor)
        print(f"ticket {args.ticket} {'now cites' if done else 'already cited'} {args.article}")
    return 0


def cmd_kb_categories(desk: Helpdesk, args: argparse.Namespace) -> int:
    if args.add_category is not None:
        category = desk.kb.add_category(
            args.add_category, args.actor, category_id=args.id, position=args.position
        )
        print(f"category {category.id} ({category.name}) saved")
        return 0
    if args.add_section is not None:
        category_id, name = args.add_section
        section = desk.kb.add_section(
            category_id, name, args.actor, section_id=args.id, position=args.position
        )
        print(f"section {section.id} ({section.name}) saved in {section.category_id}")
        return 0
    categories = desk.kb.categories()
    sections = desk.kb.sections()
    if args.json:
        _emit_json(
            {
                "categories": [serialize.to_data(c) for c in categories],
                "sections": [serialize.to_data(s) for s in sections],
            }
        )
        return 0
    if not categories:
        print("no categories (add one: helpkit kb categories --add-category NAME)")
    for category in categories:
        print(f"{category.id}  {category.name}")
        for section in (s for s in sections if s.category_id == category.id):
            print(f"  {section.id}  {section.name}")
    return 0


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date or instant; got {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_instant.__name__ = "instant"


def cmd_kb_deflection(desk: Helpdesk, args: argparse.Namespace) -> int:
    until = args.until or desk.now()
    since = args.since or until - timedelta(days=30)
    found = desk.kb.deflection(since, until)
    rate = None if found.rate is None else round(found.rate, 4)
    if args.json:
        _emit_json(
            {
                "since": since.isoformat(),
                "until": until.isoformat(),
                "shown": found.shown,
                "deflected": found.deflected,
                "ticketed": found.ticketed,
                "pending": found.pending,
                "rate": rate,
            }
        )
        return 0
    shown = f"{'-' if rate is None else f'{rate:.1%}'}"
    print(
        f"{found.shown} suggestions shown: {found.deflected} deflected, {found.ticketed} "
        f"followed by a ticket, {found.pending} pending (deflection rate {shown})"
    )
    return 0


# An article's revision counts its saves: it is not capped as page sizes are.
_REVISION: Final = int_range(1, 2**63 - 1)


def add_kb_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """The ``kb`` command and its actions."""
    kb = command("kb", cmd_kb_list, "the knowledge base: articles, search, suggestions")
    kb.set_defaults(json=False, section=None, limit=100)
    actions = kb.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, handler: Callable[..., int], text: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=text, description=text)
        p.set_defaults(handler=handler)
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    p = action("add", cmd_kb_add, "add an article (a draft until published)")
    p.add_argument("title")
    p.add_argument("--body", default="", help="the article's text")
    p.add_argument("--locale", default="en", help="its language tag (default en)")
    p.add_argument("--section", help="section id")
    p.add_argument("--id", help="article id (default: a new one)")
    p = action("edit", cmd_kb_edit, "change an article's text (in its draft, or a new draft)")
    p.add_argument("article", help="article id")
    p.add_argument("--title")
    p.add_argument("--body")
    p.add_argument("--locale", help="the variant to set (default: the default locale)")
    p.add_argument("--revision", type=_REVISION, help="refuse if the article moved past it")
    for name, handler, text in (
        ("publish", cmd_kb_publish, "publish an article's draft"),
        ("archive", cmd_kb_archive, "withdraw an article"),
    ):
        p = action(name, handler, text)
        p.add_argument("article", help="article id")
        p.add_argument("--revision", type=_REVISION, help="refuse if the article moved past it")
    p = action("list", cmd_kb_list, "list articles (the default)")
    p.add_argument("--section", help="only this section's")
    p.add_argument("--limit", type=int_range(1, 1000), default=100)
    p = action("show", cmd_kb_show, "an article: versions, text, history, tickets")
    p.add_argument("article", help="article id")
    p.add_argument("--locale", help="the variant to show (as a reader of that language)")
    p = action("search", cmd_kb_search, "search articles (published ones; --drafts: current)")
    p.add_argument("text")
    p.add_argument("--locale", help="the reader's language tag")
    p.add_argument("--drafts", action="store_true", help="search drafts too (agents)")
    p.add_argument("--limit", type=int_range(1, 1000), default=10)
    p = action("suggest", cmd_kb_suggest, "the top articles for a new ticket (recorded)")
    p.add_argument("subject")
    p.add_argument("--body", default="")
    p.add_argument("--locale", help="the reader's language tag")
    p.add_argument("--contact", help="contact id it is shown to")
    p.add_argument("--session", help="the host's session id")
    p.add_argument("--limit", type=int_range(1, 1000), default=3)
    p = action("from-ticket", cmd_kb_from_ticket, "draft an article from a solved ticket's answer")
    p.add_argument("ticket", help="number (42 or #42) or id")
    p.add_argument("--title", help="default: the ticket's subject")
    p.add_argument("--locale", default="en")
    p.add_argument("--section", help="section id")
    p = action("link", cmd_kb_link, "record that a ticket cites an article (--remove: forget)")
    p.add_argument("ticket", help="number (42 or #42) or id")
    p.add_argument("article", help="article id")
    p.add_argument("--remove", action="store_true")
    p = action("categories", cmd_kb_categories, "list categories and sections, or add one")
    adding = p.add_mutually_exclusive_group()
    adding.add_argument("--add-category", metavar="NAME")
    adding.add_argument("--add-section", nargs=2, metavar=("CATEGORY", "NAME"))
    p.add_argument("--id", help="the id of what is added (default: a new one)")
    p.add_argument("--position", type=int, default=0)
    p = action("deflection", cmd_kb_deflection, "suggestions shown and what became of them")
    p.add_argument("--since", type=_instant, help="default: 30 days before --until")
    p.add_argument("--until", type=_instant, help="default: now")
