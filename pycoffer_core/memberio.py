"""File objects over members: streaming, with memory bounded by one chunk."""

from __future__ import annotations

import bisect
import io
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from itertools import accumulate, islice
from typing import Any, TypeVar

from .container.base import ChunkSource, SealedChunk
from .container.index import Chunk, MemberEntry
from .errors import ClosedCofferError

T = TypeVar("T")

#: Plain bytes per chunk: the unit of sealing, of random access and of memory use.
CHUNK_SIZE = 256 * 1024
#: Threads of each of the two pools: the worker pool, which seals the chunks
#: of large members and opens those a reader reads ahead (short tasks), and
#: the extract pool, which writes out the large members an extract takes (a
#: whole member per task, kept apart so that it never holds up the short
#: ones). zstd, most AEADs and file I/O release the GIL: all of it uses every
#: core.
WORKERS = max(1, min(8, os.cpu_count() or 1))
#: Chunks of one writer sealed ahead of the file, or of one reader opened
#: ahead of its caller: bounds the memory of each.
MAX_IN_FLIGHT = 2 * WORKERS

_worker = threading.local()


def _mark_worker() -> None:
    _worker.active = True


def on_worker() -> bool:
    """Whether the calling thread is one of the pools' (see :data:`WORKERS`)."""
    return getattr(_worker, "active", False)


