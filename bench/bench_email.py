"""Email intake: helpkit into SQLite against django-helpdesk's own email import, same files.

Run ``python bench/bench_email.py`` (the ``bench`` dependency group installs django-helpdesk;
``nox -s bench -- bench/bench_email.py`` does both). ``bench/email_corpus.py`` writes a
realistic mixed corpus of ``.eml`` files (new requests in plain text, HTML-only and with
attachments, threaded replies with quoted history, out-of-office auto-replies, bounces,
byte-identical duplicates) with its answer key. Every system ingests a fresh copy of the same
folder in its own worker process, on a fresh SQLite file:

- helpkit: every file read, ``helpkit.channels.email_in.parse`` then ``Helpdesk.receive``,
  as ``helpkit mail import`` receives (bytes parsed before, a redelivery, are not parsed
  again: their Message-ID, kept by the bytes' SHA-256, finds the first outcome through
  ``Helpdesk.received``)
  (attachments, by default, as rows of the database itself, ``blobs="sqlite:///x.db"``: each
  put one transaction committed at the store's synchronous before the commit that names it;
  ``--blobs folder``: into the desk's default blob folder beside the database, at FULL each
  file flushed to disk before that commit, at NORMAL not flushed, as the commits are not;
  each message one committed transaction, or ``--group N`` messages in one group commit
  (``Helpdesk.group_commit``, as ``helpkit mail import --batch N``), each file deleted once
  its message is committed; acknowledgements on:
  decided and recorded at receive, rendered and sent by the relay afterwards, untimed);
- django-helpdesk: the loop of ``helpdesk.email.process_queue`` for a queue of type
  ``local`` (what its ``get_email`` management command runs: read the file, then
  ``extract_email_metadata``, then delete the file), over the files in name order (its own
  loop takes ``os.listdir``'s order, which would ingest replies before their requests);
  attachments into ``MEDIA_ROOT``; its acknowledgement email to the submitter goes to
  Django's in-memory mail backend.

Measured: messages/s over the whole folder, ``ru_maxrss`` of the worker, and correctness per
category from each system's own database afterwards: a new request opened exactly one ticket
holding it; a reply is held once, on the ticket of the request it answers; an auto-reply or a
bounce is on no ticket; a duplicate left its Message-ID held at most once. Writes
``bench/results/email.md`` and prints the same Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sqlite as bs
import email_corpus

RESULTS = Path(__file__).resolve().parent / "results" / "email.md"
PACKAGES = ["helpkit", "attrs", "pluggy", "python-dateutil", "django-helpdesk", "Django"]
CATEGORIES = [
    "new",
    "new_html",
    "new_attachment",
    "reply",
    "auto_reply",
    "bounce",
    "duplicate",
]


@dataclass
class Job:
    system: str  # helpkit or django
    journal: str  # WAL or DELETE (helpkit: always WAL)
    synchronous: str  # FULL or NORMAL
    corpus: str = ""
    directory: str = ""
    source: str = ""
    """helpkit only: a source tree whose ``helpkit`` the worker imports (``--before``)."""
    blobs: str = "folder"
    """helpkit only: where attachment bytes go: ``folder`` (the default blob folder beside the
    database, ``x.db.blobs``) or ``sqlite`` (the ``blobs`` table of the database itself,
    ``blobs="sqlite:///x.db"``, at the store's synchronous)."""
    group: int = 1
    """helpkit only: messages committed together (``Helpdesk.group_commit``, what ``helpkit
    mail import --batch N`` does); 1: each message its own commit."""


@dataclass
class Result:
    job: Job
    label: str = ""
    journal_mode: str = ""
    synchronous: str = ""
    messages: int = 0
    seconds: float = 0.0
    maxrss_kib: int = 0
    right: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    revision: str = ""
    cpu_seconds: float = 0.0
    """The worker's CPU time (user + system, ``time.process_time``) over the timed loop: the
    figure that swings least with the machine's load."""
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU milliseconds per message of each category (helpkit: also ``parse:<category>``
    and ``receive:<category>``)."""

    @property
    def cpu_per_message_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.messages if self.messages else 0.0

    @property
    def per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------- correctness


def judge(
    entries: list[email_corpus.Entry],
    held: dict[str, list[tuple[str, bool]]],
    result: Result,
) -> None:
    """Score each category. ``held[message id]``: (ticket, opened it) for every comment or
    follow-up holding that Message-ID in the system's database."""
    # The tickets each message opened (a system that ingests a duplicate opens two: a reply
    # on either of them still answers its request).
    opened_by: dict[str, set[str]] = defaultdict(set)
    for mid, places in held.items():
        for ticket, opened in places:
            if opened:
                opened_by[mid].add(ticket)
    for e in entries:
        result.total[e.category] = result.total.get(e.category, 0) + 1
        places = held.get(e.message_id, [])
        if e.category.startswith("new"):
            ok = len(places) == 1 and places[0][1]
        elif e.category == "reply":
            targets = opened_by.get(e.thread_of or "", set())
            ok = len(places) == 1 and not places[0][1] and places[0][0] in targets
        elif e.category in ("auto_reply", "bounce"):
            ok = not places
        else:  # duplicate: its Message-ID is held at most once, wherever the original went
            ok = len(places) <= 1
        if ok:
            result.right[e.category] = result.right.get(e.category, 0) + 1
        elif len(result.wrong) < 12:
            result.wrong.append(f"{e.file} {e.category}: held {places}")


def _per_category(corpus: Path, times: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean CPU milliseconds per message of each category (``<part>:<category>`` for the
    parts other than the whole, keyed ``""``), from each file's seconds."""
    sums: dict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    for e in email_corpus.read_manifest(corpus):
        parts = times.get(e.file)
        if parts is None:
            continue
        counts[e.category] += 1
        for part, seconds in parts.items():
            sums[f"{part}:{e.category}" if part else e.category] += seconds
    return {
        key: 1000 * value / counts[key.rpartition(":")[2]]
        for key, value in sorted(sums.items())
        if counts[key.rpartition(":")[2]]
    }


# ---------------------------------------------------------------- helpkit


def run_helpkit(job: Job) -> Result:
    from helpkit import Helpdesk
    from helpkit.channels.email_in import EmailParseError, parse
    from helpkit.stores.sqlite import SqliteStore

    result = Result(job)
    folder = Path(job.directory) / "mail"
    db = Path(job.directory) / "helpkit.db"
    url = f"sqlite:///{db}?synchronous={job.synchronous}"
    desk = Helpdesk(
        url,
        blobs=url if job.blobs == "sqlite" else None,
        entry_points=False,
        # Acknowledgements on, as django-helpdesk sends them: receive decides each one (rate
        # limited per requester); the relay renders and sends it later, outside the timing.
        config={"intake": {"addresses": [email_corpus.DESK], "acknowledge": True}},
    )
    store = desk.store
    assert isinstance(store, SqliteStore)
    with store._connection() as conn:  # what the store's own connections run with
        result.journal_mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).upper()
        result.synchronous = bs._sync_name(conn.execute("PRAGMA synchronous").fetchone()[0])
    name = "helpkit" if not job.source else f"helpkit before {_tree_revision(job.source)}"
    if job.source:
        import helpkit

        where = Path(helpkit.__file__).resolve()
        assert where.is_relative_to(Path(job.source).resolve()), f"imported {where}"
    name += f", blobs in {'the database' if job.blobs == 'sqlite' else 'files'}"
    name += (
        f", a group commit per {job.group} messages" if job.group > 1 else ", a commit per message"
    )
    result.label = f"{name} (sqlite, {result.journal_mode} + {result.synchronous})"
    outcomes: Counter[str] = Counter()
    files = sorted(p for p in folder.iterdir() if p.suffix == ".eml")
    # CPU per message and per part, by category: three process_time readings a message.
    times: list[tuple[str, float, float, float]] = []
    cpu = time.process_time
    start, cpu_start = time.perf_counter(), cpu()
    # As `helpkit mail import` receives (cli/_mail.py's receiver): bytes parsed before are
    # not parsed again, their id (kept by the bytes' SHA-256) finds the first outcome. A
    # --before tree without that parses every message.
    seen = _parsed_ids(desk)
    group = job.group
    for first in range(0, len(files), group):
        chunk = files[first : first + group]
        done: list[Path] = []
        # --group N: N messages in one group commit (`helpkit mail import --batch N`); 1: each
        # message its own commit, outside any group (what a --before tree can do).
        with desk.group_commit() if group > 1 else contextlib.nullcontext():
            for path in chunk:
                began = cpu()
                raw = path.read_bytes()
                key = b""
                if seen is not None:
                    ids, digest = seen
                    key = digest(raw)
                    known = ids.get(key)
                    if known is not None:
                        checked = cpu()
                        again = desk.received("email", known)
                        if again is not None:
                            times.append((path.name, began, checked, cpu()))
                            outcomes["duplicate"] += 1
                            done.append(path)
                            continue
                try:
                    message = parse(raw, received_at=datetime.now(UTC))
                except EmailParseError:
                    outcomes["unparseable"] += 1
                    continue
                if seen is not None:
                    seen[0].add(key, message.external_id)
                parsed = cpu()
                intake = desk.receive(message)
                times.append((path.name, began, parsed, cpu()))
                outcomes["duplicate" if intake.duplicate else str(intake.kind.value)] += 1
                done.append(path)
        # Acknowledged once committed, as `helpkit mail import --delete` does (and as
        # django-helpdesk's loop deletes each file it processed).
        for path in done:
            path.unlink()
    result.seconds = time.perf_counter() - start
    result.cpu_seconds = cpu() - cpu_start
    result.cpu_ms = _per_category(
        Path(job.corpus),
        {name: {"": c - a, "parse": b - a, "receive": c - b} for name, a, b, c in times},
    )
    result.messages = len(files)
    result.outcomes = dict(outcomes)
    held: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    page = desk.tickets(limit=1000)
    while True:
        for ticket in page.items:
            for n, comment in enumerate(desk.conversation(ticket.id)):
                if comment.external_id:
                    held[comment.external_id.strip("<>")].append((ticket.id, n == 0))
        if page.next_cursor is None:
            break
        page = desk.tickets(limit=1000, after=page.next_cursor)
    judge(email_corpus.read_manifest(Path(job.corpus)), held, result)
    desk.shutdown()
    return result


def _parsed_ids(desk: Any) -> tuple[Any, Callable[[bytes], bytes]] | None:
    """A fresh ``ParsedIds`` and its digest, when the helpkit imported has them and its desk
    answers ``received`` (a --before tree may have neither)."""
    try:
        from helpkit.channels.parsed_ids import ParsedIds, digest
    except ImportError:
        return None
    if not hasattr(desk, "received"):
        return None
    return ParsedIds(), digest


# ---------------------------------------------------------------- django-helpdesk


def run_django(job: Job) -> Result:
    result = Result(job)
    path = Path(job.directory) / "django.db"
    folder = Path(job.directory) / "mail"
    pragmas = [f"PRAGMA journal_mode = {job.journal}", f"PRAGMA synchronous = {job.synchronous}"]
    conf = bs._import("django.conf")
    conf.settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        USE_TZ=True,
        TIME_ZONE="UTC",
        SITE_ID=1,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sites",
            "django.contrib.humanize",
            "rest_framework",
            "helpdesk",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(path),
                "OPTIONS": {"init_command": "; ".join(pragmas)},
            }
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {"context_processors": []},
            }
        ],
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        MEDIA_ROOT=str(Path(job.directory) / "media"),
        LOGGING_CONFIG=None,
        HELPDESK_TEAMS_MODE_ENABLED=False,
    )
    bs._import("django").setup()
    bs._import("django.core.management").call_command("migrate", verbosity=0, interactive=False)
    db = bs._import("django.db")
    models = bs._import("helpdesk.models")
    helpdesk_email = bs._import("helpdesk.email")
    helpdesk_exceptions = bs._import("helpdesk.exceptions")
    with db.connection.cursor() as cur:
        cur.execute("PRAGMA journal_mode")
        result.journal_mode = str(cur.fetchone()[0]).upper()
        cur.execute("PRAGMA synchronous")
        result.synchronous = bs._sync_name(cur.fetchone()[0])
    result.label = f"django-helpdesk (sqlite, {result.journal_mode} + {result.synchronous})"
    queue = models.Queue.objects.create(
        title="Support",
        slug="support",
        email_address=email_corpus.DESK,
        allow_email_submission=True,
        email_box_type="local",
        email_box_local_dir=str(folder),
    )
    logger = logging.getLogger("bench.django-helpdesk")
    logger.setLevel(logging.ERROR)
    force_str = bs._import("django.utils.encoding").force_str
    files = sorted(p for p in folder.iterdir() if p.suffix == ".eml")
    times: dict[str, dict[str, float]] = {}
    cpu = time.process_time
    start, cpu_start = time.perf_counter(), cpu()
    # process_queue's loop for a local folder, in file-name (arrival) order: its own loop
    # takes os.listdir's order, which would answer requests before they were asked.
    for path in files:
        began = cpu()
        with open(path) as f:
            full_message = force_str(f.read(), errors="replace")
        try:
            ticket = helpdesk_email.extract_email_metadata(
                message=full_message, queue=queue, logger=logger
            )
        except (
            helpdesk_exceptions.IgnoreTicketException,
            helpdesk_exceptions.DeleteIgnoredTicketException,
        ):
            times[path.name] = {"": cpu() - began}
            continue
        if ticket:
            os.unlink(path)
        times[path.name] = {"": cpu() - began}
    result.seconds = time.perf_counter() - start
    result.cpu_seconds = cpu() - cpu_start
    result.cpu_ms = _per_category(Path(job.corpus), times)
    result.messages = len(files)
    result.outcomes = {
        "tickets": models.Ticket.objects.count(),
        "follow-ups": models.FollowUp.objects.count(),
        "left in folder": sum(1 for p in folder.iterdir() if p.suffix == ".eml"),
    }
    held: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    first: dict[int, int] = {}
    rows = list(
        models.FollowUp.objects.order_by("date", "id").values_list("id", "ticket_id", "message_id")
    )
    for fid, tid, _mid in rows:
        first.setdefault(tid, fid)
    for fid, tid, mid in rows:
        if mid:
            held[mid.strip().strip("<>")].append((str(tid), first[tid] == fid))
    judge(email_corpus.read_manifest(Path(job.corpus)), held, result)
    db.connection.close()
    return result


