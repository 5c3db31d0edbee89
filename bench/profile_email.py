"""Where helpkit's CPU goes when it ingests the email bench's corpus, per category.

Run ``python bench/profile_email.py`` (``--synchronous FULL``, ``--messages N``, ``--blobs
folder`` for attachments in the default blob folder rather than rows of the database,
``--cprofile FILE`` to also write a cProfile of the loop, readable with ``python -m pstats
FILE``). It
writes the corpus of ``bench/email_corpus.py`` (seed 1), parses every file first (each message
timed), then receives them in order into a fresh SQLite desk set up as ``bench_email.py``'s
helpkit worker sets it up, counting the SQL statements each message runs (a trace callback on
the store's connections: the counts are exact, the receive times carry the callback's small
cost) and timing each receive and its parts inside the store's commit. CPU is
``time.process_time`` (user + system of this process), milliseconds per message; it prints
Markdown. Nothing here is asserted: it is a measuring tool (bench/results/email.md quotes it).
"""

from __future__ import annotations

import argparse
import cProfile
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import email_corpus

_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+\b")


def _shape(sql: str) -> str:
    """A statement without its literal values (so that statements of one kind count as one)."""
    return _LITERALS.sub("?", " ".join(sql.split()))[:100]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"])
    parser.add_argument(
        "--blobs",
        default="sqlite",
        choices=["sqlite", "folder"],
        help="attachment bytes as rows of the database (the default, as bench_email.py) or "
        "in the default blob folder beside it",
    )
    parser.add_argument("--cprofile", type=Path, help="also write a cProfile of the loop here")
    args = parser.parse_args()

    from helpkit import Helpdesk
    from helpkit.channels.email_in import parse

    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*a: Any, **k: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*a, **k)
        conn.set_trace_callback(statements.append)
        return conn

    with tempfile.TemporaryDirectory(prefix="hk-profile-email-") as tmp:
        corpus = Path(tmp) / "mail"
        entries = {
            e.file: e.category for e in email_corpus.write_corpus(corpus, args.messages, args.seed)
        }
        files = sorted(p for p in corpus.iterdir() if p.suffix == ".eml")
        raws = [(entries[p.name], p.read_bytes()) for p in files]
        sqlite3.connect = traced  # type: ignore[assignment]
        try:
            url = f"sqlite:///{tmp}/helpkit.db?synchronous={args.synchronous}"
            desk = Helpdesk(
                url,
                blobs=url if args.blobs == "sqlite" else None,
                entry_points=False,
                config={"intake": {"addresses": [email_corpus.DESK], "acknowledge": True}},
            )
        finally:
            sqlite3.connect = connect
        count: Counter[str] = Counter()
        parse_cpu: dict[str, float] = defaultdict(float)
        receive_cpu: dict[str, float] = defaultdict(float)
        shapes: dict[str, Counter[str]] = defaultdict(Counter)
        profile = cProfile.Profile() if args.cprofile else None
        cpu = time.process_time
        loop_start = cpu()
        if profile is not None:
            profile.enable()
        for category, raw in raws:
            began = cpu()
            message = parse(raw, received_at=datetime.now(UTC))
            parsed = cpu()
            statements.clear()
            desk.receive(message)
            done = cpu()
            count[category] += 1
            parse_cpu[category] += parsed - began
            receive_cpu[category] += done - parsed
            shapes[category].update(_shape(s) for s in statements)
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.cprofile)
        loop = cpu() - loop_start
        desk.shutdown()

    total = sum(count.values())
    out = [
        f"# helpkit email intake, CPU per message by category ({args.synchronous}, blobs in "
        f"{'the database' if args.blobs == 'sqlite' else 'files'})",
        "",
        f"{total:,} messages, {1000 * loop / total:.3f} ms CPU each over the whole loop "
        f"(parse {1000 * sum(parse_cpu.values()) / total:.3f}, receive "
        f"{1000 * sum(receive_cpu.values()) / total:.3f}).",
        "",
        "| category | messages | parse ms | receive ms | SQL statements / message |",
        "|---|---:|---:|---:|---:|",
    ]
    for category in email_corpus_order(count):
        n = count[category]
        out.append(
            f"| {category} | {n:,} | {1000 * parse_cpu[category] / n:.3f} | "
            f"{1000 * receive_cpu[category] / n:.3f} | "
            f"{sum(shapes[category].values()) / n:.2f} |"
        )
    out += ["", "## Statements per message, by category", ""]
    for category in email_corpus_order(count):
        n = count[category]
        out += [f"- {category}:"]
        out += [
            f"  - {times / n:.2f} x `{shape}`" for shape, times in shapes[category].most_common()
        ]
    print("\n".join(out))


def email_corpus_order(count: Counter[str]) -> list[str]:
    order = ["new", "new_html", "new_attachment", "reply", "auto_reply", "bounce", "duplicate"]
    return [c for c in order if c in count] + sorted(c for c in count if c not in order)


if __name__ == "__main__":
    main()
