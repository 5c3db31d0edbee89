"""Blob stores: the built-ins pass the conformance suite, the suite catches broken ones, and
the folder store's own promises (layout, temporary files, URLs) hold."""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import time
from pathlib import Path

import pytest

from helpkit.blobs.addresses import address_of
from helpkit.blobs.folder import FolderBlobStore, folder_blob_store_factory
from helpkit.blobs.memory import MemoryBlobStore, memory_blob_store_factory
from helpkit.errors import (
    BlobCorruptionError,
    HelpkitError,
    NotFoundError,
    StoreError,
    UnknownBackendError,
    ValidationError,
)
from helpkit.hookspecs import RegisterBlobStore, hookimpl
from helpkit.plugins import PluginHost
from helpkit.ports import BlobStore
from helpkit.testing.conformance import BlobStoreCases, BlobStoreFactory, BlobStoreOpener

# ---------------------------------------------------------------- the built-ins conform


class TestMemoryBlobStore(BlobStoreCases):
    @pytest.fixture
    def make_blob_store(self) -> BlobStoreFactory:
        return MemoryBlobStore


def _corrupt(store: BlobStore, sha256: str) -> None:
    assert isinstance(store, FolderBlobStore)
    path = store.path_of(sha256)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    path.write_bytes(bytes(data))


def _reopen_folder(store: BlobStore) -> functools.partial[FolderBlobStore]:
    assert isinstance(store, FolderBlobStore)
    return functools.partial(type(store), store.root)


class TestFolderBlobStore(BlobStoreCases):
    persistent = True

    @pytest.fixture
    def make_blob_store(self, tmp_path: Path) -> BlobStoreFactory:
        counter = itertools.count()
        return lambda: FolderBlobStore(tmp_path / f"blobs{next(counter)}")

    @pytest.fixture
    def blob_store_opener(self) -> BlobStoreOpener:
        return _reopen_folder

    @pytest.fixture
    def corrupt_blob(self) -> object:
        return _corrupt


# ---------------------------------------------------------------- the suite can fail
#
# Deliberately broken blob stores: each must fail a case of the suite.


class _WrongBytesStore(MemoryBlobStore):
    """Gives back the bytes without their last one."""

    def get(self, sha256: str) -> bytes:
        return super().get(sha256)[:-1]


class _HalfWrittenStore(FolderBlobStore):
    """Writes straight to the final name, a piece at a time: a reader sees half a blob."""

    def put(self, data: bytes) -> str:
        address = address_of(data)
        path = self.path_of(address)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            for start in range(0, len(data), 64 * 1024):
                handle.write(data[start : start + 64 * 1024])
                handle.flush()
                time.sleep(0.001)
        return address


