"""Moving files between the file system and a coffer, safely.

Adding walks a tree without leaving it through symbolic links; extracting
never writes outside its destination nor through a symbolic link in it, and
a member appears there whole or not at all.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, wait
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

from . import names
from .errors import UnsafePathError
from .memberio import Submitter

T = TypeVar("T")

_BLOCK = 1 << 20


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _identities(paths: tuple[Path, ...]) -> set[tuple[int, int]]:
    found = set()
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        found.add((info.st_dev, info.st_ino))
    return found


def plan_add(
    source: Path, base_name: str, *, follow_symlinks: bool, exclude: tuple[Path, ...] = ()
) -> list[tuple[Path, str]]:
    """The (file, member name) pairs that adding ``source`` as ``base_name`` stores.

    A symbolic link is followed when ``follow_symlinks`` is set, or when it
    points to a regular file inside the tree; other links are skipped, so a
    link in a tree can't pull in a file from elsewhere. Files that are one of
    ``exclude`` (compared by identity, so links and other spellings count)
    are left out: a coffer must not be fed into itself.
    """
    excluded = _identities(exclude)
    if not source.is_dir():
        if _identities((source,)) & excluded:
            return []
        return [(source.resolve() if source.is_symlink() else source, base_name)]
    root = source.resolve()
    plan = []
    for folder, dirnames, filenames in os.walk(source, followlinks=follow_symlinks):
        dirnames.sort()
        prefix = os.path.relpath(folder, source).replace(os.sep, "/")
        prefix = base_name if prefix == "." else f"{base_name}/{prefix}"
        for filename in sorted(filenames):
            path = Path(folder, filename)
            try:
                # One lstat tells links, kinds and identities apart: a tree
                # of many small files pays this per file.
                info = os.lstat(path)
                link = stat.S_ISLNK(info.st_mode)
                if link:
                    if not follow_symlinks:
                        target = path.resolve()
                        if not (target.is_file() and _inside(target, root)):
                            continue
                    info = os.stat(path)
            except OSError:
                continue  # vanished, or a dangling link
            if not stat.S_ISREG(info.st_mode):
                continue  # sockets, fifos, devices
            if (info.st_dev, info.st_ino) in excluded:
                continue
            # A link chosen now is stored as the file it names now: the file is
            # then opened without following links (see open_source).
            stored = path.resolve() if link else path
            plan.append((stored, names.normalize(f"{prefix}/{filename}")))
    return plan


def open_source(path: Path) -> BinaryIO:
    """Open a planned file for reading without following a link at its end, so
    a file swapped for a symbolic link after :func:`plan_add` is refused."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    return open(fd, "rb")


def _safe_parent(root: str, parts: list[str]) -> str:
    """Make the folders of a member under ``root``, refusing symbolic links."""
    current = root
    for part in parts:
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode  # one call, not three: this runs per member and folder
        except FileNotFoundError:
            try:
                os.mkdir(current, 0o700)
                continue
            except FileExistsError:
                # Made meanwhile (by a member written beside this one, or by
                # someone else): check what it is now, as if it had been there.
                mode = os.lstat(current).st_mode
        if stat.S_ISLNK(mode):
            raise UnsafePathError(f"refusing to extract through the symbolic link {current}")
        if not stat.S_ISDIR(mode):
            raise UnsafePathError(f"{current} is a file where a folder is needed")
    return current


def _write_all(fd: int, data: bytes | memoryview) -> None:
    with memoryview(data) as view:
        while view:
            view = view[os.write(fd, view) :]


def paths_overlap(names_: Sequence[str]) -> bool:
    """Whether two member names would land on one path, or one inside the
    other's (``a`` and ``a/b``), on a file system that ignores case and
    Unicode normalization too."""
    seen: set[str] = set()
    folders: set[str] = set()
    for name in names_:
        # Unicode's canonical caseless match: some file systems (APFS, HFS+)
        # ignore both case and normalization form (é as one code point or two).
        folded = unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())
        if folded in seen:
            return True
        seen.add(folded)
        parts = folded.split("/")
        folders.update("/".join(parts[:end]) for end in range(1, len(parts)))
    return not seen.isdisjoint(folders)


class Stopped(Exception):
    """A member's write given up because a member written beside it failed."""


