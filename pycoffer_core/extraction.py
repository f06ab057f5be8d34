"""Moving files between the file system and a coffer, safely.

Adding walks a tree without leaving it through symbolic links; extracting
never writes outside its destination nor through a symbolic link in it, and
a member appears there whole or not at all.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, wait
from pathlib import Path
from typing import Any, BinaryIO, Generic, NamedTuple, NoReturn, TypeVar

from . import names
from .errors import CofferNotFoundError, InvalidArgumentError, UnsafePathError
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


class Planned(NamedTuple):
    """A file :func:`plan_add` chose: where it is, the member name it gets,
    and its identity then (device, inode), checked again when it is read."""

    path: Path
    name: str
    identity: tuple[int, int]


def _walk(source: Path, follow_symlinks: bool) -> Iterator[tuple[str, list[os.DirEntry[str]]]]:
    """Each folder of the tree at ``source`` (a relative POSIX path, ``.``
    for the top) with its entries that are not folders to walk into, sorted;
    depth first, a folder's files before its subfolders.

    Iterative, so any depth works; an unreadable folder raises (a tree is
    added whole or not at all). Following links, a link back to a folder
    being walked is skipped: it would repeat the tree without end.
    """
    top = os.stat(source)
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (os.fspath(source), ".", frozenset({(top.st_dev, top.st_ino)}))
    ]
    while stack:
        folder, relative, above = stack.pop()
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        others, subfolders = [], []
        for entry in entries:
            try:
                walk_in = entry.is_dir(follow_symlinks=follow_symlinks)
                if not walk_in and not follow_symlinks and entry.is_symlink() and entry.is_dir():
                    continue  # a link to a folder, not followed: as os.walk does
            except OSError:
                walk_in = False
            if not walk_in:
                others.append(entry)
                continue
            info = entry.stat(follow_symlinks=True)
            identity = (info.st_dev, info.st_ino)
            if identity in above:
                continue  # a link back up the tree
            child = entry.name if relative == "." else f"{relative}/{entry.name}"
            subfolders.append((entry.path, child, above | {identity}))
        yield relative, others
        stack.extend(reversed(subfolders))


def base_name_of(source: Path, arcname: str | None) -> str:
    """The member name ``source`` is added under: ``arcname``, or its base
    name (``.`` is named after the folder it is). A missing source, or a
    link to nothing, raises :class:`CofferNotFoundError`."""
    if not os.path.lexists(source):
        raise CofferNotFoundError(f"no file or folder at {source}")
    if not os.path.exists(source):
        raise CofferNotFoundError(f"{source} is a symbolic link to nothing")
    return names.normalize(arcname if arcname is not None else os.path.basename(os.path.abspath(source)))


def plan_add(source: Path, base_name: str, *, follow_symlinks: bool, exclude: tuple[Path, ...] = ()) -> list[Planned]:
    """The files that adding ``source`` as ``base_name`` stores, with their member names.

    A symbolic link is followed when ``follow_symlinks`` is set, or when it
    points to a regular file inside the tree; other links are skipped, so a
    link in a tree can't pull in a file from elsewhere. Files that are one of
    ``exclude`` (compared by identity, so links and other spellings count)
    are left out: a coffer must not be fed into itself. Special files
    (FIFOs, devices, sockets) are skipped inside a tree; as ``source``
    itself they raise :class:`InvalidArgumentError`, as reading one may
    never end.
    """
    excluded = _identities(exclude)
    info = os.stat(source)
    if not stat.S_ISDIR(info.st_mode):
        if not stat.S_ISREG(info.st_mode):
            raise InvalidArgumentError(f"{source} is not a regular file nor a folder; can't add it")
        if (info.st_dev, info.st_ino) in excluded:
            return []
        path = source.resolve() if source.is_symlink() else source
        return [Planned(path, base_name, (info.st_dev, info.st_ino))]
    root = source.resolve()
    plan = []
    for relative, entries in _walk(source, follow_symlinks):
        prefix = base_name if relative == "." else f"{base_name}/{relative}"
        for entry in entries:
            path = Path(entry.path)
            try:
                # One lstat tells links, kinds and identities apart: a tree
                # of many small files pays this per file.
                info = entry.stat(follow_symlinks=False)
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
            plan.append(Planned(stored, names.normalize(f"{prefix}/{entry.name}"), (info.st_dev, info.st_ino)))
    return plan


def open_source(planned: Planned) -> BinaryIO:
    """Open a planned file for reading, refusing anything but the file that
    was planned: a link at its end is not followed, and a file swapped
    meanwhile (for another file, a FIFO, or through a folder swapped for a
    link) raises :class:`UnsafePathError`."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(planned.path, flags)  # non-blocking: a FIFO put there must not hang the open
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"{planned.path} became a symbolic link while the tree was added") from None
        raise
    try:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != planned.identity or not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(f"{planned.path} was replaced while the tree was added")
        os.set_blocking(fd, True)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: Flags that create a new file: never one already there, never through a link.
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def part_name(leaf: str) -> str:
    """The hidden name a file is written under beside ``leaf`` until it is
    whole, then renamed to ``leaf``. Cut by bytes: a name of 255 bytes must
    fit."""
    stem = leaf.encode("utf-8", "surrogateescape")[:200].decode("utf-8", "ignore")
    return f".{stem}.{secrets.token_hex(4)}.pycoffer-part"


