"""Knowledge base search: latency over 10k articles, and relevance on a labelled set, per store.

Run ``python bench/bench_kb.py`` (or ``nox -s bench -- bench/bench_kb.py``). For each store
(memory, SQLite, PostgreSQL when a server answers at ``$HELPKIT_BENCH_POSTGRES_DSN``, else
``$HELPKIT_TEST_POSTGRES_DSN``, else the local one):

- *latency*: ``--articles`` generated articles (10,000 by default: help-centre style titles
  and bodies of ~80 words drawn from a topic vocabulary, one in ten a draft) are loaded
  straight through the store (setup, not measured); then, timed one by one:
  ``desk.kb.search`` of 300 short queries (one to three words, what a customer types in a
  help centre's search box), and ``desk.kb.suggest`` of 300 new tickets (a subject and a
  body of ~40 words: the top three articles for it, and the suggestion recorded for
  deflection). p50, p95 and max per store.
- *relevance*: the articles of ``bench/data/kb_labelled.toml`` (30 hand-written articles,
  published) in a fresh store, and its 22 questions through ``desk.kb.suggest``: precision at
  3 (relevant articles among the three shown, over three, averaged) and the share of
  questions with a relevant article in the top three.

Writes ``bench/results/kb.md`` and prints the Markdown (``--quick``: tiny sizes, no file).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpkit import Helpdesk
from helpkit.knowledge import (
    Article,
    ArticleAction,
    ArticleChange,
    ArticleVersion,
    Variant,
    VersionState,
)
from helpkit.ports import KnowledgeBase, Store
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.tickets import Actor

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "kb.md"
LABELLED = HERE / "data" / "kb_labelled.toml"
DSN = os.environ.get(
    "HELPKIT_BENCH_POSTGRES_DSN",
    os.environ.get("HELPKIT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
AUTHOR = Actor.agent("writer")
SEARCHES = 300
SUGGESTIONS = 300

PRODUCTS = [
    "vpn",
    "printer",
    "laptop",
    "mailbox",
    "outlook",
    "calendar",
    "wifi",
    "badge",
    "phone",
    "invoice",
    "payment",
    "plan",
    "api",
    "webhook",
    "dashboard",
    "report",
    "export",
    "import",
    "workspace",
    "account",
    "password",
    "sso",
    "token",
    "browser",
    "monitor",
    "keyboard",
    "headset",
    "license",
    "backup",
    "database",
    "server",
    "storage",
    "scanner",
    "projector",
    "tablet",
    "router",
    "firewall",
    "certificate",
    "domain",
    "repository",
    "pipeline",
    "container",
    "cluster",
    "spreadsheet",
    "presentation",
    "whiteboard",
    "meeting",
    "room",
    "parking",
    "locker",
    "expense",
    "receipt",
    "contract",
    "payroll",
    "timesheet",
    "onboarding",
    "offboarding",
]
PROBLEMS = [
    "error",
    "crash",
    "slow",
    "offline",
    "locked",
    "expired",
    "missing",
    "broken",
    "duplicate",
    "failed",
    "blocked",
    "denied",
    "timeout",
    "disconnects",
    "freezes",
    "corrupted",
    "unreadable",
    "overdue",
    "rejected",
    "stuck",
    "flickering",
    "overheating",
    "noisy",
    "unresponsive",
    "invisible",
    "misaligned",
    "truncated",
    "garbled",
    "unsynced",
]
ACTIONS = [
    "reset",
    "install",
    "configure",
    "update",
    "remove",
    "restore",
    "connect",
    "request",
    "renew",
    "share",
    "sync",
    "move",
    "download",
    "upload",
    "cancel",
    "enable",
    "disable",
    "verify",
    "migrate",
    "replace",
    "archive",
    "approve",
    "assign",
    "schedule",
    "rename",
    "merge",
    "split",
    "encrypt",
    "decrypt",
]
_SYLLABLES = [
    "ba",
    "be",
    "bi",
    "bo",
    "bu",
    "da",
    "de",
    "di",
    "do",
    "du",
    "ka",
    "ke",
    "ki",
    "ko",
    "ku",
    "la",
    "le",
    "li",
    "lo",
    "lu",
    "ma",
    "me",
    "mi",
    "mo",
    "mu",
]
VOCABULARY = sorted(
    {a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in ("n", "r", "s", "t", "")}
)[:3000]
"""The rest of an article's words: 3,000 made-up words drawn by Zipf's law (a few very
common, most rare), the shape of a real help centre's vocabulary."""
_ZIPF = [1.0 / (rank + 1) ** 1.1 for rank in range(len(VOCABULARY))]


class FixedClock:
    """The bench's "now"."""

    def now(self) -> datetime:
        return NOW


def _words(rng: random.Random, topic: Sequence[str], count: int) -> str:
    # Mostly common language (Zipf) with the topic's words mixed in.
    common = rng.choices(VOCABULARY, weights=_ZIPF, k=count)
    return " ".join(rng.choice(topic) if rng.random() < 0.2 else word for word in common)


