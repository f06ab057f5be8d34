"""The runway: synced zeros a writer keeps ahead of its small commits (``log.RUNWAY``).

What a user relies on: commits land on space already allocated (so each
costs one data-only sync), the zeros never show as content, a live coffer
opens without a scan, and a closed one ends at its last record.
"""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from pycoffer_core import Coffer
from pycoffer_core.container import log


def _zero_tail(path) -> int:
    data = path.read_bytes()
    return len(data) - len(data.rstrip(b"\x00"))


def test_small_commits_overwrite_the_runway_instead_of_growing_the_file(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        coffer.write("first", os.urandom(2048))
        coffer.write("second", os.urandom(2048))
        size = path.stat().st_size
        assert _zero_tail(path) >= log.RUNWAY // 2
        for n in range(20):
            coffer.write(f"secret/{n}", os.urandom(2048))
        assert path.stat().st_size == size  # 20 commits, no allocation
        assert coffer.stats()["file_size"] < size


def test_a_closed_coffer_ends_at_its_last_record(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        for n in range(5):
            coffer.write(f"secret/{n}", os.urandom(2048))
        committed = coffer.stats()["file_size"]
    assert path.stat().st_size == committed
    assert _zero_tail(path) == 0


def test_a_live_coffer_opens_from_its_end_without_a_scan(tmp_path, monkeypatch):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=True, lock_type="w") as writer:
        for n in range(5):
            writer.write(f"secret/{n}", bytes([n]) * 2048)
        assert _zero_tail(path) > 0
        scans = []
        real_scan = log.LogContainer._scan_for_last_commit
        monkeypatch.setattr(log.LogContainer, "_scan_for_last_commit", lambda self, size: scans.append(size) or real_scan(self, size))
        with Coffer.open(path, "r", type="null", lock_type="w") as reader:
            assert [i.name for i in reader.getmembers()] == [f"secret/{n}" for n in range(5)]
            assert reader.read("secret/3") == b"\x03" * 2048
            reader.verify()
        assert scans == []


def test_a_writer_killed_with_its_runway_leaves_a_coffer_that_opens_and_trims_it(tmp_path):
    path = tmp_path / "c.coffer"
    copy = tmp_path / "killed.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        for n in range(3):
            coffer.write(f"secret/{n}", os.urandom(2048))
        shutil.copyfile(path, copy)  # the file as a SIGKILL would leave it
        truth = {n: coffer.read(f"secret/{n}") for n in range(3)}
    assert _zero_tail(copy) > 0
    with Coffer.open(copy, "r", type="null") as reader:
        assert {n: reader.read(f"secret/{n}") for n in range(3)} == truth
    with Coffer.open(copy, "a", type="null") as writer:
        writer.write("after", b"more")
    assert _zero_tail(copy) == 0
    with Coffer.open(copy, "r", type="null") as reader:
        reader.verify()
        assert reader.read("after") == b"more"


def _all_zeros(data) -> bool:
    data = bytes(data)
    return len(data) >= log.RUNWAY // 2 and data.count(0) == len(data)


@pytest.fixture
def zero_writes(monkeypatch) -> list[bool]:
    """For each pwrite from now on: whether it wrote a runway's zeros."""
    written: list[bool] = []
    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: written.append(_all_zeros(data)) or real(fd, data, offset))
    return written


def test_a_session_of_one_change_writes_no_runway(tmp_path, request):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a", b"1")
    written = request.getfixturevalue("zero_writes")
    with Coffer.open(path, "a", type="null", auto_flush=True) as coffer:
        coffer.write("a", b"2" * 4096)  # open, change one member, close: the update a user does most
    assert written and not any(written)


def test_bulk_commits_append_without_a_runway(tmp_path, zero_writes):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        coffer.write("big", os.urandom(log.RUNWAY_COMMIT_MAX + 1))
        coffer.write("big2", os.urandom(log.RUNWAY_COMMIT_MAX + 1))
    assert zero_writes and not any(zero_writes)  # large commits never write twice


@pytest.mark.parametrize("failing", ["pwrite", "fdatasync"])
def test_a_runway_that_cannot_be_written_costs_speed_not_the_commit(tmp_path, monkeypatch, failing):
    real_pwrite, real_sync = os.pwrite, os.fdatasync
    runway = {"writing": False, "refused": 0}

    def pwrite(fd, data, offset):
        runway["writing"] = _all_zeros(data)
        if runway["writing"] and failing == "pwrite":
            runway["refused"] += 1
            raise OSError(errno.ENOSPC, "injected")
        return real_pwrite(fd, data, offset)

    def fdatasync(fd):
        if runway["writing"] and failing == "fdatasync":
            runway["refused"] += 1
            raise OSError(errno.EIO, "injected")
        return real_sync(fd)

    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        coffer.write("a", b"1" * 2000)
        coffer.write("b", b"2" * 2000)  # acknowledged: the runway fails after the commit is durable
        coffer.write("c", b"3" * 2000)  # the coffer carries on
    assert runway["refused"] >= 1
    with Coffer.open(path, "r", type="null") as coffer:
        coffer.verify()
        assert [coffer.read(n) for n in "abc"] == [b"1" * 2000, b"2" * 2000, b"3" * 2000]
