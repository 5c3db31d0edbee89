"""Smoke test of bench/bench_email_shapes.py: its messages are the shapes it names (a
multipart/alternative read as its text part, of some 160 and 1,100 lines; a text part with a
48 KB attachment), each with a boundary of its own, and the parser reads them."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

from helpkit.channels.email_in import parse

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_the_shapes_are_what_they_say() -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_email_shapes", BENCH / "bench_email_shapes.py"
    )
    assert spec is not None and spec.loader is not None
    shapes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shapes)
    received = datetime(2026, 12, 6, tzinfo=UTC)
    lines = {}
    for shape in shapes.SHAPES:
        batch = shapes.messages(shape, count=5)
        assert len({raw.split(b"boundary=", 1)[1][:30] for raw in batch}) == 5
        message = parse(batch[0], received_at=received)
        lines[shape] = batch[0].count(b"\n")
        if shape.startswith("alternative"):
            assert not message.attachments
            assert "<p>" not in message.body and len(message.body) > 200
        else:
            (attached,) = message.attachments
            assert (attached.filename, len(attached.data)) == ("report.pdf", 48 * 1024)
    assert 100 < lines[shapes.SHAPES[0]] < 400 < 800 < lines[shapes.SHAPES[1]]
