"""The blob store conformance suite: what every :class:`helpkit.ports.BlobStore` must do.

Subclass :class:`BlobStoreCases` in your test suite and supply ``make_blob_store``, a fixture
returning a zero-argument callable that creates a fresh, empty blob store::

    import functools
    import itertools

    import pytest
    from helpkit.testing.conformance import BlobStoreCases

    class TestMyBlobStore(BlobStoreCases):
        persistent = True

        @pytest.fixture
        def make_blob_store(self, tmp_path):
            counter = itertools.count()
            return lambda: MyBlobStore(tmp_path / f"blobs{next(counter)}")

        @pytest.fixture
        def blob_store_opener(self):
            # A picklable callable opening the same data again, here or in another process.
            return lambda store: functools.partial(MyBlobStore, store.root)

        @pytest.fixture
        def corrupt_blob(self):
            # Damage the kept copy of one blob, as a failing disk would.
            def corrupt(store, sha256):
                path = store.path_of(sha256)
                data = bytearray(path.read_bytes())
                data[0] ^= 0xFF
                path.write_bytes(bytes(data))
            return corrupt

A store whose blobs outlive the object (``persistent = True``) also gets the cases that
need those two fixtures: blobs survive reopening, damaged bytes are detected on read
(:class:`~helpkit.errors.BlobCorruptionError`), and several processes writing the same
bytes at once all succeed. They are skipped, with the reason shown, otherwise.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import random
import threading
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit.errors import BlobCorruptionError, NotFoundError, ValidationError
from helpkit.ports import BlobStore, missing_members

__all__ = [
    "BlobStoreCases",
    "BlobStoreFactory",
    "BlobStoreOpener",
    "CorruptBlob",
]

BlobStoreFactory = Callable[[], BlobStore]
"""Creates a fresh, empty blob store each time it is called."""
BlobStoreOpener = Callable[[BlobStore], Callable[[], BlobStore]]
"""Given a blob store, a picklable zero-argument callable that opens the same data again (in
this process or another): persistent blob stores only."""
CorruptBlob = Callable[[BlobStore, str], None]
"""Damages the kept copy of the blob with that address (persistent blob stores only)."""

_SAMPLES = {
    "empty": b"",
    "one byte": b"\x00",
    "text": "Grüße, 世界\n".encode(),
    "binary": bytes(range(256)) * 4,
    "large": random.Random(7).randbytes(3 * 1024 * 1024 + 17),
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _data(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _write_in_child(opener: Callable[[], BlobStore], seed: int, size: int, rounds: int) -> str:
    """In another process: put the same bytes ``rounds`` times, reading them back each time.
    What went wrong, or ``""``."""
    data = _data(seed, size)
    expected = _sha256(data)
    try:
        store = opener()
        try:
            for _ in range(rounds):
                address = store.put(data)
                if address != expected:
                    return f"put returned {address!r}, not {expected}"
                if store.get(expected) != data:
                    return "get returned other bytes"
        finally:
            store.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


class BlobStoreCases:
    """The behaviour every blob store must show. Subclass it as ``TestXxx`` and supply
    ``make_blob_store``; for a store whose blobs outlive it, set ``persistent = True`` and
    supply ``blob_store_opener`` and ``corrupt_blob`` too (see the module's docstring).

    ``thread_safe = False`` skips the thread cases (for a store an object of which must not
    be shared between threads).
    """

    persistent: ClassVar[bool] = False
    thread_safe: ClassVar[bool] = True

    # ------------------------------------------------------------ fixtures

    @pytest.fixture
    def make_blob_store(self) -> BlobStoreFactory:
        """Override: return a zero-argument callable creating a fresh, empty blob store."""
        pytest.fail(
            f"{type(self).__name__} must define a `make_blob_store` fixture returning a "
            "zero-argument callable that creates a fresh, empty blob store"
        )

    @pytest.fixture
    def blob_store_opener(self) -> BlobStoreOpener:
        """Override for persistent blob stores (see :data:`BlobStoreOpener`)."""

        def opener(store: BlobStore) -> Callable[[], BlobStore]:
            pytest.fail(
                f"{type(self).__name__} is persistent but defines no `blob_store_opener` "
                "fixture returning a callable (store) -> picklable opener of the same data"
            )

        return opener

    @pytest.fixture
    def corrupt_blob(self) -> CorruptBlob:
        """Override for persistent blob stores (see :data:`CorruptBlob`)."""

        def corrupt(store: BlobStore, sha256: str) -> None:
            pytest.fail(
                f"{type(self).__name__} is persistent but defines no `corrupt_blob` fixture "
                "returning a callable (store, sha256) that damages the kept bytes"
            )

        return corrupt

    @pytest.fixture
    def blob_store(self, make_blob_store: BlobStoreFactory) -> Iterator[BlobStore]:
        """A fresh blob store, closed after the test."""
        made = make_blob_store()
        try:
            yield made
        finally:
            made.close()

    def _persistent_only(self) -> None:
        if not self.persistent:
            pytest.skip("the blob store is not persistent (set persistent = True if it is)")

    # ------------------------------------------------------------ the protocol

    def test_satisfies_the_blob_store_protocol(self, blob_store: BlobStore) -> None:
        assert missing_members(blob_store, BlobStore) == ()

    @pytest.mark.parametrize("sample", sorted(_SAMPLES))
    def test_put_returns_the_sha256_and_get_gives_the_bytes_back(
        self, blob_store: BlobStore, sample: str
    ) -> None:
        data = _SAMPLES[sample]
        address = blob_store.put(data)
        assert address == _sha256(data), "put must return the SHA-256 of the bytes, in hex"
        assert blob_store.exists(address)
        back = blob_store.get(address)
        assert type(back) is bytes
        assert back == data, f"get returned other bytes than were put ({sample})"

    def test_any_bytes_round_trip(self, make_blob_store: BlobStoreFactory) -> None:
        store = make_blob_store()
        try:

            @settings(
                max_examples=60,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(st.lists(st.binary(max_size=2048), min_size=1, max_size=5))
            def round_trip(datas: list[bytes]) -> None:
                addresses = [store.put(data) for data in datas]
                assert addresses == [_sha256(data) for data in datas]
                for address, data in zip(addresses, datas, strict=True):
                    assert store.get(address) == data

            round_trip()
        finally:
            store.close()

    def test_putting_the_same_bytes_again_is_harmless(self, blob_store: BlobStore) -> None:
        data = b"the same bytes, twice"
        first = blob_store.put(data)
        second = blob_store.put(data)
        assert first == second == _sha256(data)
        assert blob_store.get(first) == data
        # Kept once: one delete forgets them.
        assert blob_store.delete(first) is True
        assert not blob_store.exists(first)

    def test_distinct_bytes_are_kept_apart(self, blob_store: BlobStore) -> None:
        one, other = b"one", b"other"
        a, b = blob_store.put(one), blob_store.put(other)
        assert a != b
        assert blob_store.get(a) == one
        assert blob_store.get(b) == other
        assert blob_store.delete(a)
        assert blob_store.get(b) == other

    def test_exists_and_delete(self, blob_store: BlobStore) -> None:
        data = b"to be deleted"
        address = _sha256(data)
        assert blob_store.exists(address) is False
        assert blob_store.delete(address) is False
        blob_store.put(data)
        assert blob_store.exists(address) is True
        assert blob_store.delete(address) is True
        assert blob_store.exists(address) is False
        assert blob_store.delete(address) is False
        with pytest.raises(NotFoundError):
            blob_store.get(address)
        assert blob_store.put(data) == address  # put again after a delete
        assert blob_store.get(address) == data

    def test_a_missing_blob_is_not_found(self, blob_store: BlobStore) -> None:
        with pytest.raises(NotFoundError) as info:
            blob_store.get(_sha256(b"never put"))
        assert isinstance(info.value, LookupError)

    @pytest.mark.parametrize(
        "bad",
        [
            "",
            "abc",
            "A" * 64,
            "g" * 64,
            "0" * 63,
            "0" * 65,
            "../" + "0" * 61,
            "0" * 62 + "/x",
            None,
            64,
        ],
    )
    def test_malformed_addresses_are_refused(self, blob_store: BlobStore, bad: object) -> None:
        for call in (blob_store.get, blob_store.exists, blob_store.delete):
            with pytest.raises(ValidationError):
                call(bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", ["text", None, 3])
    def test_data_that_is_not_bytes_is_refused(self, blob_store: BlobStore, bad: object) -> None:
        with pytest.raises(ValidationError):
            blob_store.put(bad)  # type: ignore[arg-type]

    # ------------------------------------------------------------ concurrency

    def test_threads_writing_the_same_bytes_all_succeed(self, blob_store: BlobStore) -> None:
        if not self.thread_safe:
            pytest.skip("the blob store is not thread-safe (thread_safe = False)")
        data = _data(1, 512 * 1024)
        expected = _sha256(data)
        start = threading.Barrier(6)

        def write() -> str:
            start.wait()
            for _ in range(5):
                address = blob_store.put(data)
                assert address == expected
                assert blob_store.get(address) == data
            return address

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = [pool.submit(write) for _ in range(6)]
            assert [r.result(timeout=120) for r in results] == [expected] * 6
        assert blob_store.get(expected) == data

    def test_a_reader_never_sees_half_a_blob(self, blob_store: BlobStore) -> None:
        if not self.thread_safe:
            pytest.skip("the blob store is not thread-safe (thread_safe = False)")
        datas = [_data(seed, 2 * 1024 * 1024) for seed in range(10, 14)]
        addresses = [_sha256(data) for data in datas]
        done = threading.Event()
        seen: list[str] = []
        wrong: list[str] = []

        def read() -> None:
            while not done.is_set():
                for address, data in zip(addresses, datas, strict=True):
                    if address in seen or not blob_store.exists(address):
                        continue
                    try:
                        back = blob_store.get(address)
                    except Exception as exc:
                        wrong.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if back != data:
                        wrong.append(f"{len(back)} bytes of {len(data)}")
                    seen.append(address)

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for data in datas:
                blob_store.put(data)
        finally:
            done.set()
            reader.join(timeout=120)
        assert not wrong, f"a reader saw a blob before it was whole: {wrong[:3]}"

    def test_processes_writing_the_same_bytes_all_succeed(
        self, make_blob_store: BlobStoreFactory, blob_store_opener: BlobStoreOpener
    ) -> None:
        self._persistent_only()
        store = make_blob_store()
        try:
            opener = blob_store_opener(store)
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(3, mp_context=context) as pool:
                results = [
                    pool.submit(_write_in_child, opener, 3, 1024 * 1024, 8) for _ in range(3)
                ]
                problems = [r.result(timeout=300) for r in results]
            assert problems == ["", "", ""], f"a process writing the same bytes failed: {problems}"
            assert store.get(_sha256(_data(3, 1024 * 1024))) == _data(3, 1024 * 1024)
        finally:
            store.close()

    # ------------------------------------------------------------ persistence

    def test_blobs_survive_reopening(
        self, make_blob_store: BlobStoreFactory, blob_store_opener: BlobStoreOpener
    ) -> None:
        self._persistent_only()
        store = make_blob_store()
        opener = blob_store_opener(store)
        try:
            addresses = {store.put(data): data for data in _SAMPLES.values()}
            gone = store.put(b"deleted before reopening")
            store.delete(gone)
        finally:
            store.close()
        reopened = opener()
        try:
            for address, data in addresses.items():
                assert reopened.exists(address), "a blob was forgotten when the store reopened"
                assert reopened.get(address) == data
            assert not reopened.exists(gone), "a deleted blob came back when the store reopened"
        finally:
            reopened.close()

    def test_damaged_bytes_are_detected(
        self, blob_store: BlobStore, corrupt_blob: CorruptBlob
    ) -> None:
        self._persistent_only()
        data = _SAMPLES["binary"]
        address = blob_store.put(data)
        corrupt_blob(blob_store, address)
        with pytest.raises(BlobCorruptionError) as info:
            blob_store.get(address)
        assert info.value.sha256 == address