class _LazyPool:
    """A thread pool made on first use, and forgotten in a forked child
    (which inherits the pool object but none of its threads)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._lock = None, threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix=self._name, initializer=_mark_worker)
            return self._pool


_workers = _LazyPool("pycoffer-worker")
_extractors = _LazyPool("pycoffer-extract")


def worker_pool() -> ThreadPoolExecutor:
    """The process's pool for short tasks: sealing a chunk, opening one ahead.

    A task on either pool must never wait for a task on a pool, nor for a
    coffer's lock (a thread holding it may be waiting for the pool), or a
    full pool would wait forever: code that may run on one checks
    :func:`on_worker`.
    """
    return _workers.get()


def extract_pool() -> ThreadPoolExecutor:
    """The process's pool for writing out a large member, one per task (see
    :func:`worker_pool` for what a task must never do)."""
    return _extractors.get()


class Submitter:
    """Hands tasks to a pool until it refuses one, as a pool does at
    interpreter exit or when it can't start a thread; from then on
    :meth:`submit` returns None at once, and the caller does the work itself.
    A pool that can't start a thread still queues the task it refused: that
    task must be harmless to run late, or guarded against running twice."""

    def __init__(self, pool: Callable[[], Executor]) -> None:
        self._pool = pool  # called on first use: a writer of small members never makes the pool
        self._refused = False

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T] | None:
        if not self._refused:
            try:
                return self._pool().submit(fn, *args)
            except RuntimeError:
                self._refused = True
        return None


class MemberReader(io.RawIOBase):
    """Reads one version of a member (the one current when it was opened); seekable."""

    def __init__(self, source: ChunkSource, entry: MemberEntry) -> None:
        super().__init__()
        self._source = source
        self._entry = entry
        self._starts = [0, *accumulate(chunk.plain_len for chunk in entry.chunks)]
        self._pos = 0
        self._cached_index = -1
        self._cached: bytes | memoryview = b""
        self.name = entry.name

    @property
    def entry(self) -> MemberEntry:
        """The member version this reader reads."""
        return self._entry

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def _chunk(self, index: int) -> bytes | memoryview:
        if index != self._cached_index:
            self._cached = self._source.read(index)
            self._cached_index = index
        return self._cached

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        if self._pos >= self._entry.size:
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        data = self._chunk(index)
        start = self._pos - self._starts[index]
        count = min(len(buffer), len(data) - start)
        with memoryview(data) as view:
            buffer[:count] = view[start : start + count]  # one copy, not two
        self._pos += count
        return count

    def readall(self) -> bytes:
        return b"".join(self.iter_chunks(read_ahead=True))

    def iter_chunks(self, *, read_ahead: bool = False) -> Iterator[bytes | memoryview]:
        """The rest of the content, a chunk at a time, as it is opened (no copy);
        the position moves past each chunk as it is handed out (a seek
        between two chunks is followed).

        With ``read_ahead``, a member of several chunks has up to
        :data:`MAX_IN_FLIGHT` of them read and opened on the worker pool
        while the caller handles the one before (never from a worker thread:
        see :func:`worker_pool`). Closing the iterator early waits for them.
        """
        self._checkClosed()
        last = len(self._entry.chunks)
        while True:
            index = bisect.bisect_right(self._starts, self._pos) - 1
            opened: Iterator[bytes | memoryview]
            if read_ahead and last - index > 2 and not on_worker():
                opened = _opened_ahead(self._source, range(index, last))
            else:
                opened = map(self._chunk, range(index, last))
            try:
                for index, data in enumerate(opened, index):
                    if not self._starts[index] <= self._pos < self._starts[index + 1]:
                        break  # the caller moved the position: start again from there
                    start = self._pos - self._starts[index]
                    self._pos = self._starts[index + 1]
                    yield memoryview(data)[start:] if start else data
                else:
                    if self._pos >= self._starts[-1]:
                        return
                    # else the caller moved back after the last chunk: start again
            finally:
                close = getattr(opened, "close", None)
                if close is not None:
                    close()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._entry.size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence!r}")
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def close(self) -> None:
        self._cached = b""
        super().close()


def _opened_ahead(source: ChunkSource, indexes: range) -> Iterator[bytes | memoryview]:
    """``source.read(i)`` for each of ``indexes``, in order, with up to
    :data:`MAX_IN_FLIGHT` of them running on the worker pool at a time.
    Closed early, or failing, it waits for those still running. Once the
    pool takes no more work (at interpreter exit), the rest are read here."""
    pool = Submitter(worker_pool)
    pending: deque[Future[bytes | memoryview]] = deque()
    upcoming = iter(indexes)

    def ahead(index: int) -> Future[bytes | memoryview]:
        return pool.submit(source.read, index) or _Later(source.read, index)

    try:
        for index in islice(upcoming, MAX_IN_FLIGHT):
            pending.append(ahead(index))
        while pending:
            data = pending[0].result()  # left in ``pending`` until done, so an interrupt waits for it
            pending.popleft()
            for index in islice(upcoming, 1):
                pending.append(ahead(index))
            yield data
    finally:
        for future in pending:
            future.cancel()
        wait(pending)


class _Later(Future):  # type: ignore[type-arg]
    """A read the pool would not take: done on the caller's thread when its result is asked for."""

    def __init__(self, read: Callable[[int], bytes | memoryview], index: int) -> None:
        super().__init__()
        self._read, self._index = read, index

    def cancel(self) -> bool:
        cancelled = super().cancel()
        if cancelled:
            # No executor will ever pick it up to say so: without this,
            # ``wait()`` would wait for it forever.
            self.set_running_or_notify_cancel()
        return cancelled

    def result(self, timeout: float | None = None) -> bytes | memoryview:
        if not self.done():
            try:
                self.set_result(self._read(self._index))
            except Exception as exc:
                self.set_exception(exc)
        return super().result(timeout)


