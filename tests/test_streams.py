"""crypt_open(..., "wb"): a sealed file appears whole when closed, or not at all."""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path

import pytest

from pycoffer_core import ClosedCofferError, Coffer, CofferNotFoundError, UnsafePathError
from pycoffer_core import streams


@pytest.fixture
def coffer(tmp_path):
    path = tmp_path / "c.coffer"
    keys = Coffer.gen_params("store")
    with Coffer.open(path, "w", type="store", **keys) as made:
        made.write("kept", b"kept")
    with Coffer.open(path, "r", type="store", **keys) as opened:
        yield opened


def _leftovers(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.endswith(".pycoffer-part")]


def test_a_with_block_that_raises_leaves_the_target_as_it_was(coffer, tmp_path):
    target = tmp_path / "sealed.bin"
    target.write_bytes(b"the previous file")
    with pytest.raises(RuntimeError, match="source failed"):
        with coffer.crypt_open(target, "wb") as sealed:
            sealed.write(os.urandom(600_000))  # two chunks sealed and written already
            raise RuntimeError("source failed half-way")
    assert target.read_bytes() == b"the previous file"
    assert _leftovers(tmp_path) == []


def test_a_writer_dropped_unclosed_publishes_nothing(coffer, tmp_path):
    target = tmp_path / "sealed.bin"
    sealed = coffer.crypt_open(target, "wb")
    sealed.write(os.urandom(600_000))
    del sealed
    gc.collect()
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_a_sealed_file_appears_whole_when_closed(coffer, tmp_path):
    target = tmp_path / "sealed.bin"
    data = os.urandom(700_000)
    with coffer.crypt_open(target, "wb") as sealed:
        sealed.write(data)
        assert not target.exists()  # not before it is whole
    assert (target.stat().st_mode & 0o777) == 0o600
    with coffer.crypt_open(target, "rb") as opened:
        assert opened.read() == data
    assert _leftovers(tmp_path) == []


def test_a_link_at_the_target_is_replaced_not_written_through(coffer, tmp_path):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"not to be touched")
    target = tmp_path / "sealed.bin"
    target.symlink_to(elsewhere)
    with coffer.crypt_open(target, "wb") as sealed:
        sealed.write(b"secret")
    assert elsewhere.read_bytes() == b"not to be touched"
    assert not target.is_symlink()


@pytest.mark.parametrize("own", ["c.coffer", "c.coffer.lock"])
def test_the_coffer_and_its_lock_are_never_replaced(coffer, tmp_path, own):
    before = (tmp_path / own).read_bytes()
    with pytest.raises(UnsafePathError):
        coffer.crypt_open(tmp_path / own, "wb")
    assert (tmp_path / own).read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_missing_files_and_folders_raise_coffer_not_found(coffer, tmp_path):
    with pytest.raises(CofferNotFoundError):
        coffer.crypt_open(tmp_path / "no-folder" / "sealed.bin", "wb")
    with pytest.raises(CofferNotFoundError):
        coffer.crypt_open(tmp_path / "no-such-file", "rb")


def test_a_large_write_holds_about_one_chunk_of_its_own(coffer, tmp_path):
    data = os.urandom(16 * streams.CHUNK_SIZE)
    with coffer.crypt_open(tmp_path / "sealed.bin", "wb") as sealed:
        tracemalloc.start()
        try:
            sealed.write(data)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 4 * streams.CHUNK_SIZE, peak


def test_a_writer_dropped_inside_a_reference_cycle_publishes_nothing(coffer, tmp_path):
    target = tmp_path / "sealed.bin"
    target.write_bytes(b"the previous file")

    def write_then_fail():
        sealed = coffer.crypt_open(target, "wb")
        sealed.write(os.urandom(700_000))
        sealed.write(b"still buffered")
        cycle = {"writer": sealed}
        cycle["self"] = cycle
        raise RuntimeError("the producer failed")

    gc.disable()
    try:
        with pytest.raises(RuntimeError):
            write_then_fail()
        gc.collect()
    finally:
        gc.enable()
    assert target.read_bytes() == b"the previous file"
    assert _leftovers(tmp_path) == []


def test_after_a_failed_write_later_writes_and_close_say_nothing_was_written(coffer, tmp_path, monkeypatch):
    target = tmp_path / "sealed.bin"
    sealed = coffer.crypt_open(target, "wb")
    real_write = os.write

    def disk_full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError):
        sealed.write(os.urandom(3 * streams.CHUNK_SIZE))
    monkeypatch.setattr(os, "write", real_write)
    with pytest.raises(ClosedCofferError):
        sealed.write(os.urandom(2 * streams.CHUNK_SIZE))  # past the buffer, to the sealing writer
    with pytest.raises(ClosedCofferError, match="not written"):
        sealed.close()
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_the_coffer_made_at_the_target_meanwhile_is_not_replaced(tmp_path):
    keys = Coffer.gen_params("store")
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="store", **keys) as coffer:
        sealed = coffer.crypt_open(path, "wb")  # nothing is at the path yet
        sealed.write(b"secret")
        coffer.flush()  # the coffer's first commit puts it there
        with pytest.raises(UnsafePathError):
            sealed.close()
    with Coffer.open(path, "r", type="store", **keys):
        pass


def test_a_path_given_as_bytes_works(coffer, tmp_path):
    target = os.fsencode(tmp_path / "sealed.bin")
    with coffer.crypt_open(target, "wb") as sealed:
        sealed.write(b"secret")
    with coffer.crypt_open(target, "rb") as opened:
        assert opened.read() == b"secret"


@pytest.mark.parametrize("raised", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_inside_a_with_block_raises_as_it_failed(coffer, tmp_path, monkeypatch, raised):
    # The with block's own exception goes on, not a ClosedCofferError in its place.
    def failing_write(fd, data):
        raise raised

    target = tmp_path / "sealed.bin"
    with pytest.raises(type(raised)) as caught:
        with coffer.crypt_open(target, "wb") as sealed:
            monkeypatch.setattr(os, "write", failing_write)
            sealed.write(os.urandom(3 * streams.CHUNK_SIZE))
    monkeypatch.undo()
    assert caught.value is raised
    assert not target.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_writer_dropped_after_a_failed_write_goes_quietly_and_at_once(coffer, tmp_path, monkeypatch):
    target = tmp_path / "sealed.bin"
    sealed = coffer.crypt_open(target, "wb")

    def disk_full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError):
        sealed.write(os.urandom(3 * streams.CHUNK_SIZE))
    monkeypatch.undo()
    del sealed  # no reference cycle keeps it: freed here, without a garbage collection
    assert _leftovers(tmp_path) == []
    assert not target.exists()