class _ForgetfulStore(FolderBlobStore):
    """Wipes its folder whenever it is opened."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        shutil.rmtree(root, ignore_errors=True)
        super().__init__(root)


class _NotIdempotentStore(FolderBlobStore):
    """Refuses to put bytes it already keeps."""

    def put(self, data: bytes) -> str:
        address = address_of(data)
        if self.exists(address):
            raise StoreError(f"blob {address} exists")
        return super().put(data)


class _CorruptionBlindStore(FolderBlobStore):
    """Reads without checking the bytes against their address."""

    def get(self, sha256: str) -> bytes:
        try:
            return self.path_of(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(sha256) from None


class _Persistent(BlobStoreCases):
    persistent = True


def _folders(tmp_path: Path, cls: type[FolderBlobStore]) -> BlobStoreFactory:
    counter = itertools.count()
    return lambda: cls(tmp_path / f"broken{next(counter)}")


@pytest.mark.parametrize("sample", ["text", "binary", "large"])
def test_the_suite_catches_a_store_returning_wrong_bytes(sample: str) -> None:
    suite = BlobStoreCases()
    with pytest.raises(AssertionError, match="other bytes"):
        suite.test_put_returns_the_sha256_and_get_gives_the_bytes_back(_WrongBytesStore(), sample)


def test_the_idempotence_case_catches_wrong_bytes() -> None:
    with pytest.raises(AssertionError):
        BlobStoreCases().test_putting_the_same_bytes_again_is_harmless(_WrongBytesStore())


def test_the_round_trip_property_catches_wrong_bytes() -> None:
    with pytest.raises(AssertionError):
        BlobStoreCases().test_any_bytes_round_trip(_WrongBytesStore)


def test_the_suite_catches_a_half_written_blob(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="before it was whole"):
        BlobStoreCases().test_a_reader_never_sees_half_a_blob(_HalfWrittenStore(tmp_path / "half"))


def test_the_suite_catches_a_store_that_forgets_on_reopening(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="forgotten"):
        _Persistent().test_blobs_survive_reopening(
            _folders(tmp_path, _ForgetfulStore), _reopen_folder
        )


def test_the_suite_catches_a_put_that_is_not_idempotent(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        BlobStoreCases().test_putting_the_same_bytes_again_is_harmless(
            _NotIdempotentStore(tmp_path / "once")
        )
    with pytest.raises((AssertionError, StoreError)):
        BlobStoreCases().test_threads_writing_the_same_bytes_all_succeed(
            _NotIdempotentStore(tmp_path / "threads")
        )


def test_the_process_case_catches_a_put_that_is_not_idempotent(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="a process writing the same bytes failed"):
        _Persistent().test_processes_writing_the_same_bytes_all_succeed(
            _folders(tmp_path, _NotIdempotentStore), _reopen_folder
        )


def test_the_suite_catches_a_store_blind_to_damaged_bytes(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="BlobCorruptionError"):
        _Persistent().test_damaged_bytes_are_detected(
            _CorruptionBlindStore(tmp_path / "blind"), _corrupt
        )


# ---------------------------------------------------------------- the folder store


def test_blobs_are_files_in_a_folder_named_by_their_first_byte(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "b")
    address = store.put(b"hello")
    assert address == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    path = tmp_path / "b" / "2c" / address
    assert path.read_bytes() == b"hello"
    assert sorted(p.name for p in path.parent.iterdir()) == [address]  # no temporary left


def test_the_folder_is_created_by_the_first_put_only(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "later" / "blobs")
    assert not store.exists(address_of(b"x"))
    with pytest.raises(NotFoundError):
        store.get(address_of(b"x"))
    assert store.delete(address_of(b"x")) is False
    assert not (tmp_path / "later").exists()
    store.put(b"x")
    assert store.get(address_of(b"x")) == b"x"


def _sharing(address: str, prefix: int, *, not_prefix: int | None = None) -> bytes:
    """Bytes whose address starts like ``address`` for ``prefix`` hex digits (and, with
    ``not_prefix``, differs from it within that many)."""
    for n in itertools.count():
        data = f"blob {n}".encode()
        found = address_of(data)
        if found == address or found[:prefix] != address[:prefix]:
            continue
        if not_prefix is None or found[:not_prefix] != address[:not_prefix]:
            return data
    raise AssertionError("unreachable")


def test_a_put_flushes_its_folder_and_only_the_folders_above_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import helpkit.blobs.folder as folder_module

    flushed: list[Path] = []
    real = folder_module._fsync_folder

    def spy(path: Path) -> None:
        flushed.append(path)
        real(path)

    monkeypatch.setattr(folder_module, "_fsync_folder", spy)
    root = tmp_path / "b"
    store = FolderBlobStore(root)
    first = store.put(b"first")
    leaf = root / first[:2]
    assert store.path_of(first) == leaf / first  # one level of folders, by the first byte
    # everything was made: the blob's folder, then each new folder's parent, up to tmp_path
    assert flushed == [leaf, root, tmp_path]
    flushed.clear()
    # the first put made every folder of the root (flushed with it): another folder's first
    # blob flushes that folder only
    assert sorted(p.name for p in root.iterdir()) == [f"{n:02x}" for n in range(256)]
    second = store.put(_sharing(first, 0, not_prefix=2))
    assert flushed == [root / second[:2]]
    flushed.clear()
    store.put(_sharing(first, 2))  # the same folder: only it changed
    assert flushed == [leaf]
    flushed.clear()
    store.put(b"first")  # already kept: nothing written, nothing flushed
    assert flushed == []
    unflushed = FolderBlobStore(tmp_path / "c", fsync=False)
    unflushed.put(b"first")
    assert flushed == []
    assert unflushed.get(first) == b"first"


def test_a_put_of_bytes_whose_copy_was_damaged_repairs_it(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "b")
    address = store.put(b"precious bytes")
    _corrupt(store, address)
    with pytest.raises(BlobCorruptionError, match="damaged"):
        store.get(address)
    assert store.put(b"precious bytes") == address
    assert store.get(address) == b"precious bytes"


def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FolderBlobStore(tmp_path / "b")

    def refuse(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StoreError, match="No space left"):
        store.put(b"never kept")
    monkeypatch.undo()
    assert [p for p in (tmp_path / "b").rglob("*") if p.is_file()] == []
    assert not store.exists(address_of(b"never kept"))


def test_old_temporary_files_are_swept(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "b")
    address = store.put(b"kept")
    folder = store.path_of(address).parent
    old, young = folder / ".tmp-old-1", folder / ".tmp-young-2"
    old.write_bytes(b"half")
    young.write_bytes(b"half")
    an_hour_ago = time.time() - 7200
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert store.sweep_temporary(older_than=3600) == 1
    assert not old.exists() and young.exists()
    assert store.get(address) == b"kept"


def test_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="not a folder"):
        FolderBlobStore(tmp_path / "file")
    for bad in ("", "a\x00b", 3):
        with pytest.raises(ValidationError):
            FolderBlobStore(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("store", [MemoryBlobStore(), None])
def test_a_closed_blob_store_refuses_use(store: BlobStore | None, tmp_path: Path) -> None:
    blobs = store if store is not None else FolderBlobStore(tmp_path / "b")
    address = blobs.put(b"x")
    blobs.close()
    for call in (blobs.get, blobs.exists, blobs.delete):
        with pytest.raises(StoreError, match="closed"):
            call(address)
    with pytest.raises(StoreError, match="closed"):
        blobs.put(b"x")


# ---------------------------------------------------------------- URLs and the hook


def test_folder_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = folder_blob_store_factory(f"file://{tmp_path}/a%20b")
    assert absolute.root == tmp_path / "a b"
    assert folder_blob_store_factory(f"file://localhost{tmp_path}/c").root == tmp_path / "c"
    monkeypatch.chdir(tmp_path)
    relative = folder_blob_store_factory("file:rel/blobs?fsync=false")
    assert relative.root == Path("rel/blobs")
    relative.put(b"x")
    assert (tmp_path / "rel" / "blobs").is_dir()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("file://server/share", ValidationError),
        ("file:", ValidationError),
        ("file:///x?fsync=maybe", ValidationError),
        ("file:///x?colour=red", ValidationError),
        ("memory:///x", UnknownBackendError),
    ],
)
def test_bad_folder_urls_are_refused(url: str, error: type[HelpkitError]) -> None:
    with pytest.raises(error):
        folder_blob_store_factory(url)


def test_memory_urls() -> None:
    assert isinstance(memory_blob_store_factory("memory://"), MemoryBlobStore)
    assert isinstance(memory_blob_store_factory("memory:"), MemoryBlobStore)
    with pytest.raises(ValidationError):
        memory_blob_store_factory("memory://somewhere")
    with pytest.raises(UnknownBackendError):
        memory_blob_store_factory("file:///x")


def test_the_host_opens_blob_stores_by_url(tmp_path: Path) -> None:
    host = PluginHost(entry_points=False)
    assert host.blob_store_schemes == ("file", "memory", "sqlite")
    assert isinstance(host.open_blob_store("memory://"), MemoryBlobStore)
    folder = host.open_blob_store(f"file://{tmp_path}/b")
    assert isinstance(folder, FolderBlobStore)
    with pytest.raises(UnknownBackendError, match=r"s3.*known: file, memory, sqlite"):
        host.open_blob_store("s3://bucket")
    with pytest.raises(ValidationError):
        host.open_blob_store(None)  # type: ignore[arg-type]
    builtin = next(info for info in host.plugins() if info.name == "helpkit.builtins")
    assert builtin.blob_stores == ("memory", "file", "sqlite")


class _S3:
    """A plugin serving another scheme, in memory (and a second, broken one)."""

    @hookimpl
    def helpkit_register_blob_stores(self, register: RegisterBlobStore) -> None:
        register("s3", lambda url: MemoryBlobStore())
        register("nothing", lambda url: object())  # type: ignore[arg-type,return-value]
        register("failing", lambda url: 1 / 0)  # type: ignore[arg-type,return-value]


def test_plugins_register_blob_stores_and_bad_ones_are_plugin_errors() -> None:
    from helpkit.errors import DuplicateError, PluginError

    host = PluginHost([_S3()], entry_points=False)
    assert isinstance(host.open_blob_store("s3://bucket/prefix"), MemoryBlobStore)
    with pytest.raises(PluginError, match="not a BlobStore"):
        host.open_blob_store("nothing://")
    with pytest.raises(PluginError, match="ZeroDivisionError"):
        host.open_blob_store("failing://")

    class Twice:
        @hookimpl
        def helpkit_register_blob_stores(self, register: RegisterBlobStore) -> None:
            register("memory", lambda url: MemoryBlobStore())

    with pytest.raises(DuplicateError, match="blob store scheme 'memory'"):
        PluginHost([Twice()], entry_points=False)


# ---------------------------------------------------------------- the command line


def test_the_command_line_lists_blob_stores_and_reads_blobs_from_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from helpkit.cli import main
    from helpkit.cli._config import config_template

    monkeypatch.chdir(tmp_path)
    assert main(["plugins", "--json"]) == 0
    infos = json.loads(capsys.readouterr().out)
    assert any(info["blob_stores"] == ["memory", "file", "sqlite"] for info in infos)
    assert main(["plugins"]) == 0
    assert "blob_stores=memory,file,sqlite" in capsys.readouterr().out

    template = config_template()
    assert "[attachments]" in template
    good = tmp_path / "good.toml"
    good.write_text(f'blobs = "file://{tmp_path}/kept"\n' + template, encoding="utf-8")
    assert main(["--config", str(good), "--store", "sqlite:///desk.db", "init"]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('blobs = "s3://bucket"\n', encoding="utf-8")
    assert main(["--config", str(bad), "--store", "sqlite:///desk.db", "list"]) == 2
    err = capsys.readouterr().err
    assert "no blob store is registered" in err and "Traceback" not in err


def test_a_blob_an_earlier_build_kept_in_two_levels_is_read_and_deleted(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    data = b"kept by an earlier build"
    address = store.put(data)
    legacy = tmp_path / "blobs" / address[:2] / address[2:4] / address
    legacy.parent.mkdir()
    store.path_of(address).rename(legacy)  # where the two-level layout put it
    assert store.exists(address) and store.get(address) == data
    assert store.put(data) == address  # a new put keeps it in today's layout too
    assert store.path_of(address).read_bytes() == data
    assert store.delete(address)  # both copies: the bytes are gone (a redaction relies on it)
    assert not legacy.exists() and not store.exists(address)
    assert not store.delete(address)
