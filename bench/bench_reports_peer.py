"""KPI reports beside django-helpdesk's own reports, on the same tickets, in one run.

Run ``python bench/bench_reports_peer.py`` (or ``nox -s bench -- bench/bench_reports_peer.py``;
the ``bench`` dependency group installs django-helpdesk). For each size (100k tickets by
default) the same tickets go into two SQLite files (setup, not measured): helpkit's, through
its store, with the histories of ``bench/bench_kpis.py`` (opening, message, replies and notes,
solved for 4 in 5), and django-helpdesk's, through its models (``bulk_create``): one ticket per
helpkit ticket in the queue of its group, assigned to the agent who replies, created and
modified when helpkit's opened and last changed, resolved where helpkit's is solved, with one
follow-up per comment and status change. Then, each in a fresh process, timed in wall clock
and CPU time with the process's peak memory:

- django-helpdesk: its reports as a lead opens them (the views called with a request, the
  pages rendered): the report index (ticket counts, open tickets by age, average days to
  close, the queues' open/resolved/closed grid) and each of its eight report pages (users and
  queues by status, priority, queue and month; days until closed by month);
- helpkit: ``Helpdesk.kpis`` recomputed from every ticket's history (one call answers all of
  the questions above and more: first response and resolution in calendar and business hours,
  SLA compliance, backlog by status, group and age, volume over time, agent activity); and
  the same report from a kept projection (its checkpoint loaded, then the report).

Both sides must agree where they answer the same question: tickets in all, tickets resolved,
open tickets per queue (group). Writes ``bench/results/reports-peer.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_kpis as kpis  # the sibling bench's tickets and tasks

from helpkit.events import CommentAdded, StatusChanged
from helpkit.stores.sqlite import SqliteStore

RESULTS = Path(__file__).resolve().parent / "results" / "reports-peer.md"
DJANGO_REPORTS = (
    "userstatus",
    "userpriority",
    "userqueue",
    "usermonth",
    "queuestatus",
    "queuepriority",
    "queuemonth",
    "daysuntilticketclosedbymonth",
)
LEAD = "lead"


# ---------------------------------------------------------------- django-helpdesk


def _django(path: str) -> None:
    """Configure django-helpdesk in this process on the SQLite file ``path`` (WAL, NORMAL:
    as helpkit's file), with what its report pages need to render."""
    urls = Path(path).parent / "bench_report_urls.py"
    urls.write_text(
        "from django.urls import include, path\n"
        'urlpatterns = [path("", include("helpdesk.urls", namespace="helpdesk"))]\n'
    )
    sys.path.insert(0, str(urls.parent))
    _imp("django.conf").settings.configure(
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
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "rest_framework",
            "helpdesk",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": path,
                "OPTIONS": {
                    "init_command": "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL"
                },
            }
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        ROOT_URLCONF="bench_report_urls",
        STATIC_URL="/static/",
        LOGGING_CONFIG=None,
        HELPDESK_TEAMS_MODE_ENABLED=False,
    )
    _imp("django").setup()


def _imp(name: str) -> Any:
    """A module of the peer (imported by name: it has no type information)."""
    return importlib.import_module(name)


def django_load(path: str, total: int) -> None:
    """``total`` tickets into django-helpdesk's file, the same as :func:`bench_kpis.load`'s."""
    _django(path)
    user_model = _imp("django.contrib.auth.models").User
    transaction = _imp("django.db").transaction
    models = _imp("helpdesk.models")
    Ticket, FollowUp, Queue = models.Ticket, models.FollowUp, models.Queue  # noqa: N806

    _imp("django.core.management").call_command("migrate", verbosity=0, interactive=False)
    user_model.objects.create_superuser(LEAD, "lead@help.example", "bench")
    users = {
        actor.id: user_model.objects.create_user(actor.id, f"{actor.id}@help.example", "bench")
        for actor in kpis.AGENTS
    }
    queues = {group: Queue.objects.create(title=group, slug=group) for group in kpis.GROUPS}
    batch = 2000
    for first in range(0, total, batch):
        tickets: list[Any] = []
        follow_ups: list[tuple[int, Any]] = []
        for index in range(first, min(first + batch, total)):
            state, events = kpis.history(index)
            agent = str(state.assignee_id)  # as of its last event
            solved = state.category.value == "solved"
            tickets.append(
                Ticket(
                    title=state.subject,
                    queue=queues[str(state.group_id)],
                    created=events[0].at,
                    modified=events[-1].at,
                    submitter_email="c1@example.com",
                    assigned_to=users[agent],
                    status=Ticket.RESOLVED_STATUS if solved else Ticket.OPEN_STATUS,
                    priority=3,
                    description="bench",
                )
            )
            for event in events[1:]:
                user = users.get(event.actor.id)
                if isinstance(event, CommentAdded):
                    follow_ups.append(
                        (
                            len(tickets) - 1,
                            FollowUp(
                                date=event.at,
                                title="Comment",
                                comment=event.comment.body,
                                public=event.comment.public,
                                user=user,
                            ),
                        )
                    )
                elif isinstance(event, StatusChanged):
                    follow_ups.append(
                        (
                            len(tickets) - 1,
                            FollowUp(
                                date=event.at,
                                title="Resolved",
                                comment="",
                                public=True,
                                user=user,
                                new_status=Ticket.RESOLVED_STATUS,
                            ),
                        )
                    )
        with transaction.atomic():
            made = Ticket.objects.bulk_create(tickets)
            for at, follow_up in follow_ups:
                follow_up.ticket = made[at]
            FollowUp.objects.bulk_create([f for _, f in follow_ups], batch_size=1000)