def _open_parent(root: str, parts: list[str]) -> int:
    """A descriptor of the folder ``root/parts...``, made as needed (0700).

    Walked one folder at a time, each opened relative to the one before
    without following a symbolic link: a folder swapped for a link while a
    member is extracted fails the walk, rather than leading it out of
    ``root``. (``root`` itself is followed if it is a link, as ``tar -C``
    does: the caller chose it.)
    """
    fd = _open_root(root)
    current = root
    try:
        for part in parts:
            current = os.path.join(current, part)
            child = _subfolder(part, fd, current)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_root(root: str) -> int:
    """A descriptor of the destination ``root``, made (with its parents) if missing."""
    try:
        return os.open(root, _DIRECTORY_FLAGS)
    except FileNotFoundError:
        os.makedirs(root, exist_ok=True)
        return os.open(root, _DIRECTORY_FLAGS)


def _subfolder(part: str, parent_fd: int, shown: str) -> int:
    """The folder ``part`` of ``parent_fd``, made (0700) if missing; never
    followed if it is a link (see :func:`_open_folder`)."""
    try:
        return _open_folder(part, parent_fd, shown)
    except FileNotFoundError:
        try:
            os.mkdir(part, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            pass  # made meanwhile (by a member written beside this one, or by someone else)
        return _open_folder(part, parent_fd, shown)


def _open_folder(part: str, parent_fd: int, shown: str) -> int:
    """The folder ``part`` of ``parent_fd``, not followed if it is a link:
    :class:`UnsafePathError` if it is a link or a file (a missing one raises
    its ``FileNotFoundError``)."""
    try:
        return os.open(part, _DIRECTORY_FLAGS | _NOFOLLOW, dir_fd=parent_fd)
    except OSError as exc:
        _refuse_folder(part, parent_fd, shown, exc)


def _refuse_folder(part: str, parent_fd: int, shown: str, exc: OSError) -> NoReturn:
    """Raise the error that says why ``part`` can't be walked into."""
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
        raise exc
    try:
        mode = os.lstat(part, dir_fd=parent_fd).st_mode
    except OSError:
        raise exc from None
    if stat.S_ISLNK(mode):
        raise UnsafePathError(f"refusing to extract through the symbolic link {shown}") from None
    raise UnsafePathError(f"{shown} is a file where a folder is needed") from None


class Folders:
    """The folder that the last member went to, kept open for the next one.

    Members are extracted in name order, so one after another land in the
    same folder: its descriptor is reused rather than walked to again. The
    descriptor stays the folder it was even if its path is swapped meanwhile.
    For one thread; :meth:`close` when the extraction ends.
    """

    def __init__(self) -> None:
        self._key: tuple[str, tuple[str, ...]] | None = None
        self._fd = -1

    def open(self, root: str, parts: list[str]) -> int:
        """The descriptor of ``root/parts...`` (see :func:`_open_parent`),
        owned by this object: the caller must not close it."""
        key = (root, tuple(parts))
        if key != self._key:
            fd = _open_parent(root, parts)
            self.close()
            self._key, self._fd = key, fd
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._key, self._fd = None, -1


def own_files(coffer_path: Path) -> frozenset[tuple[int, int]]:
    """The identities (device, inode) of a coffer's file and lock file, which
    an extraction must never replace (the lock is beside the file a link
    names)."""
    coffer_path = Path(os.path.realpath(coffer_path))
    return frozenset(_identities((coffer_path, Path(f"{coffer_path}.lock"))))


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less)."""
    with memoryview(data) as view:
        while view:
            view = view[os.write(fd, view) :]


def _folders_of(name: str) -> list[str]:
    """The folders a member name sits in: ``a/b/c`` is in ``a`` and ``a/b``."""
    parts = name.split("/")
    return ["/".join(parts[:end]) for end in range(1, len(parts))]


def refuse_file_folder_clash(names_: Sequence[str]) -> None:
    """Raise :class:`UnsafePathError` if one member name is a folder of
    another (``a`` and ``a/b``): extracting both can't succeed, so an
    extraction checks this before it writes anything."""
    chosen = set(names_)
    for name in names_:
        for folder in _folders_of(name):
            if folder in chosen:
                raise UnsafePathError(
                    f"members {folder!r} and {name!r} can't both be extracted: {folder!r} would be "
                    "a file and a folder (extract them one at a time, elsewhere)"
                )


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
        folders.update(_folders_of(folded))
    return not seen.isdisjoint(folders)


class Stopped(Exception):
    """A member's write given up because a member written beside it failed."""


