"""helpkit.ids.new_id: UUIDv7 hex, increasing in a process, unique across threads."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
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