def django_reports(path: str) -> dict[str, Any]:
    """django-helpdesk's report index and its eight report pages, each rendered as a lead
    opens it; timed one by one. Then (not timed) the figures both sides answer."""
    _django(path)
    fallback = _imp("django.contrib.messages.storage.fallback").FallbackStorage
    sessions = _imp("django.contrib.sessions.backends.db").SessionStore
    models = _imp("helpdesk.models")
    staff = _imp("helpdesk.views.staff")
    lead = _imp("django.contrib.auth.models").User.objects.get(username=LEAD)
    factory = _imp("django.test").RequestFactory()

    def request(url: str) -> Any:
        made = factory.get(url)
        made.user = lead
        made.session = sessions()
        made._messages = fallback(made)
        return made

    def page(name: str) -> Any:
        if name == "report_index":
            return staff.report_index(request("/reports/"))
        return staff.run_report(request(f"/reports/{name}/"), name)

    out: dict[str, Any] = {"pages": {}}
    all_started, all_cpu = time.perf_counter(), time.process_time()
    for name in ("report_index", *DJANGO_REPORTS):
        started, cpu = time.perf_counter(), time.process_time()
        response = page(name)
        out["pages"][name] = {
            "s": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu,
            "bytes": len(response.content),
        }
        assert response.status_code == 200, (name, response.status_code)
    out["s"], out["cpu_s"] = time.perf_counter() - all_started, time.process_time() - all_cpu
    out["figures"] = {
        "tickets": models.Ticket.objects.count(),
        "resolved": models.Ticket.objects.filter(status=models.Ticket.RESOLVED_STATUS).count(),
        "open_by_group": {
            q.title: q.ticket_set.filter(status__in=[1, 2]).count()
            for q in models.Queue.objects.all()
        },
    }
    out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


# ---------------------------------------------------------------- the run