def write_member(
    root: Path,
    name: str,
    reader: BinaryIO,
    mtime_ns: int,
    stop: threading.Event | None = None,
    protected: frozenset[tuple[int, int]] = frozenset(),
    folders: Folders | None = None,
) -> str:
    """Write a member's content as ``root/name``; return the path written.

    The content goes to a hidden part file beside the target, renamed over it
    when complete, so the target is never half-written and a symbolic link
    at the target is replaced rather than written through. Every step is
    taken relative to the folder's descriptor (see :func:`_open_parent`).
    A target that is one of ``protected`` (see :func:`own_files`) is refused
    with :class:`UnsafePathError`. Once ``stop`` is set, the write gives up
    at its next block: the part file is removed and :class:`Stopped` raised.
    ``folders`` keeps the folder open for the next member (one thread only).
    """
    if stop is not None and stop.is_set():
        raise Stopped(name)
    # Paths as strings: pathlib's objects cost more than the system calls
    # when a tree of small members is extracted.
    parts = names.normalize(name).split("/")
    base = os.fspath(root)
    shown = os.path.join(base, *parts)
    leaf = parts[-1]
    folder = folders.open(base, parts[:-1]) if folders is not None else _open_parent(base, parts[:-1])
    try:
        try:
            info = os.lstat(leaf, dir_fd=folder)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISDIR(info.st_mode):  # a link to a folder is replaced
                raise IsADirectoryError(f"{shown} is a folder; can't extract member {name!r} over it")
            if (info.st_dev, info.st_ino) in protected:
                raise UnsafePathError(f"refusing to replace {shown}: it is the coffer being read, or its lock")
        part = part_name(leaf)
        fd = os.open(part, NEW_FILE_FLAGS, 0o600, dir_fd=folder)
        try:
            try:
                _copy_into(fd, reader, name, stop)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
            os.replace(part, leaf, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            try:
                os.unlink(part, dir_fd=folder)
            except FileNotFoundError:
                pass
            raise
    finally:
        if folders is None:
            os.close(folder)
    return shown


def _copy_into(fd: int, reader: BinaryIO, name: str, stop: threading.Event | None) -> None:
    # A member reader hands out its chunks as they are opened (ahead, on the
    # worker pool): each is written straight from there, with no copy into a
    # file buffer.
    iter_chunks = getattr(reader, "iter_chunks", None)
    blocks = iter_chunks(read_ahead=True) if iter_chunks is not None else iter(lambda: reader.read(_BLOCK), b"")
    try:
        for block in blocks:
            if stop is not None and stop.is_set():
                raise Stopped(name)
            write_all(fd, block)
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()  # chunks still being opened ahead are waited for


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