def generated(index: int) -> Article:
    """The ``index``-th generated article: published, one in ten a draft."""
    rng = random.Random(index)
    topic = [rng.choice(PRODUCTS), rng.choice(PRODUCTS), rng.choice(PROBLEMS), rng.choice(ACTIONS)]
    title = f"{topic[3].capitalize()} {topic[0]} {topic[2]} {topic[1]}"
    body = _words(rng, topic, 80)
    state = VersionState.DRAFT if index % 10 == 9 else VersionState.PUBLISHED
    return _article(f"g{index:06d}", title, body, state)


def _article(article_id: str, title: str, body: str, state: VersionState) -> Article:
    published = NOW if state is VersionState.PUBLISHED else None
    version = ArticleVersion(
        number=1,
        state=state,
        variants=[Variant(locale="en", title=title, body=body)],
        created_at=NOW,
        created_by=AUTHOR,
        published_at=published,
    )
    return Article(
        id=article_id,
        section_id=None,
        default_locale="en",
        versions=(version,),
        revision=1,
        created_at=NOW,
        updated_at=NOW,
    )


def load(store: KnowledgeBase, articles: Sequence[Article]) -> float:
    """Save each article (one save, its revision 1, as a bulk import would); seconds taken."""
    start = time.perf_counter()
    for article in articles:
        action = ArticleAction.PUBLISHED if article.published is not None else ArticleAction.CREATED
        store.save_article(
            article,
            ArticleChange(
                article_id=article.id, revision=1, at=NOW, actor=AUTHOR, action=action, version=1
            ),
        )
    return time.perf_counter() - start


