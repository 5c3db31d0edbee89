"""CPU of ``helpkit.channels.email_in.parse`` on message shapes the bench corpus does not hold.

``bench/email_corpus.py`` (which stays as it is: the results compare against it) has no long
text or HTML multipart. This writes 200 messages of each shape here, each with a boundary of
its own (so nothing is cached across messages, as in a real mailbox), and parses each once in
a fresh worker process: ``multipart/alternative`` with quoted-printable text and HTML parts of
50 and of 400 paragraphs (some 160 and 1,100 lines), and ``multipart/mixed`` with a text part
and a 48 KB base64 attachment. ``--before SRC`` also runs the helpkit of that source tree (the
folder holding its ``helpkit`` package), the two alternated over ``--rounds`` rounds. CPU is
``time.process_time``, milliseconds per message; it prints Markdown. Run ``python
bench/bench_email_shapes.py [--before /tmp/x/src] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import quopri
import random
import subprocess
import sys
import time
from datetime import UTC, datetime

SHAPES = ("alternative, 50 paragraphs", "alternative, 400 paragraphs", "mixed, 48 KB base64")
WORDS = ("the", "printer", "on", "floor", "three", "jams", "again", "after", "update", "help")


def _paragraph(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14)))


def _qp(text: str) -> str:
    return quopri.encodestring(text.encode("utf-8")).decode("ascii")


def messages(shape: str, count: int = 200, seed: int = 1) -> list[bytes]:
    """``count`` messages of ``shape``, each with its own boundary."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        boundary = f"b{n}x{rng.getrandbits(32):08x}"
        head = (
            f"From: Ana <ana@acme.example>\nTo: support@help.example\nSubject: Printer\n"
            f"Message-ID: <{n}.{boundary}@acme.example>\nMIME-Version: 1.0\n"
        )
        if shape.startswith("alternative"):
            paragraphs = [_paragraph(rng) for _ in range(int(shape.split()[1]))]
            html = "<html><body>" + "".join(f"<p>{p}</p>\n" for p in paragraphs) + "</body></html>"
            body = (
                f'Content-Type: multipart/alternative; boundary="{boundary}"\n\n'
                f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n"
                f"Content-Transfer-Encoding: quoted-printable\n\n{_qp(chr(10).join(paragraphs))}\n"
                f"--{boundary}\nContent-Type: text/html; charset=utf-8\n"
                f"Content-Transfer-Encoding: quoted-printable\n\n{_qp(html)}\n--{boundary}--\n"
            )
        else:
            data = base64.encodebytes(rng.randbytes(48 * 1024)).decode("ascii")
            body = (
                f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n'
                f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n"
                f"{_paragraph(rng)}\n--{boundary}\nContent-Type: application/pdf; "
                f'name="report.pdf"\nContent-Transfer-Encoding: base64\n'
                f'Content-Disposition: attachment; filename="report.pdf"\n\n{data}--{boundary}--\n'
            )
        out.append((head + body).replace("\n", "\r\n").encode("ascii"))
    return out


def worker() -> None:
    from helpkit.channels.email_in import parse

    received = datetime.now(UTC)
    found = {}
    for shape in SHAPES:
        batch = messages(shape)
        began = time.process_time()
        for raw in batch:
            parse(raw, received_at=received)
        found[shape] = (time.process_time() - began) / len(batch) * 1000
    print(json.dumps(found))


def run(source: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, __file__, "--worker"], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="also run the helpkit of this source tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    variants = [("this tree", None)] + ([("before", args.before)] if args.before else [])
    rows: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    for turn in range(args.rounds):
        for name, source in variants if turn % 2 == 0 else variants[::-1]:
            rows[name].append(run(source))
    load = os.getloadavg()[0]
    print(f"CPU ms per message, one parse each, rounds 1 to {args.rounds} (load {load:.1f})\n")
    print("| shape | " + " | ".join(name for name, _ in variants) + " |")
    print("|---|" + "---:|" * len(variants))
    for shape in SHAPES:
        cells = [" / ".join(f"{r[shape]:.3f}" for r in rows[name]) for name, _ in variants]
        print(f"| {shape} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
