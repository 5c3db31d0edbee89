"""helpkit.ids.new_id: UUIDv7 hex, increasing in a process, unique across threads."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit import ids
from helpkit.ids import new_id


@pytest.fixture(autouse=True)
def _keep_the_generator_state() -> Iterator[None]:
    # Some tests move the generator's clock; later ids in this process must not inherit it.
    saved = ids._last_ms, ids._counter
    yield
    ids._last_ms, ids._counter = saved


def test_an_id_is_a_version_7_uuid_in_hex() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    assert len(value) == 32 and value == value.lower()
    parsed = uuid.UUID(hex=value)
    assert parsed.hex == value
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    # The first 48 bits are the Unix time in milliseconds (later ids may borrow ahead).
    assert before <= int(value[:12], 16) <= after + 1


def test_ids_increase_within_a_millisecond_and_across_them() -> None:
    made = [new_id() for _ in range(20_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_more_than_the_counter_in_one_millisecond_borrows_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = (time.time_ns() // 1_000_000 + 10_000) * 1_000_000  # ahead of earlier ids
    monkeypatch.setattr(time, "time_ns", lambda: frozen)
    made = [new_id() for _ in range(5000)]  # more than 4096 counter values
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    stamps = {int(v[:12], 16) for v in made}
    assert min(stamps) == frozen // 1_000_000
    assert len(stamps) >= 2


def test_a_clock_that_steps_back_does_not_move_ids_back(monkeypatch: pytest.MonkeyPatch) -> None:
    first = new_id()
    monkeypatch.setattr(time, "time_ns", lambda: 0)
    assert new_id() > first


def test_ids_are_unique_across_threads() -> None:
    made: list[str] = []
    guard = threading.Lock()

    def work() -> None:
        mine = [new_id() for _ in range(2000)]
        assert mine == sorted(mine)
        with guard:
            made.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == len(made) == 16_000


@given(st.integers(0, 2**48 - 1))
def test_the_timestamp_field_holds_any_48_bit_time(ms: int) -> None:
    saved = ids._last_ms, ids._counter
    ids._last_ms = 0  # as in a fresh process
    try:
        with mock.patch.object(time, "time_ns", return_value=ms * 1_000_000):
            value = new_id()
    finally:
        ids._last_ms, ids._counter = saved
    assert int(value[:12], 16) == ms
    assert uuid.UUID(hex=value).version == 7


def _new_id_reading_per_id() -> str:
    """new_id as it was before it read random bytes ahead: os.urandom(10) per id."""
    now_ms = time.time_ns() // 1_000_000
    noise = int.from_bytes(os.urandom(10), "big")
    with ids._lock:
        if now_ms > ids._last_ms:
            ids._last_ms = now_ms
            ids._counter = noise >> 62 & 0x7FF
        else:
            ids._counter += 1
            if ids._counter >= ids._COUNTER_LIMIT:
                ids._last_ms += 1
                ids._counter = 0
        ms, counter = ids._last_ms, ids._counter
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | counter << 64
        | 0b10 << 62
        | noise & 0x3FFF_FFFF_FFFF_FFFF
    )
    return f"{value:032x}"


@given(
    seed=st.integers(0, 2**32),
    steps=st.lists(st.integers(0, 3), min_size=1, max_size=700),
)
def test_ids_from_bytes_read_ahead_are_the_ids_read_per_id(seed: int, steps: list[int]) -> None:
    """Given the same stream of random bytes and the same clock, new_id gives the ids the
    reading of ten bytes per id gave (over more than one read-ahead)."""

    pool = random.Random(seed).randbytes(10 * 1024)

    def run(make: Callable[[], str]) -> list[str]:
        read = [0]

        def urandom(n: int) -> bytes:
            read[0] += n
            return pool[read[0] - n : read[0]]

        clock = iter(range(10_000, 10_000 + len(steps)))
        ms = [0]

        ids._forget_noise()
        ids._last_ms, ids._counter = 0, 0

        def time_ns() -> int:
            return ms[0] * 1_000_000

        with (
            mock.patch.object(os, "urandom", urandom),
            mock.patch.object(time, "time_ns", time_ns),
        ):
            made = []
            for step in steps:
                ms[0] = next(clock) if step == 0 else ms[0]  # a new millisecond now and then
                made.append(make())
        ids._forget_noise()
        return made

    assert run(new_id) == run(_new_id_reading_per_id)


def test_a_forked_child_reads_its_own_random_bytes() -> None:
    new_id()  # bytes read ahead in the parent
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(reader)
        os.write(writer, new_id()[-16:].encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    assert child and child != new_id()[-16:]
