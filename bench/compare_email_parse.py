"""CPU of ``helpkit.channels.email_in.parse`` per message: another tree's against this one's,
side by side in one process.

``git archive main src | tar -x -C /tmp/parse-before`` then
``python bench/compare_email_parse.py /tmp/parse-before/src --rounds 9``: writes the email
bench's corpus (``bench/email_corpus.py``, 2,000 messages, seed 1), loads ``parse`` from both
trees (each with its own copy of the ``helpkit`` modules), parses every file with each once,
to warm them and to check that they give equal messages, then runs the rounds, the two trees
taking turns in alternating order, each parse timed on its own with ``time.process_time``.
Prints the median and the minimum of each tree's mean per message over the rounds. Nothing is
asserted but the equal outputs: it is a measuring tool.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import email_corpus

_THIS_TREE = str(Path(__file__).resolve().parent.parent / "src")
_RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)


def _parse_of(src: str) -> Callable[..., object]:
    """``parse`` as the tree at ``src`` defines it: the ``helpkit`` modules loaded so far are
    forgotten first, so each tree's functions keep their own modules (and caches)."""
    for name in [m for m in sys.modules if m == "helpkit" or m.startswith("helpkit.")]:
        del sys.modules[name]
    sys.path.insert(0, src)
    try:
        module = importlib.import_module("helpkit.channels.email_in")
    finally:
        sys.path.remove(src)
    parse: Callable[..., object] = module.parse
    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the other tree's src folder (holding helpkit/)")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    trees = {"before": _parse_of(args.before), "this tree": _parse_of(_THIS_TREE)}
    with tempfile.TemporaryDirectory(prefix="hk-compare-parse-") as tmp:
        email_corpus.write_corpus(Path(tmp), args.messages, args.seed)
        raws = [p.read_bytes() for p in sorted(Path(tmp).glob("*.eml"))]
    for raw in raws:
        outputs = {repr(parse(raw, received_at=_RECEIVED)) for parse in trees.values()}
        if len(outputs) != 1:
            raise SystemExit(f"the trees parse a message differently: {raw[:120]!r}")
    means: dict[str, list[float]] = {name: [] for name in trees}
    clock = time.process_time
    for index in range(args.rounds):
        turns = list(trees.items())
        if index % 2:
            turns.reverse()
        for name, parse in turns:
            total = 0.0
            for raw in raws:
                start = clock()
                parse(raw, received_at=_RECEIVED)
                total += clock() - start
            means[name].append(total / len(raws) * 1000)
    print(f"{len(raws)} messages, {args.rounds} rounds, CPU ms per message of parse")
    for name, values in means.items():
        print(f"{name:>9}: median {statistics.median(values):.4f}  min {min(values):.4f}")
    before, after = (statistics.median(v) for v in means.values())
    low_before, low_after = (min(v) for v in means.values())
    print(
        f"change: median {100 * (after - before) / before:+.1f}%, "
        f"min {100 * (low_after - low_before) / low_before:+.1f}%"
    )


if __name__ == "__main__":
    main()