def _worker(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    found: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return found


def helpkit_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of a helpkit report that django-helpdesk's pages also show."""
    return {
        "tickets": report["tickets"],
        "resolved": report["resolution"]["count"],
        "open_by_group": {row["key"]: row["count"] for row in report["backlog"]["by_group"]},
    }


def run(total: int, folder: str) -> dict[str, Any]:
    """Load ``total`` tickets on both sides, then each side's reports in fresh processes."""
    helpkit_path = os.path.join(folder, f"helpkit-{total}.db")
    django_path = os.path.join(folder, f"django-{total}.db")
    checkpoint = os.path.join(folder, f"helpkit-{total}.projection")
    started = time.perf_counter()
    store = SqliteStore(helpkit_path, synchronous="NORMAL")
    kpis.load(store, total)
    store.close()
    helpkit_load = time.perf_counter() - started
    started = time.perf_counter()
    _worker(["--load-django", django_path, "--total", str(total)])
    django_load_s = time.perf_counter() - started
    found: dict[str, Any] = {
        "tickets": total,
        "load_s": {"helpkit": helpkit_load, "django": django_load_s},
        "size_mib": {
            "helpkit": os.path.getsize(helpkit_path) / 2**20,
            "django": os.path.getsize(django_path) / 2**20,
        },
        "load": [os.getloadavg()[0]],
    }
    found["django"] = _worker(["--django-reports", django_path])
    found["load"].append(os.getloadavg()[0])
    found["full"] = kpis._in_process("full", helpkit_path, checkpoint, total)
    found["load"].append(os.getloadavg()[0])
    found["build"] = kpis._in_process("build", helpkit_path, checkpoint, total)
    found["projection"] = kpis._in_process("projection", helpkit_path, checkpoint, total)
    found["load"].append(os.getloadavg()[0])
    full = found["full"].pop("report")
    assert found["projection"].pop("report") == full, "the projection's report differs"
    mine, theirs = helpkit_figures(full), found["django"].pop("figures")
    assert mine == theirs, (mine, theirs)
    found["figures"] = mine
    return found


def markdown(runs: list[dict[str, Any]], command: str) -> str:
    lines = [
        "# KPI reports beside django-helpdesk's reports",
        "",
        f"`{command}` — the same tickets on both sides (see the bench's docstring: helpkit's",
        "histories of `bench/bench_kpis.py`, ~10 events each; in django-helpdesk one ticket",
        "each, in its group's queue, assigned, with one follow-up per comment and status",
        "change), each in its own SQLite file (WAL + NORMAL), loaded first (not measured).",
        "Each report runs in a fresh process: wall clock, CPU time, peak resident memory",
        "(`ru_maxrss`, interpreter included). Both sides agree on the figures they share",
        "(tickets, tickets resolved, open tickets per queue), checked by the bench.",
        "",
        "| tickets | system | report | time (s) | CPU (s) | peak RSS (MiB) |",
        "|---:|:---|:---|---:|---:|---:|",
    ]
    for found in runs:
        n = f"{found['tickets']:,}"
        dj = found["django"]
        for name, page in dj["pages"].items():
            lines.append(
                f"| {n} | django-helpdesk | page `{name}` | {page['s']:.3f} | "
                f"{page['cpu_s']:.3f} |  |"
            )
        lines.append(
            f"| {n} | django-helpdesk | **all nine report pages** | **{dj['s']:.3f}** | "
            f"{dj['cpu_s']:.3f} | {dj['maxrss_mib']:.0f} |"
        )
        full, build, proj = found["full"], found["build"], found["projection"]
        lines.append(
            f"| {n} | helpkit | **full recomputation** (`desk.kpis`) | **{full['s']:.3f}** | "
            f"{full['cpu_s']:.3f} | {full['maxrss_mib']:.0f} |"
        )
        lines.append(
            f"| {n} | helpkit | projection built from the whole feed (once) | "
            f"{build['s']:.3f} | {build['cpu_s']:.3f} | {build['maxrss_mib']:.0f} |"
        )
        lines.append(
            f"| {n} | helpkit | kept projection: checkpoint loaded | {proj['load_s']:.3f} |  |  |"
        )
        lines.append(
            f"| {n} | helpkit | **kept projection: report** (`desk.kpis(projection=...)`) | "
            f"**{proj['s']:.3f}** | {proj['cpu_s']:.3f} | {proj['maxrss_mib']:.0f} |"
        )
    lines += [
        "",
        "## Ratios (django-helpdesk's time / helpkit's time: above 1, helpkit is faster)",
        "",
        "Wall clock and CPU time; on a busy machine the CPU ratio is the steadier one.",
        "",
        "| tickets | pairing | wall ratio | CPU ratio |",
        "|---:|:---|---:|---:|",
    ]
    for found in runs:
        n = f"{found['tickets']:,}"
        dj, full, proj = found["django"], found["full"], found["projection"]
        pairs = [
            (
                "all django-helpdesk pages vs helpkit's full recomputation (both from the "
                "stored data, nothing kept in advance: **the fair pairing**)",
                f"{dj['s'] / full['s']:.2f}x",
                f"{dj['cpu_s'] / full['cpu_s']:.2f}x",
            ),
            (
                "all django-helpdesk pages vs helpkit's report from a kept projection "
                "(the report only)",
                f"{dj['s'] / proj['s']:.2f}x",
                f"{dj['cpu_s'] / proj['cpu_s']:.2f}x",
            ),
            (
                "all django-helpdesk pages vs helpkit's kept projection, checkpoint load "
                "included (a fresh process)",
                f"{dj['s'] / (proj['s'] + proj['load_s']):.2f}x",
                "not measured",
            ),
        ]
        for label, wall, cpu in pairs:
            lines.append(f"| {n} | {label} | {wall} | {cpu} |")
    lines += ["", "## Setup and machine", ""]
    for found in runs:
        lines.append(
            f"- {found['tickets']:,} tickets: loaded in {found['load_s']['helpkit']:.0f} s "
            f"(helpkit, {found['size_mib']['helpkit']:.0f} MiB file) and "
            f"{found['load_s']['django']:.0f} s (django-helpdesk, "
            f"{found['size_mib']['django']:.0f} MiB file); shared figures "
            f"{json.dumps(found['figures'])}; load average (1 min) before and after the "
            f"parts: {', '.join(f'{x:.1f}' for x in found['load'])}"
        )
    lines += kpis.machine()
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000", help="tickets, comma-separated")
    parser.add_argument("--quick", action="store_true", help="2k only (smoke run), no file")
    parser.add_argument("--output", default=str(RESULTS), help="Markdown file")
    parser.add_argument("--load-django", help=argparse.SUPPRESS)  # a worker: load this file
    parser.add_argument("--django-reports", help=argparse.SUPPRESS)  # a worker: time them
    parser.add_argument("--total", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_django:
        django_load(args.load_django, args.total)
        print(json.dumps({}))
        return 0
    if args.django_reports:
        print(json.dumps(django_reports(args.django_reports)))
        return 0
    sizes = [2_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    runs = []
    folder = tempfile.mkdtemp(prefix="helpkit-reports-peer-")
    try:
        for total in sizes:
            runs.append(run(total, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    command = "python bench/bench_reports_peer.py" + (
        "" if args.quick or args.sizes == "100000" else f" --sizes {args.sizes}"
    )
    text = markdown(runs, command)
    print(text)
    if not args.quick:
        Path(args.output).write_text(text)
    print(f"ran {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
