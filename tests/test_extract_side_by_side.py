"""Extracting several large members at once, on the worker pool.

An extract writes the members of more than one chunk side by side on the
worker pool, then the small ones on the calling thread. What a user relies
on stays as it was: the same files, contents and mtimes, paths returned in
member order, and after a failure no part file, no thread still writing,
and only whole members.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pycoffer_core import Coffer, IntegrityError, UnsafePathError, extraction, hookimpl, memberio
from pycoffer_core import coffer as coffer_module
from pycoffer_core.memberio import CHUNK_SIZE, WORKERS, worker_pool
from pycoffer_core.plugins import registered
from pools import RefusesAfter

#: Long enough for a test that waits on another thread, short enough not to
#: hang the suite if the code under test never signals.
PATIENCE = 30.0

LARGE = {
    "data/a.bin": 3 * CHUNK_SIZE + 17,
    "data/deep/b.bin": 2 * CHUNK_SIZE,
    "data/c.bin": 2 * CHUNK_SIZE + 1,
    "other/d.bin": 4 * CHUNK_SIZE - 5,
}
SMALL = {"data/small.txt": 100, "data/deep/tiny": 1, "other/empty": 0, "zz": CHUNK_SIZE}


def _content(name: str, size: int) -> bytes:
    seed = name.encode() * 8
    return (seed * (size // len(seed) + 1))[:size]


@pytest.fixture
def coffer_path(tmp_path: Path) -> Path:
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        for number, (name, size) in enumerate({**LARGE, **SMALL}.items()):
            if name in SMALL and name == next(iter(SMALL)):
                # A commit of its own for the large members: opening checks the
                # last commit's records, and a test damages one of these.
                coffer.flush()
            coffer.write(name, _content(name, size), mtime_ns=1_600_000_000_000_000_000 + number)
    return path


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _part_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".pycoffer-part")]


def test_extractall_writes_large_members_on_the_pool_and_returns_paths_in_member_order(
    coffer_path, tmp_path, monkeypatch
):
    threads: dict[str, str] = {}
    real_write_member = extraction.write_member

    def recording(root, name, reader, mtime_ns, stop=None, protected=frozenset(), **options):
        threads[name] = threading.current_thread().name
        return real_write_member(root, name, reader, mtime_ns, stop, protected, **options)

    monkeypatch.setattr(extraction, "write_member", recording)
    out = tmp_path / "out"
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        members = coffer.getmembers()
        written = coffer.extractall(out)
    assert written == [str(out / m.name) for m in members]  # sorted by name, as before
    assert _files(out) == {name: _content(name, size) for name, size in {**LARGE, **SMALL}.items()}
    for member in members:
        assert (out / member.name).stat().st_mtime_ns == member.mtime_ns
    assert {name for name, thread in threads.items() if thread.startswith("pycoffer-extract")} == set(LARGE)
    assert {name for name, thread in threads.items() if thread == threading.current_thread().name} == set(SMALL)


def test_extract_of_a_folder_writes_its_large_members_side_by_side(coffer_path, tmp_path, monkeypatch):
    jobs_run: list[int] = []
    real = extraction.side_by_side

    def counting(pool, jobs):
        jobs_run.append(len(jobs))
        return real(pool, jobs)

    monkeypatch.setattr(extraction, "side_by_side", counting)
    out = tmp_path / "out"
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        written = coffer.extract("data", out)
    assert jobs_run == [3]  # a.bin, deep/b.bin, c.bin
    assert written == [str(out / name) for name in sorted(n for n in {**LARGE, **SMALL} if n.startswith("data/"))]
    assert _files(out) == {n: _content(n, s) for n, s in {**LARGE, **SMALL}.items() if n.startswith("data/")}


def test_a_single_large_member_is_written_on_the_calling_thread(coffer_path, tmp_path, monkeypatch):
    monkeypatch.setattr(extraction, "side_by_side", pytest.fail)
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        (written,) = coffer.extract("other/d.bin", tmp_path / "out")
    assert Path(written).read_bytes() == _content("other/d.bin", LARGE["other/d.bin"])


def test_a_damaged_large_member_fails_the_extract_leaving_only_whole_members_and_no_part_file(coffer_path, tmp_path):
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        damaged = coffer._container.entries["data/c.bin"].chunks[1]
    with open(coffer_path, "r+b") as raw:
        raw.seek(damaged.offset + damaged.stored_len // 2)
        byte = raw.read(1)
        raw.seek(-1, os.SEEK_CUR)
        raw.write(bytes([byte[0] ^ 0x40]))
    out = tmp_path / "out"
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        with pytest.raises(IntegrityError, match="record at offset"):
            coffer.extractall(out)
    assert _part_files(out) == []
    files = _files(out)
    assert "data/c.bin" not in files
    assert not set(files) & set(SMALL)  # written after the large ones: never started
    for name, content in files.items():
        assert content == _content(name, LARGE[name])  # whatever was written is whole


def test_side_by_side_returns_results_in_order():
    jobs = [lambda stop, n=n: n * n for n in range(6)]
    assert extraction.side_by_side(worker_pool(), jobs) == [n * n for n in range(6)]


def _runs_until_stopped(ended: threading.Event, started: threading.Event | None = None):
    """A job that works until it is told to stop, then gives up as a member's
    write does; ``started`` is set when it begins, ``ended`` when it returns."""

    def job(stop: threading.Event) -> None:
        if started is not None:
            started.set()
        try:
            if not stop.wait(PATIENCE):
                raise AssertionError("never told to stop")
            raise extraction.Stopped("gave up")
        finally:
            ended.set()

    return job


def test_a_failing_job_stops_the_others_and_is_raised_after_they_ended():
    ended = threading.Event()

    def fails(stop: threading.Event) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        extraction.side_by_side(worker_pool(), [_runs_until_stopped(ended), fails])
    assert ended.is_set()  # nothing still runs once the error is raised


def test_the_error_raised_is_the_first_in_order_that_failed_on_its_own():
    def fails_once_stopped(stop: threading.Event) -> None:
        stop.wait(PATIENCE)
        raise KeyError("first in order")

    def fails_at_once(stop: threading.Event) -> None:
        raise ValueError("first in time")

    with pytest.raises(KeyError, match="first in order"):
        extraction.side_by_side(worker_pool(), [fails_once_stopped, fails_at_once])


def test_an_interrupted_caller_stops_the_jobs_and_waits_for_them(monkeypatch):
    real_wait = extraction.wait
    calls = []
    started, ended = threading.Event(), threading.Event()

    def interrupted_once(futures, return_when=None):
        calls.append(return_when)
        if len(calls) == 1:
            assert started.wait(PATIENCE)
            raise KeyboardInterrupt  # Ctrl-C while the job runs
        return real_wait(futures)

    monkeypatch.setattr(extraction, "wait", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        extraction.side_by_side(worker_pool(), [_runs_until_stopped(ended, started)])
    assert ended.is_set()


def test_write_member_gives_up_once_stopped_and_removes_its_part_file(tmp_path):
    stop = threading.Event()

    def blocks():
        yield b"x" * 10
        stop.set()  # another member failed meanwhile
        yield b"y" * 10

    class Reader:
        def iter_chunks(self, *, read_ahead=False):
            return blocks()

    with pytest.raises(extraction.Stopped):
        extraction.write_member(tmp_path, "dir/m", Reader(), 0, stop)
    assert os.listdir(tmp_path / "dir") == []


def test_a_folder_made_meanwhile_by_another_writer_is_used(tmp_path, monkeypatch):
    real_mkdir = os.mkdir

    def racing_mkdir(path, mode=0o777, *, dir_fd=None):
        real_mkdir(path, mode, dir_fd=dir_fd)  # the member written beside this one got there first
        raise FileExistsError(path)

    monkeypatch.setattr(extraction.os, "mkdir", racing_mkdir)
    fd = extraction._open_parent(str(tmp_path), ["a", "b"])
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(tmp_path / "a" / "b"))
    finally:
        os.close(fd)


def test_a_link_made_meanwhile_where_a_folder_is_needed_is_refused(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()

    def racing_mkdir(path, mode=0o777, *, dir_fd=None):
        os.symlink(elsewhere, path, dir_fd=dir_fd)  # someone slipped a link in
        raise FileExistsError(path)

    monkeypatch.setattr(extraction.os, "mkdir", racing_mkdir)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        extraction._open_parent(str(dest), ["a", "b"])
    assert os.listdir(elsewhere) == []


def test_an_extract_and_a_large_write_on_the_same_coffer_never_wait_for_each_other(tmp_path, monkeypatch):
    # A large write() holds the coffer's lock while it waits for its chunks to
    # be sealed; an extract runs on the same coffer meanwhile: both finish.
    # (Extract jobs run on a pool of their own, and never take the lock.)
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        for number in range(2 * WORKERS):
            coffer.write(f"m{number}", _content(f"m{number}", 2 * CHUNK_SIZE))
    busy, release = threading.Semaphore(0), threading.Event()
    calls = iter(range(10**6))
    real_write_member = extraction.write_member

    def first_jobs_wait(root, name, reader, mtime_ns, stop=None, protected=frozenset(), **options):
        if next(calls) < WORKERS:
            busy.release()
            release.wait(PATIENCE)
        return real_write_member(root, name, reader, mtime_ns, stop, protected, **options)

    monkeypatch.setattr(extraction, "write_member", first_jobs_wait)
    big = _content("new", 4 * CHUNK_SIZE)
    coffer = Coffer.open(path, "a", type="null")
    extracted: list[list[str]] = []
    extracting = threading.Thread(target=lambda: extracted.append(coffer.extractall(tmp_path / "out")), daemon=True)
    extracting.start()
    for _ in range(WORKERS):
        assert busy.acquire(timeout=PATIENCE)  # every worker runs a job; the other jobs wait in the queue
    written = threading.Event()

    def write_large() -> None:
        with coffer._guard:  # as write() holds it...
            release.set()  # ...while the queued extract jobs start...
            coffer.write("new", big)  # ...and its chunks are sealed
        written.set()

    threading.Thread(target=write_large, daemon=True).start()
    # Not in a with block: closing a coffer whose lock a stuck thread holds would hang the test.
    assert written.wait(PATIENCE), "the write and the extract wait for each other"
    extracting.join(PATIENCE)
    assert extracted and len(extracted[0]) == 2 * WORKERS
    assert coffer.read("new") == big
    coffer.close()


def test_an_extract_from_a_commit_hook_finishes(tmp_path):
    # Hooks run with the coffer's lock held: the jobs on the pool must not need it.
    path = tmp_path / "c.coffer"
    coffer = Coffer.open(path, "w", type="null", auto_flush=False)
    coffer.write("a.bin", _content("a", 3 * CHUNK_SIZE))
    coffer.write("b.bin", _content("b", 3 * CHUNK_SIZE))
    extracted: list[list[str]] = []

    class BackupOnCommit:
        @hookimpl
        def pycoffer_after_commit(self, event):
            extracted.append(coffer.extractall(tmp_path / "backup"))

    done = threading.Event()

    def flush() -> None:
        with registered(BackupOnCommit()):
            coffer.flush()
        done.set()

    threading.Thread(target=flush, daemon=True).start()
    # No try/finally: closing a coffer whose lock a stuck thread holds would hang the test.
    assert done.wait(PATIENCE), "an extract inside a commit hook waits forever"
    assert [Path(p).name for p in extracted[0]] == ["a.bin", "b.bin"]
    coffer.close()


def test_a_member_that_would_be_a_folder_of_another_fails_the_same_way_whatever_the_timing(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a", _content("a", 2 * CHUNK_SIZE))
        coffer.write("a/b", _content("a/b", 2 * CHUNK_SIZE))
        coffer.write("c", _content("c", 2 * CHUNK_SIZE))
    for attempt in range(5):
        out = tmp_path / f"out{attempt}"
        with Coffer.open(path, "r", type="null") as coffer:
            with pytest.raises(UnsafePathError, match="can't both be extracted"):
                coffer.extractall(out)
        assert not out.exists() or _files(out) == {}  # refused before anything is written


def test_a_file_in_the_way_of_a_folder_fails_the_same_way_whatever_the_timing(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a/b", _content("a/b", 2 * CHUNK_SIZE))
        coffer.write("A", _content("A", 2 * CHUNK_SIZE))  # one path with "a" where case is ignored
        coffer.write("c", _content("c", 2 * CHUNK_SIZE))
    for attempt in range(5):
        out = tmp_path / f"out{attempt}"
        out.mkdir()
        (out / "c").mkdir()  # a folder where member "c" goes
        with Coffer.open(path, "r", type="null") as coffer:
            with pytest.raises(IsADirectoryError):
                coffer.extractall(out)
        # In order: "A", then "a/b", then "c" fails.
        assert _files(out) == {"A": _content("A", 2 * CHUNK_SIZE), "a/b": _content("a/b", 2 * CHUNK_SIZE)}


@pytest.mark.parametrize(
    ("names", "overlap"),
    [
        (["a", "b", "c/d", "c/e"], False),
        (["a", "a/b"], True),
        (["x/y/z", "x/y"], True),
        (["Photo.jpg", "photo.JPG"], True),  # one file on a file system that ignores case
        (["Docs", "docs/readme"], True),
        (["ab", "a/b", "a-b"], False),
        (["caf\u00e9", "cafe\u0301"], True),  # é as one code point and as two: one file on APFS
        (["caf\u00e9", "Cafe\u0301/menu.pdf"], True),
    ],
)
def test_paths_overlap(names, overlap):
    assert extraction.paths_overlap(names) is overlap


def test_an_extract_after_the_pool_is_shut_down_writes_everything_here(coffer_path, tmp_path, monkeypatch):
    # At interpreter exit (an atexit handler, a thread outliving the main
    # script) concurrent.futures takes no more work.
    closed = ThreadPoolExecutor(1)
    closed.shutdown()
    monkeypatch.setattr(memberio, "worker_pool", lambda: closed)
    monkeypatch.setattr(coffer_module, "extract_pool", lambda: closed)
    out = tmp_path / "out"
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        coffer.extractall(out)
        assert coffer.read("other/d.bin") == _content("other/d.bin", LARGE["other/d.bin"])
    assert _files(out) == {name: _content(name, size) for name, size in {**LARGE, **SMALL}.items()}


def test_side_by_side_runs_the_jobs_here_when_the_pool_takes_no_more_work():
    closed = ThreadPoolExecutor(1)
    closed.shutdown()
    here = threading.current_thread().name
    jobs = [lambda stop, n=n: (n, threading.current_thread().name) for n in range(3)]
    assert extraction.side_by_side(closed, jobs) == [(n, here) for n in range(3)]


def test_jobs_the_pool_refuses_part_way_run_here_each_once(tmp_path):
    runs: list[tuple[int, str]] = []
    lock = threading.Lock()

    def job(number: int):
        def run(stop: threading.Event) -> int:
            with lock:
                runs.append((number, threading.current_thread().name))
            return number

        return run

    with RefusesAfter(taken=2) as pool:
        assert extraction.side_by_side(pool, [job(n) for n in range(5)]) == list(range(5))
    assert sorted(number for number, _ in runs) == list(range(5))  # each job once
    here = threading.current_thread().name
    assert [number for number, thread in runs if thread == here] == [2, 3, 4]


def test_a_job_failing_on_the_pool_stops_the_jobs_running_here():
    def fails(stop: threading.Event) -> None:
        raise ValueError("failed on the pool")

    outcomes = []

    def runs_here_until_stopped(stop: threading.Event) -> None:
        outcomes.append("told to stop" if stop.wait(PATIENCE) else "never told to stop")
        raise extraction.Stopped("gave up")

    with RefusesAfter(taken=1) as pool:
        with pytest.raises(ValueError, match="failed on the pool"):
            extraction.side_by_side(pool, [fails, runs_here_until_stopped, runs_here_until_stopped])
    assert outcomes == ["told to stop", "told to stop"]


def test_an_extract_the_pool_refuses_part_way_writes_everything(coffer_path, tmp_path, monkeypatch):
    pool = RefusesAfter(taken=1)
    monkeypatch.setattr(coffer_module, "extract_pool", lambda: pool)
    out = tmp_path / "out"
    try:
        with Coffer.open(coffer_path, "r", type="null") as coffer:
            coffer.extractall(out)
    finally:
        pool.shutdown()
    assert _files(out) == {name: _content(name, size) for name, size in {**LARGE, **SMALL}.items()}


def test_a_job_the_pool_queued_although_it_refused_never_runs_twice():
    # A pool that can't start a thread raises from submit, yet keeps the task
    # queued: if a thread of its own later runs it, the job must not run again.
    queued = []

    class QueuesThenRefuses(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            queued.append(fn)
            raise RuntimeError("can't start new thread")

    runs = []
    with QueuesThenRefuses(1) as pool:
        assert extraction.side_by_side(pool, [lambda stop: runs.append("ran") or 42]) == [42]
    assert queued[0]() == 42  # the queued copy, run late, gives the same outcome...
    assert runs == ["ran"]  # ...without running the job again


def test_write_member_creates_nothing_once_stopped(tmp_path):
    stop = threading.Event()
    stop.set()  # another member failed before this one started

    class Reader:
        def iter_chunks(self, *, read_ahead=False):
            raise AssertionError("never read")

    with pytest.raises(extraction.Stopped):
        extraction.write_member(tmp_path, "dir/m", Reader(), 0, stop)
    assert os.listdir(tmp_path) == []


def test_an_extract_on_a_pool_thread_writes_everything_on_that_thread(coffer_path, tmp_path, monkeypatch):
    # Code running on one of the pools must never wait for a pool.
    monkeypatch.setattr(extraction, "side_by_side", pytest.fail)
    with ThreadPoolExecutor(1, initializer=memberio._mark_worker) as pool:
        with Coffer.open(coffer_path, "r", type="null") as coffer:
            pool.submit(coffer.extractall, tmp_path / "out").result(timeout=PATIENCE)
    assert _files(tmp_path / "out") == {name: _content(name, size) for name, size in {**LARGE, **SMALL}.items()}
