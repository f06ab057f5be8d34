"""Early syncs: a bulk write hands its data to the disk while it goes on (``log.EARLY_SYNC_BYTES``).

What a user relies on: the content is the same, a failed early sync fails
the commit it belongs to (and the coffer on disk stays as it was), and no
early sync outlives the descriptor it syncs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time

import pytest

from pycoffer_core import Coffer, CofferBrokenError
from pycoffer_core.container import log

EARLY = 64 * 1024
_REAL_FDATASYNC = os.fdatasync


@pytest.fixture(autouse=True)
def small_early_sync(monkeypatch):
    """Start an early sync after every 64 KiB of data, so tests stay short."""
    monkeypatch.setattr(log, "EARLY_SYNC_BYTES", EARLY)


def _syncs_on_other_threads(monkeypatch, behaviour=None) -> list[int]:
    """Record the descriptors synced off the calling thread; ``behaviour`` replaces those syncs."""
    seen: list[int] = []
    real = os.fdatasync
    caller = threading.current_thread()

    def fdatasync(fd):
        if threading.current_thread() is caller:
            return real(fd)
        seen.append(fd)
        return (behaviour or real)(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    return seen


def test_a_bulk_write_syncs_early_on_another_thread_and_reads_back(tmp_path, monkeypatch):
    path = tmp_path / "c.coffer"
    data = os.urandom(1 << 20)
    early = _syncs_on_other_threads(monkeypatch)
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("big", data)
    assert early, "a 1 MiB write with a 64 KiB threshold started no early sync"
    with Coffer.open(path, "r", type="null") as coffer:
        coffer.verify()
        assert coffer.read("big") == data


def test_small_commits_never_sync_early(tmp_path, monkeypatch):
    early = _syncs_on_other_threads(monkeypatch)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null", auto_flush=True) as coffer:
        for number in range(20):
            coffer.write(f"m{number}", os.urandom(EARLY // 4))
    assert early == []


@pytest.mark.parametrize("type_name", ["null", "store"])
def test_a_failed_early_sync_fails_the_commit_and_leaves_the_coffer_as_it_was(tmp_path, monkeypatch, type_name):
    path = tmp_path / "c.coffer"
    keys = Coffer.gen_params(type_name)
    with Coffer.open(path, "w", type=type_name, **keys) as coffer:
        coffer.write("kept", b"as before")

    def failing(fd):
        raise OSError(errno.EIO, "injected EIO in an early sync")

    early = _syncs_on_other_threads(monkeypatch, failing)
    coffer = Coffer.open(path, "a", type=type_name, **keys)
    coffer.write("big", os.urandom(1 << 20))
    with pytest.raises(CofferBrokenError, match="injected EIO"):
        coffer.flush()
    assert early
    with pytest.raises(CofferBrokenError):
        coffer.write("more", b"refused: the object is broken")
    coffer.close()
    monkeypatch.undo()
    with Coffer.open(path, "r", type=type_name, **keys) as coffer:
        coffer.verify()
        # The commit record was never written: the coffer is as it was.
        assert [m.name for m in coffer.getmembers()] == ["kept"]
        assert coffer.read("kept") == b"as before"


def test_no_early_sync_outlives_its_descriptor(tmp_path, monkeypatch):
    """Dropping a half-written member truncates and closes the file while a slow sync runs."""
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("kept", b"as before")
    finished: list[OSError | None] = []
    real = os.fdatasync

    def slow(fd):
        time.sleep(0.2)
        try:
            real(fd)
        except OSError as exc:  # EBADF: synced after the descriptor was closed
            finished.append(exc)
        else:
            finished.append(None)

    early = _syncs_on_other_threads(monkeypatch, slow)
    with pytest.raises(RuntimeError, match="abandon"):
        with Coffer.open(path, "a", type="null") as coffer:
            with coffer.file("big", "wb") as member:
                member.write(os.urandom(3 << 20))  # more than the chunks sealed ahead
                raise RuntimeError("abandon the member")
    # Closing waited for every early sync, which ran on the open descriptor.
    assert early and finished == [None] * len(early)
    with Coffer.open(path, "r", type="null") as coffer:
        assert [m.name for m in coffer.getmembers()] == ["kept"]


def test_a_thread_that_cannot_start_costs_only_the_early_sync(tmp_path, monkeypatch):
    path = tmp_path / "c.coffer"
    real_start = threading.Thread.start

    def start(thread):
        if thread.name == "pycoffer-early-sync":
            raise RuntimeError("can't start new thread")
        return real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    data = os.urandom(1 << 20)
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("big", data)
        coffer.flush()
        coffer.write("small", b"after")
    with Coffer.open(path, "r", type="null") as coffer:
        assert coffer.read("big") == data
        assert coffer.read("small") == b"after"


def test_an_early_sync_error_fails_no_commit_after_a_compaction(tmp_path, monkeypatch):
    """It concerned records of a dropped member, which a compaction does not carry over."""
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("kept", b"as before")

    def failing(fd):
        raise OSError(errno.EIO, "injected EIO in an early sync")

    early = _syncs_on_other_threads(monkeypatch, failing)
    with Coffer.open(path, "a", type="null") as coffer:
        with pytest.raises(RuntimeError, match="abandon"):
            with coffer.file("dropped", "wb") as member:
                member.write(os.urandom(3 << 20))
                raise RuntimeError("abandon the member")
        assert early
        monkeypatch.setattr(os, "fdatasync", _REAL_FDATASYNC)  # the disk recovers
        coffer.compact()
        coffer.write("new", b"committed")
        coffer.flush()
    with Coffer.open(path, "r", type="null") as coffer:
        assert coffer.read("new") == b"committed"
        assert coffer.read("kept") == b"as before"


def test_an_early_sync_error_waits_for_a_key_slot_change_and_breaks_it(tmp_path, monkeypatch):
    """Key slots are never written while an early sync's fate is unknown."""
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="store", password="old") as coffer:
        coffer.write("kept", b"as before")

    def failing(fd):
        raise OSError(errno.EIO, "injected EIO in an early sync")

    _syncs_on_other_threads(monkeypatch, failing)
    coffer = Coffer.open(path, "a", type="store", password="old")
    with contextlib.ExitStack() as stack:
        member = stack.enter_context(coffer.file("pending", "wb"))
        member.write(os.urandom(3 << 20))  # still open: its records are not committed
        with pytest.raises(CofferBrokenError, match="injected EIO"):
            coffer.change_password("old", "new")
        stack.pop_all()  # the writer is refused now, like every change
    coffer.close()
    monkeypatch.undo()
    with Coffer.open(path, "r", type="store", password="old") as coffer:
        assert [m.name for m in coffer.getmembers()] == ["kept"]


def test_a_file_that_shrank_syncs_early_again(tmp_path, monkeypatch):
    """After a compaction, bulk writes start early syncs as in any other file."""
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("big", os.urandom(2 << 20))
        coffer.flush()
        coffer.delete("big")
        coffer.flush()
        coffer.compact()
        early = _syncs_on_other_threads(monkeypatch)
        coffer.write("again", os.urandom(1 << 20))
        coffer.flush()
    assert early
