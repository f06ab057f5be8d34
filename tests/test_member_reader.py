"""Reading a member by chunks: what ``extract`` writes from, without copies."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pycoffer_core import Coffer, IntegrityError, memberio
from pycoffer_core.container.base import ChunkSource
from pycoffer_core.container.index import Chunk, MemberEntry
from pycoffer_core.memberio import CHUNK_SIZE, MAX_IN_FLIGHT, WORKERS, MemberReader
from pools import RefusesAfter

SIZE = 2 * CHUNK_SIZE + 1000  # two whole chunks and a short one


@pytest.mark.parametrize("start", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 999, SIZE, SIZE + 5])
def test_iter_chunks_hands_out_the_rest_from_the_position_and_moves_it_to_the_end(tmp_path, start):
    data = os.urandom(SIZE)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        coffer.write("m", data)
        with coffer.file("m", "rb") as member:
            reader = member.raw if hasattr(member, "raw") else member
            reader.seek(start)
            pieces = [bytes(piece) for piece in reader.iter_chunks()]
            assert b"".join(pieces) == data[start:]
            assert all(len(piece) <= CHUNK_SIZE for piece in pieces)
            assert reader.tell() == max(start, SIZE)
            assert reader.read() == b""


def test_extract_writes_every_chunk_of_a_member_in_order(tmp_path):
    data = os.urandom(SIZE)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        coffer.write("dir/m", data)
        (written,) = coffer.extract("dir/m", tmp_path / "out")
    assert open(written, "rb").read() == data
    assert sorted(os.listdir(tmp_path / "out" / "dir")) == ["m"]  # no part file left


# ---------------------------------------------------------------- reading ahead

#: Long enough for a test that waits on another thread, short enough not to
#: hang the suite if the code under test deadlocks.
PATIENCE = 30.0


class _RecordingSource(ChunkSource):
    """Chunks of a known member, recording which thread opened each and when."""

    def __init__(self, chunks: list[bytes], delay: float = 0.0, fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.delay = delay
        self.fail_at = fail_at
        self.threads: dict[int, str] = {}
        self.running = 0
        self.lock = threading.Lock()

    def read(self, index: int) -> bytes:
        with self.lock:
            self.running += 1
        try:
            self.threads[index] = threading.current_thread().name
            time.sleep(self.delay)
            if index == self.fail_at:
                raise IntegrityError(f"chunk {index} is damaged")
            return self.chunks[index]
        finally:
            with self.lock:
                self.running -= 1


def _reader(source: _RecordingSource) -> MemberReader:
    entry = MemberEntry(
        "m", b"\0" * 16, sum(map(len, source.chunks)), 0,
        tuple(Chunk(0, 0, len(chunk), b"\0" * 8) for chunk in source.chunks),
    )
    return MemberReader(source, entry)


def _pieces(count: int) -> list[bytes]:
    return [bytes([n]) * CHUNK_SIZE for n in range(count)]


@pytest.mark.parametrize("start", [0, 1, CHUNK_SIZE, 3 * CHUNK_SIZE - 1, 5 * CHUNK_SIZE, 9 * CHUNK_SIZE])
def test_reading_ahead_hands_out_the_same_bytes_and_opens_chunks_on_the_workers(start):
    source = _RecordingSource(_pieces(6))
    reader = _reader(source)
    reader.seek(start)
    pieces = [bytes(piece) for piece in reader.iter_chunks(read_ahead=True)]
    assert b"".join(pieces) == b"".join(source.chunks)[start:]
    assert reader.tell() == max(start, 6 * CHUNK_SIZE)
    first = min(start // CHUNK_SIZE, 6)
    if 6 - first > 2:
        assert all(name.startswith("pycoffer-worker") for name in source.threads.values())
    else:  # two chunks or fewer left: not worth a thread hop
        assert all(name == threading.current_thread().name for name in source.threads.values())


def test_readall_reads_a_large_member_ahead():
    source = _RecordingSource(_pieces(5))
    assert _reader(source).readall() == b"".join(source.chunks)
    assert all(name.startswith("pycoffer-worker") for name in source.threads.values())


def test_stopping_early_waits_for_the_chunks_being_opened_ahead():
    source = _RecordingSource(_pieces(12), delay=0.02)
    chunks = _reader(source).iter_chunks(read_ahead=True)
    next(chunks)
    chunks.close()
    assert source.running == 0  # nothing opens on after the caller stopped
    assert len(source.threads) <= 1 + MAX_IN_FLIGHT  # and it never ran far ahead


def test_a_damaged_chunk_read_ahead_raises_in_its_turn_and_leaves_nothing_running():
    # The chunks after the damaged one are still being opened when it fails.
    source = _RecordingSource(_pieces(8), delay=0.02, fail_at=1)
    got = []
    with pytest.raises(IntegrityError, match="chunk 1"):
        for piece in _reader(source).iter_chunks(read_ahead=True):
            got.append(bytes(piece))
    assert got == source.chunks[:1]
    assert source.running == 0


def test_an_interrupt_while_waiting_for_a_chunk_leaves_nothing_running(monkeypatch):
    source = _RecordingSource(_pieces(8), delay=0.02)
    real_result = memberio.Future.result
    interrupted = []

    def result_interrupted_once(self, timeout=None):
        if not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt  # Ctrl-C while the caller waits for its next chunk
        return real_result(self, timeout)

    monkeypatch.setattr(memberio.Future, "result", result_interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        _reader(source).readall()
    assert source.running == 0  # the chunk it was waiting for included


@pytest.mark.parametrize("read_ahead", [False, True])
def test_a_seek_between_chunks_is_followed(read_ahead):
    source = _RecordingSource(_pieces(6))
    whole = b"".join(source.chunks)
    reader = _reader(source)
    chunks = reader.iter_chunks(read_ahead=read_ahead)
    assert bytes(next(chunks)) == whole[:CHUNK_SIZE]
    reader.seek(100)  # back into the chunk just handed out
    assert bytes(next(chunks)) == whole[100:CHUNK_SIZE]
    reader.seek(4 * CHUNK_SIZE + 7)  # ahead, past chunks being opened
    assert bytes(next(chunks)) == whole[4 * CHUNK_SIZE + 7 : 5 * CHUNK_SIZE]
    assert bytes(next(chunks)) == whole[5 * CHUNK_SIZE :]  # the last chunk
    reader.seek(5)  # back, once the last chunk was handed out
    assert b"".join(map(bytes, chunks)) == whole[5:]
    assert reader.tell() == len(whole)


@pytest.mark.parametrize("read_ahead", [False, True])
def test_a_seek_to_the_end_ends_the_chunks(read_ahead):
    source = _RecordingSource(_pieces(6))
    reader = _reader(source)
    chunks = reader.iter_chunks(read_ahead=read_ahead)
    next(chunks)
    reader.seek(0, os.SEEK_END)
    assert list(chunks) == []


@pytest.mark.parametrize("read_ahead", [False, True])
def test_an_empty_chunk_in_an_index_is_passed_over(read_ahead):
    # The writer never makes one; a forged index might: it must not stall a reader.
    source = _RecordingSource([b"a" * 10, b"", b"b" * 10, b"", b"c" * 5])
    reader = _reader(source)
    assert b"".join(map(bytes, reader.iter_chunks(read_ahead=read_ahead))) == b"a" * 10 + b"b" * 10 + b"c" * 5


def test_reading_ahead_after_the_pool_is_shut_down_reads_here(monkeypatch):
    closed = ThreadPoolExecutor(1)
    closed.shutdown()
    monkeypatch.setattr(memberio, "worker_pool", lambda: closed)
    source = _RecordingSource(_pieces(5))
    assert _reader(source).readall() == b"".join(source.chunks)
    assert set(source.threads.values()) == {threading.current_thread().name}


def test_a_damaged_chunk_after_the_pool_is_shut_down_raises_at_once(monkeypatch):
    closed = ThreadPoolExecutor(1)
    closed.shutdown()
    monkeypatch.setattr(memberio, "worker_pool", lambda: closed)
    source = _RecordingSource(_pieces(6), fail_at=1)
    raised = []

    def read() -> None:
        with pytest.raises(IntegrityError, match="chunk 1"):
            _reader(source).readall()
        raised.append(True)

    reading = threading.Thread(target=read, daemon=True)  # a daemon: a hang can't block the exit
    reading.start()
    reading.join(PATIENCE)
    assert raised, "the reader hangs once a chunk read here fails"
    assert sorted(source.threads) == [0, 1]  # the chunks after it are never read


def test_a_reader_on_a_worker_thread_never_waits_for_the_pool():
    # Every worker reads a large member at once: reading ahead from a worker
    # would queue work behind itself and wait forever. (The workers here are
    # a pool of the test's own, marked as the library marks its own.)
    sources = [_RecordingSource(_pieces(4)) for _ in range(WORKERS)]
    barrier = threading.Barrier(WORKERS)

    def read_on_worker(source: _RecordingSource) -> bytes:
        barrier.wait(PATIENCE)  # all workers busy
        return _reader(source).readall()

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="test-worker", initializer=memberio._mark_worker) as workers:
        futures = [workers.submit(read_on_worker, source) for source in sources]
        for future, source in zip(futures, sources):
            assert future.result(timeout=PATIENCE) == b"".join(source.chunks)
            assert all(name.startswith("test-worker") for name in source.threads.values())  # not read ahead


def test_a_large_write_after_the_pool_is_shut_down_seals_here(tmp_path, monkeypatch):
    # At interpreter exit (an atexit handler, a thread outliving the main
    # script) the pool takes no more work: writing must not fail for it.
    closed = ThreadPoolExecutor(1)
    closed.shutdown()
    monkeypatch.setattr(memberio, "worker_pool", lambda: closed)
    data = os.urandom(5 * CHUNK_SIZE + 3)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        coffer.write("big", data)
    with Coffer.open(tmp_path / "c.coffer", "r", type="null") as coffer:
        assert coffer.read("big") == data


def test_a_large_write_the_pool_refuses_part_way_keeps_its_chunks_in_order(tmp_path, monkeypatch):
    pool = RefusesAfter(taken=2)  # two chunks in flight when it starts refusing
    monkeypatch.setattr(memberio, "worker_pool", lambda: pool)
    data = b"".join(bytes([n]) * CHUNK_SIZE for n in range(6)) + b"tail"
    try:
        with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
            coffer.write("big", data)
    finally:
        pool.shutdown()
    assert pool.refused == 1  # asked once: the rest is sealed here without asking again
    with Coffer.open(tmp_path / "c.coffer", "r", type="null") as coffer:
        assert coffer.read("big") == data