class MemberWriter(io.RawIOBase):
    """Writes a new version of a member (or appends to the current one).

    Full chunks are sealed and stored as they fill (those of a large member
    sealed on several threads, stored in order); the member appears in the
    coffer when the writer is closed (``finish``), never before. After
    :meth:`abort` the writer swallows writes and changes nothing. After a
    write fails (a chunk that could not be sealed or stored is lost), or
    after :meth:`orphan`, every later write and ``close`` raise
    :class:`ClosedCofferError`, and the member stays as it was.
    """

    def __init__(
        self,
        name: str,
        member_id: bytes,
        base: MemberEntry | None,
        seal: Callable[[bytes, int, bytes], SealedChunk],
        store: Callable[[SealedChunk], Chunk],
        finish: Callable[[MemberWriter, MemberEntry], None],
        mtime_ns: Callable[[], int],
        ended: Callable[[MemberWriter], None] = lambda writer: None,
    ) -> None:
        super().__init__()
        self.name = name
        self._member_id = member_id
        self._chunks: list[Chunk] = list(base.chunks) if base else []
        self._size = base.size if base else 0
        self._next_chunk_no = len(self._chunks)
        self._seal = seal
        self._store = store
        self._finish = finish
        self._mtime_ns = mtime_ns
        self._ended = ended
        self._buffer = bytearray()
        self._in_flight: deque[Future[SealedChunk]] = deque()
        self._pool = Submitter(worker_pool)
        self._aborted = False
        #: Why this writer can store nothing more, and what caused it.
        self._failure: tuple[str, BaseException | None] | None = None
        self._owner = threading.get_ident()

    def writable(self) -> bool:
        return True

    def _sealed(self, chunk_no: int, data: bytes) -> SealedChunk:
        return self._seal(self._member_id, chunk_no, data)

    def _emit(self, data: bytes) -> None:
        chunk_no = self._next_chunk_no
        self._next_chunk_no += 1
        if len(data) < CHUNK_SIZE and not self._in_flight:
            self._keep(self._sealed(chunk_no, data))  # small members: no thread hop
            return
        future = self._pool.submit(self._sealed, chunk_no, data)
        if future is None:
            # The pool takes no more work: seal here, in order. A task it
            # queued all the same only seals a copy nobody keeps.
            self._drain()
            self._keep(self._sealed(chunk_no, data))
            return
        self._in_flight.append(future)
        while len(self._in_flight) > MAX_IN_FLIGHT:
            self._keep(self._in_flight.popleft().result())

    def _keep(self, sealed: SealedChunk) -> None:
        self._chunks.append(self._store(sealed))
        self._size += sealed.plain_len

    def _drain(self) -> None:
        while self._in_flight:
            self._keep(self._in_flight.popleft().result())

    def _raise_failure(self) -> None:
        assert self._failure is not None
        message, cause = self._failure
        raise ClosedCofferError(message) from cause

    def orphan(self, message: str) -> None:
        """Refuse every later write and ``close`` with ``message`` (the coffer
        was closed under this writer, maybe from another thread).

        Only the writer's own thread touches its buffers: called from another
        one, this only flags the writer, and its next call cleans up.
        """
        self._failure = (message, None)
        if threading.get_ident() == self._owner:
            self._drop_pending()

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        if self._failure is not None and not self._aborted:
            self._raise_failure()
        try:
            return self._write(data)
        except BaseException as exc:
            # The chunk being sealed or stored is lost: finishing now would
            # store a member with a hole.
            self._failure = (f"writing member {self.name!r} failed ({exc!r}); nothing of it was stored", exc)
            self._drop_pending()
            raise

    def _write(self, data: bytes | bytearray | memoryview) -> int:
        if type(data) is bytes and len(data) == CHUNK_SIZE and not self._buffer and not self._aborted:
            self._emit(data)  # a whole chunk, immutable: sealed as it is, no copy
            return CHUNK_SIZE
        with memoryview(data) as view:
            view = view.cast("B")
            count = len(view)
            if self._aborted:
                return count
            if self._buffer:
                take = min(count, CHUNK_SIZE - len(self._buffer))
                self._buffer += view[:take]
                view = view[take:]
                if len(self._buffer) == CHUNK_SIZE:
                    self._emit(bytes(self._buffer))
                    self._buffer.clear()
            while len(view) >= CHUNK_SIZE:
                self._emit(bytes(view[:CHUNK_SIZE]))
                view = view[CHUNK_SIZE:]
            self._buffer += view
        return count

    def abort(self) -> None:
        """Forget everything written; the member stays as it was."""
        self._aborted = True
        self._drop_pending()

    def _drop_pending(self) -> None:
        self._buffer.clear()
        while self._in_flight:
            future = self._in_flight.popleft()
            if not future.cancel():
                future.exception()  # wait: its thread must not outlive the writer

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._aborted:
                if self._failure is not None:
                    self._raise_failure()
                if self._buffer:
                    self._emit(bytes(self._buffer))
                    self._buffer.clear()
                self._drain()
                entry = MemberEntry(
                    self.name, self._member_id, self._size, self._mtime_ns(), tuple(self._chunks)
                )
                self._finish(self, entry)
        finally:
            try:
                if not self._aborted:
                    # Marks the writer done; after an error, also waits for the
                    # chunks still being sealed on the pool.
                    self.abort()
                super().close()
            finally:
                self._ended(self)  # stored, failed or dropped: no longer being written