def write_member(
    root: Path, name: str, reader: BinaryIO, mtime_ns: int, stop: threading.Event | None = None
) -> Path:
    """Write a member's content as ``root/name``; return the path written.

    The content goes to a hidden part file beside the target, renamed over it
    when complete, so the target is never half-written and a symbolic link
    at the target is replaced rather than written through. Once ``stop`` is
    set, the write gives up at its next block: the part file is removed and
    :class:`Stopped` raised.
    """
    if stop is not None and stop.is_set():
        raise Stopped(name)
    # Paths as strings: pathlib's objects cost more than the system calls
    # when a tree of small members is extracted.
    parts = names.normalize(name).split("/")
    base = os.fspath(root)
    if not os.path.isdir(base):  # a stat costs less than a mkdir that fails
        os.makedirs(base, exist_ok=True)
    parent = _safe_parent(base, parts[:-1])
    target = os.path.join(parent, parts[-1])
    try:
        is_folder = stat.S_ISDIR(os.lstat(target).st_mode)  # a link to a folder is replaced
    except FileNotFoundError:
        is_folder = False
    if is_folder:
        raise IsADirectoryError(f"{target} is a folder; can't extract member {name!r} over it")
    part = os.path.join(parent, f".{parts[-1][:200]}.{secrets.token_hex(4)}.pycoffer-part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(part, flags, 0o600)
    try:
        try:
            # A member reader hands out its chunks as they are opened (ahead,
            # on the worker pool): each is written straight from there, with
            # no copy into a file buffer.
            iter_chunks = getattr(reader, "iter_chunks", None)
            blocks = iter_chunks(read_ahead=True) if iter_chunks is not None else iter(lambda: reader.read(_BLOCK), b"")
            try:
                for block in blocks:
                    if stop is not None and stop.is_set():
                        raise Stopped(name)
                    _write_all(fd, block)
            finally:
                close = getattr(blocks, "close", None)
                if close is not None:
                    close()  # chunks still being opened ahead are waited for
        finally:
            os.close(fd)
        os.utime(part, ns=(mtime_ns, mtime_ns))
        os.replace(part, target)
    except BaseException:
        try:
            os.unlink(part)
        except FileNotFoundError:
            pass
        raise
    return Path(target)


class _Once(Generic[T]):
    """``job(stop)``, run by whoever calls first; a later call waits for that
    run and gives its outcome. (A pool that can't start a thread raises from
    ``submit`` yet keeps the task queued: it may still run there.)"""

    def __init__(self, job: Callable[[threading.Event], T], stop: threading.Event) -> None:
        self._job, self._stop = job, stop
        self._claim = threading.Lock()
        self._ran = threading.Event()
        self._outcome: tuple[bool, Any] = (False, None)

    def __call__(self) -> T:
        if self._claim.acquire(blocking=False):
            try:
                self._outcome = (True, self._job(self._stop))
            except BaseException as exc:
                self._outcome = (False, exc)
                if not isinstance(exc, Stopped):
                    self._stop.set()  # the others give up now, wherever they run
                raise
            finally:
                self._ran.set()
            return self._outcome[1]
        self._ran.wait()
        succeeded, value = self._outcome
        if not succeeded:
            raise value
        return value


def _run_here(once: _Once[T]) -> Future[T]:
    """``once()`` on this thread, as a finished future (a failure has told
    the other jobs to stop: see :class:`_Once`)."""
    future: Future[T] = Future()
    try:
        future.set_result(once())
    except Exception as exc:
        future.set_exception(exc)
    return future


def side_by_side(pool: Executor, jobs: Sequence[Callable[[threading.Event], T]]) -> list[T]:
    """Run ``jobs`` on ``pool`` at once; return their results in order.

    Each job is given one shared event, set as soon as a job fails or the
    caller is interrupted; a job checks it between blocks of work and gives
    up (see :func:`write_member`). Every job runs once at most, and has ended
    when this returns or raises (unless a second interrupt cuts that wait
    short: the jobs still give up at their next block). The error raised is
    the first job's in order that failed on its own (not one that only gave
    up), or the caller's interruption. Jobs the pool won't take (at
    interpreter exit, or when no thread can be started) run here, in order.
    """
    stop = threading.Event()
    futures: list[Future[T]] = []
    submitter = Submitter(lambda: pool)
    try:
        for job in jobs:
            once = _Once(job, stop)
            futures.append(submitter.submit(once) or _run_here(once))
        wait(futures, return_when=FIRST_EXCEPTION)
    except BaseException:
        stop.set()  # interrupted: the jobs give up
        raise
    finally:
        if not all(future.done() for future in futures):  # a job failed, or the caller was interrupted
            stop.set()
            for future in futures:
                future.cancel()  # those not started yet
        wait(futures)
    for future in futures:
        if not future.cancelled():
            error = future.exception()
            if error is not None and not isinstance(error, Stopped):
                raise error
    return [future.result() for future in futures]