def queries(seed: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Short search queries, and new tickets (subject, body)."""
    rng = random.Random(seed)
    searches = [
        " ".join(rng.choice(PRODUCTS + PROBLEMS + ACTIONS) for _ in range(rng.randint(1, 3)))
        for _ in range(SEARCHES)
    ]
    tickets = []
    for _ in range(SUGGESTIONS):
        topic = [rng.choice(PRODUCTS), rng.choice(PROBLEMS), rng.choice(ACTIONS)]
        subject = f"{topic[0]} {topic[1]} when I {topic[2]}"
        body = "Hello, " + _words(rng, topic, 40) + ". Thanks for your help!"
        tickets.append((subject, body))
    return searches, tickets


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": cut[49] * 1000, "p95": cut[94] * 1000, "max": ordered[-1] * 1000}


def _timed(calls: Iterator[Callable[[], object]]) -> tuple[list[float], list[float], int]:
    """Wall-clock and CPU seconds of each call (CPU time: this process's, what the call cost
    whatever else the machine runs), and how many calls found something."""
    samples, cpu, found = [], [], 0
    for call in calls:
        start, start_cpu = time.perf_counter(), time.process_time()
        result = call()
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        found += 1 if result else 0
    return samples, cpu, found


def latency(desk: Helpdesk, seed: int) -> dict[str, Any]:
    searches, tickets = queries(seed)
    kb = desk.kb
    for text in searches[:20]:  # warm caches (pages, prepared statements)
        kb.search(text)
    search_s, search_cpu, search_found = _timed(
        functools.partial(kb.search, t, locale="en") for t in searches
    )
    suggest_s, suggest_cpu, suggest_found = _timed(
        functools.partial(lambda s, b: kb.suggest(s, b, locale="en").hits, s, b) for s, b in tickets
    )
    return {
        "search": _percentiles(search_s),
        "search_cpu": _percentiles(search_cpu),
        "suggest_cpu": _percentiles(suggest_cpu),
        "search_found": search_found / len(searches),
        "suggest": _percentiles(suggest_s),
        "suggest_found": suggest_found / len(tickets),
    }


def relevance(desk: Helpdesk) -> dict[str, float]:
    data = tomllib.loads(LABELLED.read_text(encoding="utf-8"))
    store = desk.store
    assert isinstance(store, KnowledgeBase)
    load(
        store,
        [
            _article(a["id"], a["title"], " ".join(a["body"].split()), VersionState.PUBLISHED)
            for a in data["articles"]
        ],
    )
    precision, hits = [], 0
    for question in data["questions"]:
        shown = [h.article_id for h in desk.kb.suggest(question["text"], locale="en").hits]
        relevant = set(question["relevant"])
        good = sum(1 for article_id in shown[:3] if article_id in relevant)
        precision.append(good / 3)
        hits += 1 if good else 0
    best = statistics.mean(min(len(q["relevant"]), 3) / 3 for q in data["questions"])
    return {
        "p_at_3": statistics.mean(precision),
        "hit_at_3": hits / len(data["questions"]),
        "best_p_at_3": best,
        "questions": len(data["questions"]),
        "labelled_articles": len(data["articles"]),
    }


@contextmanager
def opened(kind: str, folder: str) -> Iterator[Store]:
    if kind == "memory":
        store: Store = MemoryStore()
        try:
            yield store
        finally:
            store.close()
        return
    if kind == "sqlite":
        path = Path(folder) / f"kb-{uuid.uuid4().hex[:8]}.db"
        store = SqliteStore(path, synchronous="NORMAL")
        try:
            yield store
        finally:
            store.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    from helpkit.stores.postgres import postgres_store_factory

    schema = f"bench_kb_{uuid.uuid4().hex[:10]}"
    separator = "&" if "?" in DSN else "?"
    store = postgres_store_factory(f"{DSN}{separator}schema={schema}")
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def postgres_missing() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (the postgres extra)"
    try:
        psycopg.connect(DSN, autocommit=True, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"no PostgreSQL server at {DSN} ({str(exc).strip()[:200]})"
    return None


def run(articles: int, folder: str, stores: Sequence[str]) -> list[dict[str, Any]]:
    generated_articles = [generated(i) for i in range(articles)]
    rows = []
    for kind in stores:
        with opened(kind, folder) as store:
            desk = Helpdesk(store, clock=FixedClock(), entry_points=False)
            assert isinstance(store, KnowledgeBase)
            load_s = load(store, generated_articles)
            row: dict[str, Any] = {"store": kind, "articles": articles, "load_s": load_s}
            row.update(latency(desk, seed=articles))
        with opened(kind, folder) as store:
            desk = Helpdesk(store, clock=FixedClock(), entry_points=False)
            row.update(relevance(desk))
        rows.append(row)
    return rows


def machine() -> list[str]:
    return [
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--articles", type=int, default=10_000, help="generated articles")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 articles, no file")
    parser.add_argument(
        "--stores", default="memory,sqlite,postgres", help="comma-separated: memory,sqlite,postgres"
    )
    args = parser.parse_args(argv)
    articles = 300 if args.quick else args.articles
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    skipped = []
    if "postgres" in stores and (reason := postgres_missing()) is not None:
        stores.remove("postgres")
        skipped.append(f"- postgres skipped: {reason}")
    with tempfile.TemporaryDirectory(prefix="helpkit-bench-kb-") as folder:
        rows = run(articles, folder, stores)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    command = "python bench/bench_kb.py" + (f" --articles {articles}" if articles != 10_000 else "")
    lines = [
        "# Knowledge base search",
        "",
        f"`{command}` (`nox -s bench -- bench/bench_kb.py`). {articles:,} generated articles",
        "(help-centre titles and ~80-word bodies from a topic vocabulary; one in ten a draft),",
        "loaded straight through the store (one save each; setup). Then, one call at a time:",
        f"`desk.kb.search` of {SEARCHES} short queries (1-3 words; published articles, locale",
        f"`en`) and `desk.kb.suggest` of {SUGGESTIONS} new tickets (subject and a ~40-word body:",
        "the top three articles, and the suggestion recorded for deflection, one write).",
        "SQLite with `synchronous=NORMAL`; PostgreSQL on the local server.",
        "",
        "Wall-clock time, and in brackets the CPU time of the benchmark's process (what a",
        "call cost, whatever else the machine ran: the PostgreSQL server's own work is not in",
        "it; see the load average below).",
        "",
        "| store | search p50 (ms) | search p95 (ms) | search max (ms) | suggest p50 (ms) "
        "| suggest p95 (ms) | suggest max (ms) | searches with hits | load (s) |",
        "|:---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        s, g = row["search"], row["suggest"]
        sc, gc = row["search_cpu"], row["suggest_cpu"]
        lines.append(
            f"| {row['store']} | {s['p50']:.2f} ({sc['p50']:.2f}) | {s['p95']:.2f} "
            f"({sc['p95']:.2f}) | {s['max']:.1f} | {g['p50']:.2f} ({gc['p50']:.2f}) "
            f"| {g['p95']:.2f} ({gc['p95']:.2f}) | {g['max']:.1f} "
            f"| {row['search_found']:.0%} | {row['load_s']:.1f} |"
        )
    first = rows[0] if rows else {"questions": 0, "labelled_articles": 0, "best_p_at_3": 0.0}
    lines += [
        "",
        "## Relevance",
        "",
        f"`bench/data/kb_labelled.toml`: {first['labelled_articles']} hand-written articles,",
        f"{first['questions']} questions as typed into a new ticket, each with the articles",
        "that answer it (one to three). Each question through `desk.kb.suggest` (top three).",
        "Precision at 3 = relevant articles among the three shown / 3, averaged; most",
        "questions have one or two relevant articles, so the best possible is "
        f"{first['best_p_at_3']:.2f}.",
        "",
        "| store | precision at 3 | best possible | questions with a relevant one in the top 3 |",
        "|:---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['store']} | {row['p_at_3']:.2f} | {row['best_p_at_3']:.2f} "
            f"| {row['hit_at_3']:.0%} |"
        )
    lines += ["", *machine(), f"- load average (1, 5, 15 min) at the end: {load}", *skipped, ""]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