# ---------------------------------------------------------------- the driver


def _tree_revision(source: str) -> str:
    """What ``--before`` names a source tree by: its ``REVISION`` file's first word (written
    by whoever exported it), else its folder's name."""
    mark = Path(source).parent / "REVISION"
    if mark.is_file():
        return mark.read_text(encoding="utf-8").split()[0][:12]
    return Path(source).parent.name


def worker(spec: str, out: str) -> None:
    job = Job(**json.loads(spec))
    runner = {"helpkit": run_helpkit, "django": run_django}[job.system]
    result = runner(job)
    result.maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.revision = bs.revision()
    Path(out).write_text(json.dumps(asdict(result)), encoding="utf-8")


def spawn(job: Job) -> Result:
    """One job in a fresh interpreter, on a fresh copy of the corpus and a fresh database."""
    directory = Path(tempfile.mkdtemp(prefix=f"hk-bench-email-{job.system}-"))
    job.directory = str(directory)
    shutil.copytree(job.corpus, directory / "mail", ignore=shutil.ignore_patterns("*.json"))
    out = directory / "result.json"
    print(
        f"-- {job.system} {job.journal} + {job.synchronous} {job.source} "
        f"{job.blobs if job.system == 'helpkit' else ''}",
        file=sys.stderr,
        flush=True,
    )
    env = dict(os.environ)
    if job.source:  # that tree's helpkit first on the path, before the installed one
        env["PYTHONPATH"] = os.pathsep.join(p for p in (job.source, env.get("PYTHONPATH", "")) if p)
    try:
        subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(asdict(job)), str(out)],
            check=True,
            env=env,
        )
        data = json.loads(out.read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    data["job"] = Job(**data["job"])
    return Result(**data)


def _score(r: Result, category: str) -> str:
    total = r.total.get(category, 0)
    return f"{r.right.get(category, 0)}/{total}" if total else "-"


def render(
    results: list[Result],
    messages: int,
    seed: int,
    took: float,
    load: tuple[float, float] | None = None,
) -> str:
    counts = Counter(e.category for e in email_corpus.read_manifest(Path(results[0].job.corpus)))
    fsync = bs.fsync_rate(1.0)
    out = [
        "# Email intake benchmark: helpkit against django-helpdesk's email import",
        "",
        "Produced by `python bench/bench_email.py` (or `nox -s bench -- bench/bench_email.py`).",
        f"Corpus: `bench/email_corpus.py`, {messages:,} messages, seed {seed}: "
        + ", ".join(f"{counts[c]:,} {c}" for c in CATEGORIES)
        + ". Each row is one worker process ingesting a fresh copy of the same folder into a",
        "fresh SQLite file. A message's file is deleted once the message is committed, on both",
        "sides (acknowledged: a crash loses no deleted file's message).",
        "",
        "- helpkit: read each file, `helpkit.channels.email_in.parse`, `Helpdesk.receive`, as",
        "  `helpkit mail import` does (bytes parsed before are not parsed again: their",
        "  Message-ID, kept by their SHA-256, finds the first outcome, `Helpdesk.received`)",
        '  (attachments, "blobs in the database": rows of the desk\'s SQLite file, the',
        "  `sqlite:` blob store, each put one transaction committed at the store's synchronous",
        '  before the commit that names it; "blobs in files": the default blob folder, at FULL',
        "  each file and its folder fsynced before that commit, at NORMAL not flushed, as its",
        "  commits are not; replies threaded by their references to a message the desk received",
        "  from the same requester; screens suspend auto-replies and bounces; a message received",
        "  again returns its first outcome; acknowledgements on: each new ticket's is decided,",
        "  rate-limited per requester, and recorded at receive; rendering and sending it is the",
        '  relay\'s work, afterwards, not timed). "a commit per message": each message its own',
        '  committed transaction, its file deleted after it; "a group commit per N messages":',
        "  N messages in one `Helpdesk.group_commit` (what `helpkit mail import --batch N` does,",
        "  default 100): one durable transaction, the N files deleted after it.",
        "- django-helpdesk: the loop of `helpdesk.email.process_queue` for a `local` queue (what",
        "  `manage.py get_email` runs: read, `extract_email_metadata`, delete the file; each",
        "  database write its own autocommitted transaction), over the",
        "  files in name order (its loop takes `os.listdir` order, which would answer requests",
        "  before they were asked); attachments into `MEDIA_ROOT` (Django's file storage: no",
        "  fsync); its acknowledgement to the submitter rendered and sent, inside the timing, to",
        "  Django's in-memory mail backend.",
        "- **right**: from each system's database afterwards. new: one ticket opened, holding it;",
        "  reply: held once, on the ticket of the request it answers; auto-reply, bounce: on no",
        "  ticket; duplicate: its Message-ID held at most once.",
        "",
        "| system | journal + synchronous | messages/s | seconds | CPU ms/message | "
        "peak RSS MiB | " + " | ".join(CATEGORIES) + " |",
        "|---|---|---:|---:|---:|---:|" + "---:|" * len(CATEGORIES),
    ]
    for r in results:
        out.append(
            f"| {r.label.split(' (')[0]} | {r.journal_mode} + {r.synchronous} | "
            f"{r.per_s:,.0f} | {r.seconds:,.1f} | {r.cpu_per_message_ms:,.2f} | "
            f"{r.maxrss_kib / 1024:,.0f} | " + " | ".join(_score(r, c) for c in CATEGORIES) + " |"
        )
    pairs = [
        (h, d)
        for h in results
        if h.job.system == "helpkit"
        for d in results
        if d.job.system == "django" and d.synchronous == h.synchronous
    ]
    pairs.sort(
        key=lambda p: (p[0].journal_mode, p[0].synchronous) != (p[1].journal_mode, p[1].synchronous)
    )
    out += ["", "## Ratios (helpkit / django-helpdesk)", ""]
    out += [
        "messages/s is the goal's measure; CPU is each worker's own CPU time over its loop",
        "(django-helpdesk's CPU ms per message / helpkit's), which swings far less with the",
        "machine's load than the wall clock does.",
        "",
        "| pairing | messages/s ratio | CPU ratio |",
        "|---|---:|---:|",
    ]
    for h, d in pairs:
        same = (
            " (same journal and synchronous: the fair pairing)"
            if ((h.journal_mode, h.synchronous) == (d.journal_mode, d.synchronous))
            else ""
        )
        ratio = f"{h.per_s / d.per_s:,.1f}x" if d.per_s else "-"
        cpu_ratio = (
            f"{d.cpu_per_message_ms / h.cpu_per_message_ms:,.1f}x" if h.cpu_per_message_ms else "-"
        )
        out.append(
            f"| {h.label.split(' (')[0]} {h.journal_mode} + {h.synchronous} vs django-helpdesk "
            f"{d.journal_mode} + {d.synchronous}{same} | {ratio} | {cpu_ratio} |"
        )
    out += ["", "## CPU ms per message, by category", ""]
    out += ["| system | journal + synchronous | " + " | ".join(CATEGORIES) + " |"]
    out += ["|---|---|" + "---:|" * len(CATEGORIES)]
    for r in results:
        rows = [("", r.label.split(" (")[0])]
        if r.job.system == "helpkit":
            rows += [("parse:", "  of which parse"), ("receive:", "  of which receive")]
        for prefix, name in rows:
            cells = [r.cpu_ms.get(prefix + c) for c in CATEGORIES]
            out.append(
                f"| {name} | {r.journal_mode} + {r.synchronous} | "
                + " | ".join("-" if v is None else f"{v:.2f}" for v in cells)
                + " |"
            )
    out += ["", "## Outcomes as each system reported them", ""]
    for r in results:
        out.append(f"- {r.label}: " + ", ".join(f"{k} {v:,}" for k, v in r.outcomes.items()))
    wrong = [(r.label, w) for r in results for w in r.wrong]
    if wrong:
        out += ["", "## Examples of wrong outcomes (first few per system)", ""]
        out += [f"- {label}: `{w}`" for label, w in wrong]
    versions = ", ".join(f"{p} {bs._version(p)}" for p in PACKAGES)
    revision = next((r.revision for r in results if not r.job.source), "?")
    out += [
        "",
        "## Machine",
        "",
        f"- {bs._cpu()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}; {versions}",
        f"- command `{' '.join(['python', 'bench/bench_email.py', *sys.argv[1:]])}`, "
        f"run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"helpkit revision {revision}; fsync/s {fsync[0]:,.0f}, "
        f"fdatasync/s {fsync[1]:,.0f} in the temp directory; the run took {took:,.0f} s"
        + (
            f"; 1-minute load average {load[0]:.2f} at the start, {load[1]:.2f} at the end "
            "(the machine is shared: a busy disk slows every flush)"
            if load is not None
            else ""
        ),
        "",
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 60 messages")
    parser.add_argument("--systems", default="helpkit,django")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--before",
        type=Path,
        help="also run the helpkit jobs with the helpkit of this source tree (the folder "
        "holding its helpkit package, e.g. from `git archive main src`), beside this tree's",
    )
    parser.add_argument(
        "--blobs",
        default="sqlite",
        help="where this tree's helpkit keeps attachment bytes, comma-separated for one job "
        "each: sqlite (the blobs table of the desk's database, the default) or folder (the "
        "default blob folder beside it); --before jobs use --before-blobs",
    )
    parser.add_argument(
        "--before-blobs",
        default="folder",
        choices=["folder", "sqlite"],
        help="where the --before tree's helpkit keeps attachment bytes: folder (its default "
        "blob folder, the default: any tree has one) or sqlite (a tree with the sqlite: blob "
        "store, so that before and after keep them alike)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the helpkit jobs of each synchronous this many times, every other round in "
        "the reverse order (one row each): before/after comparisons on a loaded machine",
    )
    parser.add_argument(
        "--group",
        default="1,100",
        help="this tree's helpkit commits this many messages together (Helpdesk.group_commit, "
        "as `helpkit mail import` does), comma-separated for one job each; 1 commits each "
        "message on its own (--before jobs always do)",
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    if args.rounds < 1:
        parser.error("--rounds is at least 1")
    blob_modes = args.blobs.split(",")
    if not blob_modes or any(mode not in ("sqlite", "folder") for mode in blob_modes):
        parser.error(f"--blobs takes sqlite, folder or both, not {args.blobs!r}")
    try:
        groups = [int(n) for n in args.group.split(",")]
    except ValueError:
        parser.error(f"--group takes whole numbers, comma-separated, not {args.group!r}")
    if not groups or min(groups) < 1:
        parser.error("--group takes numbers of at least 1")
    messages = 60 if args.quick else args.messages
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hk-bench-corpus-") as corpus:
        email_corpus.write_corpus(Path(corpus), messages, args.seed)
        systems = args.systems.split(",")
        jobs = []
        if "helpkit" in systems:
            for sync in ("FULL", "NORMAL"):
                group = [
                    Job("helpkit", "WAL", sync, corpus, blobs=mode, group=size)
                    for mode in blob_modes
                    for size in groups
                ]
                if args.before is not None:
                    before = Job(
                        "helpkit",
                        "WAL",
                        sync,
                        corpus,
                        source=str(args.before),
                        blobs=args.before_blobs,
                    )
                    group.insert(0, before)
                # Each round runs the group in the other order than the round before, so no
                # variant always runs first (or last) while the machine's load drifts.
                for turn in range(args.rounds):
                    jobs += group if turn % 2 == 0 else group[::-1]
        if "django" in systems:
            jobs += [
                Job("django", "WAL", "FULL", corpus),
                Job("django", "WAL", "NORMAL", corpus),
                Job("django", "DELETE", "FULL", corpus),
            ]
        results = [spawn(job) for job in jobs]
        took = time.perf_counter() - start
        text = render(results, messages, args.seed, took, (load_before, os.getloadavg()[0]))
    print(text)
    if not args.quick:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
