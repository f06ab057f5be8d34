"""The runway: synced zeros a writer keeps ahead of its small commits (``log.RUNWAY``).

What a user relies on: commits land on space already allocated (so each
costs one data-only sync), the zeros never show as content, a live coffer
opens without a scan, and a closed one ends at its last record.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil

import pytest

from pycoffer_core import Coffer, IntegrityError
from pycoffer_core.container import log


RUNWAY_AFTER_COMMITS = log.RUNWAY_AFTER_COMMITS


@pytest.fixture(autouse=True)
def early_runway(monkeypatch):
    """Lay the runway from a session's second small commit, so tests stay short."""
    monkeypatch.setattr(log, "RUNWAY_AFTER_COMMITS", 2)


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
        assert path.stat().st_size > committed
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


def test_a_short_session_writes_no_runway(tmp_path, request, monkeypatch):
    monkeypatch.setattr(log, "RUNWAY_AFTER_COMMITS", RUNWAY_AFTER_COMMITS)
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a", b"1")
    written = request.getfixturevalue("zero_writes")
    with Coffer.open(path, "a", type="null", auto_flush=True) as coffer:
        for n in range(RUNWAY_AFTER_COMMITS - 1):  # open, change a few members, close
            coffer.write(f"m{n}", b"2" * 4096)
    assert written and not any(written)
    with Coffer.open(path, "a", type="null", auto_flush=True) as coffer:
        for n in range(RUNWAY_AFTER_COMMITS):  # a longer session lays one
            coffer.write(f"m{n}", b"3" * 4096)
        assert _zero_tail(path) >= log.RUNWAY // 2


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
            real_pwrite(fd, bytes(data)[: len(data) // 2], offset)  # the disk fills part-way
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
    assert _zero_tail(path) == 0  # close cut off whatever zeros were written
    with Coffer.open(path, "r", type="null") as coffer:
        coffer.verify()
        assert [coffer.read(n) for n in "abc"] == [b"1" * 2000, b"2" * 2000, b"3" * 2000]


@pytest.mark.parametrize("size", [20_000, 9_000, 4_090, 1_000])
def test_power_lost_while_a_commit_overwrites_the_runway_opens_at_a_commit(tmp_path, size):
    """Its pages reach the disk in any order; the rest still hold the runway's zeros.

    Every subset of the pages the commit touches must open at the commit
    before it, or (all pages written) at the commit itself: never as damage.
    """
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        for name in "abc":
            coffer.write(name, os.urandom(2048))
        before, before_end = path.read_bytes(), coffer.stats()["file_size"]
        assert _zero_tail(path) > 0  # the next commit lands on the runway
        coffer.write("big", os.urandom(size))
        after, after_end = path.read_bytes(), coffer.stats()["file_size"]
    _every_page_subset_opens_at_a_commit(
        tmp_path / "crash.coffer", before, after, range(before_end, after_end), ["a", "b", "c"], ["a", "b", "big", "c"]
    )


def _every_page_subset_opens_at_a_commit(
    crash, before, after, touched, names_before, names_after, *, may_refuse: bool = False
) -> None:
    """For every subset of the pages holding ``touched`` written (from
    ``after``, the others as in ``before``), the coffer opens at the commit
    before (``names_before``) or, all written, at the commit itself; with
    ``may_refuse``, it may also refuse to open (``IntegrityError``), never
    open anywhere else."""
    page = 4096
    pages = list(range(touched.start // page, (touched.stop - 1) // page + 1))
    for count in range(len(pages) + 1):
        for written in itertools.combinations(pages, count):
            state = bytearray(before)
            for number in written:
                state[number * page : (number + 1) * page] = after[number * page : (number + 1) * page]
            crash.write_bytes(bytes(state))
            try:
                with Coffer.open(crash, "r", type="null") as coffer:
                    names = sorted(info.name for info in coffer.getmembers())
            except IntegrityError:
                if not may_refuse:
                    raise
                continue
            assert names in (names_before, names_after), written
            if names == names_after:
                assert written == tuple(pages)


@pytest.mark.parametrize("change", ["write", "delete"])
@pytest.mark.parametrize("in_page", [4086, 4090, 4095])
def test_power_lost_in_a_commit_whose_first_head_straddles_a_page_never_drops_a_commit(tmp_path, in_page, change):
    """As above, with the commit's first record head starting ``in_page``
    bytes into a page. Where it straddles the page's end, its bytes in an
    unwritten page are 1 to 9 zeros, which one flipped bit can leave too:
    the coffer may refuse to open then (REL-17 in reliability.md), but
    never opens at a commit it shouldn't."""
    page = 4096
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        for name in "abc":
            coffer.write(name, os.urandom(2048))
        start = coffer.stats()["file_size"]
        coffer.write("pad1", os.urandom(1000))
        overhead = coffer.stats()["file_size"] - start - 1000  # a small member's records, beyond its bytes
        end = coffer.stats()["file_size"]
        coffer.write("pad2", os.urandom((in_page - (end + overhead)) % page + page))
        before, before_end = path.read_bytes(), coffer.stats()["file_size"]
        assert before_end % page == in_page and _zero_tail(path) > 0
        if change == "write":
            coffer.write("new", os.urandom(3000))
        else:
            coffer.delete("a")
        after, after_end = path.read_bytes(), coffer.stats()["file_size"]
    expected_before = ["a", "b", "c", "pad1", "pad2"]
    expected_after = sorted([*expected_before, "new"] if change == "write" else ["b", "c", "pad1", "pad2"])
    _every_page_subset_opens_at_a_commit(
        tmp_path / "crash.coffer",
        before,
        after,
        range(before_end, after_end),
        expected_before,
        expected_after,
        may_refuse=in_page + 10 > page,
    )
