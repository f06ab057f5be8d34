"""The Coffer: one file holding many members, read and written like a folder."""

from __future__ import annotations

import functools
import glob
import io
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from . import extraction, names, plugins
from .container import framing
from .container.base import Container, OpenMode, SealedChunk
from .container.index import Chunk, MemberEntry
from .errors import (
    ClosedCofferError,
    CofferExistsError,
    CofferNotFoundError,
    InvalidArgumentError,
    MemberExistsError,
    MemberNotFoundError,
    NotACofferError,
    ReadOnlyError,
)
from .events import CommitEvent
from .locking import CofferLock
from .memberio import CHUNK_SIZE, MemberReader, MemberWriter, extract_pool, on_worker
from .keyslots import KeySlots, SlotInfo
from .streams import open_stream
from .types import TypeInfo
from .unlock import KeyProvider, Passphrase, RawKeys

_MODES = {"r", "w", "a", "x"}
_FILE_MODES = {"rb", "wb", "ab", "rt", "wt", "at", "r", "w", "a"}
#: Reads of a file being added. Larger than a chunk on purpose: glibc serves
#: a buffer this size from mmap, and freeing it raises malloc's mmap threshold
#: above the chunk size, so the chunk-sized buffers cut from it are reused
#: from the heap. Chunk-sized reads instead each get fresh pages from mmap,
#: which the kernel must fault in and zero: a 1 GiB add ran 15% slower.
_COPY_BLOCK = 1 << 20


def _resolved(filename: str | os.PathLike[str]) -> Path:
    """The coffer file itself, links resolved: its lock, and the renames that
    replace it, must be the same whichever link it is opened through. A link
    to nothing is left as it is: creating a coffer through it would write
    wherever it points (mode ``x`` must find the path taken)."""
    try:
        return Path(os.path.realpath(os.fspath(filename), strict=True))
    except OSError:
        return Path(os.fspath(filename)).absolute()


@dataclass(frozen=True)
class CofferInfo:
    """A member as :meth:`Coffer.getmembers` lists it.

    ``filesize`` is the plain size in bytes; ``mtime`` is in seconds since
    the epoch (``mtime_ns`` in nanoseconds).
    """

    name: str
    filesize: int
    mtime_ns: int

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9

    def __repr__(self) -> str:
        return f"<CofferInfo {self.name!r} {self.filesize} bytes>"


def _parse_mode(mode: object) -> str:
    if not isinstance(mode, str):
        raise InvalidArgumentError(f"mode must be one of 'r', 'w', 'a', 'x' (optionally with 'b'), not {mode!r}")
    core = mode.replace("b", "", 1)
    if core not in _MODES:
        raise InvalidArgumentError(
            f"mode {mode!r} is not supported: use 'r', 'w', 'a' or 'x' (optionally with 'b'); "
            "a coffer has no text mode, open a member with file(name, 'rt') instead"
        )
    return core


def _check_data(data: object, name: object, method: str) -> bytes | bytearray | memoryview:
    if isinstance(name, (bytes, bytearray, memoryview)) and isinstance(data, str):
        raise TypeError(
            f"{method}(arcname, data) takes the member name first, like zipfile.writestr; "
            f"it looks like data came first: call {method}({data!r}, ...)"
        )
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"{method}() data must be bytes-like, not {type(data).__name__}; "
            "encode text first, or use writelines() or file(name, 'wt')"
        )
    if isinstance(data, memoryview) and not data.c_contiguous:
        raise TypeError(f"{method}() data must be contiguous: pass bytes(view) for a strided view")
    return data


def _check_mtime(mtime_ns: object) -> int | None:
    if mtime_ns is None:
        return None
    if not isinstance(mtime_ns, int) or isinstance(mtime_ns, bool) or not -(1 << 63) <= mtime_ns < 1 << 63:
        raise InvalidArgumentError(f"mtime_ns must be an int of nanoseconds since the epoch, not {mtime_ns!r}")
    return mtime_ns


class Coffer:
    """An encrypted, compressed file of many members.

    Open one with :meth:`Coffer.open` (or ``with Coffer(...) as c``). Modes:
    ``r`` read, ``w`` start empty, ``a`` keep content (create if missing),
    ``x`` create, the file must not exist. ``params`` are the type's raw keys
    (see :meth:`gen_params`). ``auto_flush=None`` takes the type's default:
    when on, each change is durable when its call returns. A ``with`` block
    that raises discards what was not committed. ``backup=".bak"`` keeps the
    coffer as it was at open as ``<filename>.bak`` before the first commit.

    The object is thread-safe, and re-entrant: the coffer's methods may be
    called inside ``with coffer.file(...)``. Errors are
    :class:`~pycoffer_core.errors.CofferError` subclasses.
    """

    def __init__(
        self,
        filename: str | os.PathLike[str],
        mode: str = "r",
        *,
        type: str,
        password: str | bytes | None = None,
        auto_flush: bool | None = None,
        backup: str | None = None,
        lock_timeout: float = 1.0,
        lock_type: str = "rw",
        temp_dir: str | os.PathLike[str] | None = None,
        **params: bytes,
    ) -> None:
        if filename is None or not isinstance(filename, (str, os.PathLike)):
            raise InvalidArgumentError(f"filename must be a path, not {filename!r}")
        self._path = _resolved(filename)
        self._mode = _parse_mode(mode)
        type_class = plugins.find_type(type)
        self._type_class = type_class
        if password is not None:
            if params:
                raise InvalidArgumentError("pass either password or the raw keys, not both")
            self._keys: KeyProvider = Passphrase(type_class, password)
        else:
            self._keys = RawKeys(type_class, params)
        if auto_flush is not None and not isinstance(auto_flush, bool):
            raise InvalidArgumentError(f"auto_flush must be True, False or None, not {auto_flush!r}")
        self._auto_flush = type_class.auto_flush if auto_flush is None else auto_flush
        if backup is not None and (not isinstance(backup, str) or not backup or "/" in backup):
            raise InvalidArgumentError(f"backup must be a file-name suffix such as '.bak', not {backup!r}")
        self._backup = backup
        if not isinstance(lock_timeout, (int, float)) or lock_timeout < 0:
            raise InvalidArgumentError(f"lock_timeout must be a number of seconds >= 0, not {lock_timeout!r}")
        self._lock_timeout = float(lock_timeout)
        if lock_type not in ("rw", "w"):
            raise InvalidArgumentError(f"lock_type must be 'rw' or 'w', not {lock_type!r}")
        self._lock_type = lock_type
        self._temp_dir_requested = Path(temp_dir) if temp_dir is not None else None
        self._temp_dir: Path | None = None
        self._guard = threading.RLock()
        self._container: Container | None = None
        self._file_lock: CofferLock | None = None
        self._writers: set[MemberWriter] = set()
        self._closed = False

    # ------------------------------------------------------------ class API

    @classmethod
    def open(cls, filename: str | os.PathLike[str], mode: str = "r", **kwargs: Any) -> Coffer:
        """Create a :class:`Coffer` with these arguments and open it."""
        return cls(filename, mode, **kwargs)._open()

    @staticmethod
    def gen_params(type: str) -> dict[str, bytes]:
        """Fresh random keys for a new coffer of ``type``."""
        return plugins.find_type(type).gen_params()

    @staticmethod
    def type_of(filename: str | os.PathLike[str]) -> str:
        """The type name written in a coffer's header, read without any key.

        Raises :class:`CofferNotFoundError` or :class:`NotACofferError`.
        """
        try:
            fd = os.open(filename, os.O_RDONLY)
        except FileNotFoundError:
            raise CofferNotFoundError(f"no coffer at {filename}") from None
        try:
            header, _ = framing.read_header(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        return header.type_name

    @staticmethod
    def types() -> list[TypeInfo]:
        """The installed coffer types, with their distribution and version."""
        return plugins.type_infos()

    # ------------------------------------------------------------ life cycle

    def _open(self) -> Coffer:
        with self._guard:
            if self._container is not None:
                return self
            if self._closed:
                raise ClosedCofferError(f"{self._path} was closed; open a new Coffer")
            exists = self._path.exists()
            if self._mode == "r" and not exists:
                raise CofferNotFoundError(f"no coffer at {self._path}")
            if self._path.is_dir():
                raise NotACofferError(f"{self._path} is a folder, not a coffer file")
            if not self._path.parent.is_dir():
                raise CofferNotFoundError(f"folder {self._path.parent} does not exist")
            if self._mode == "x" and os.path.lexists(self._path):  # a link to nothing counts
                raise CofferExistsError(f"{self._path} exists (mode 'x' creates a new coffer)")
            if self._lock_type == "rw" or self._mode != "r":
                lock = plugins.lock_for(self._path, self._lock_timeout)
                lock.acquire()
                self._file_lock = lock
            try:
                exists = self._path.exists()
                if self._mode == "x" and exists:
                    raise CofferExistsError(f"{self._path} exists (mode 'x' creates a new coffer)")
                container_mode: OpenMode = {
                    "r": "read",
                    "a": "update" if exists else "new",
                    "w": "new",
                    "x": "exclusive",
                }[self._mode]
                backup = self._path.with_name(self._path.name + self._backup) if self._backup else None
                container_class = plugins.container_class(self._path, self._type_class)
                self._container = container_class(
                    self._path, self._keys, mode=container_mode, backup=backup
                )
            except BaseException:
                self._release_lock()
                raise
            return self

    def __enter__(self) -> Coffer:
        return self._open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._close(commit=False)

    def close(self) -> None:
        """Commit what is pending, compact if dead space is large, release the lock.

        Idempotent. The coffer is closed even if the final commit fails (the
        error propagates and the changes not committed are dropped). A member
        whose :meth:`file` block has not exited yet is not stored: that
        block's next write, or its exit, raises :class:`ClosedCofferError`.
        """
        self._close(commit=True)

    def _close(self, *, commit: bool) -> None:
        with self._guard:
            if self._closed:
                return
            container = self._container
            self._orphan_writers()
            try:
                if container is not None and self._mode != "r" and not container.broken:
                    if commit:
                        self._commit()
                        if container.should_compact():
                            self._compact()
                        elif container.wants_checkpoint():
                            self._commit(checkpoint=True)
                    else:
                        container.discard()
            finally:
                self._closed = True
                self._container = None
                try:
                    if container is not None:
                        container.close()
                finally:
                    self._release_lock()
                    if self._temp_dir is not None:
                        shutil.rmtree(self._temp_dir, ignore_errors=True)
                        self._temp_dir = None

    def _orphan_writers(self) -> None:
        """Drop the members still being written: a written member appears
        when its block exits, and theirs haven't. Their writers raise at
        their next write or close, so whoever writes learns it."""
        for writer in self._writers:
            writer.orphan(f"{self._path} was closed before member {writer.name!r} was finished; it was not stored")
        self._writers.clear()

    def _release_lock(self) -> None:
        if self._file_lock is not None:
            lock, self._file_lock = self._file_lock, None
            lock.release()

    def _require(self, *, write: bool = False) -> Container:
        container = self._container
        if container is None:
            if self._closed:
                raise ClosedCofferError(f"coffer {self._path} is closed")
            raise ClosedCofferError(
                f"coffer {self._path} is not open: use 'with Coffer(...)' or Coffer.open(...)"
            )
        if write and self._mode == "r":
            raise ReadOnlyError(f"coffer {self._path} is open read-only (mode 'r')")
        return container

    # ------------------------------------------------------------ state

    @property
    def name(self) -> str:
        """The coffer's path (absolute; links to an existing file resolved)."""
        return str(self._path)

    @property
    def type(self) -> str:
        """The coffer type's name."""
        return self._type_class.name

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def auto_flush(self) -> bool:
        return self._auto_flush

    @property
    def closed(self) -> bool:
        return self._container is None

    @property
    def readable(self) -> bool:
        self._require()
        return True

    @property
    def writable(self) -> bool:
        self._require()
        return self._mode != "r"

    @property
    def modified(self) -> bool:
        """True when changes are waiting for :meth:`flush`."""
        with self._guard:
            changed, deleted = self._require().pending()
            return bool(changed or deleted)

    @property
    def temp_dir(self) -> Path:
        """A private (0700) scratch folder, made on first use and removed at close.

        Its parent comes from the ``pycoffer_temp_dir`` hook. The default
        container never writes there (uncommitted data goes, sealed, into
        the coffer file itself); the folder is for plugins that need scratch
        space, and anything they put there must be sealed.
        """
        with self._guard:
            self._require()
            if self._temp_dir is None:
                parent = plugins.temp_dir_for(self._path, self._temp_dir_requested)
                self._temp_dir = Path(tempfile.mkdtemp(prefix="pycoffer-", dir=parent))
            return self._temp_dir

    def stats(self) -> dict[str, int]:
        """Sizes in bytes and counts, as of the last commit.

        ``file_size`` (up to the end of the last commit), ``live_bytes``,
        ``index_bytes``, ``dead_bytes``; ``ignored_bytes``: what the file held
        after its last complete commit when it was opened (a commit being
        written or interrupted, or a file cut short or damaged there), which
        is not part of the coffer and which a writer drops; ``members``,
        ``seq`` (commits so far), ``format_version``.
        """
        with self._guard:
            return self._require().stats()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"mode={self._mode!r}"
        return f"<Coffer type={self.type!r} {str(self._path)!r} {state}>"

    # ------------------------------------------------------------ commits

    def flush(self) -> None:
        """Commit pending changes, if any; durable when this returns."""
        with self._guard:
            self._require()
            if self._mode != "r":
                self._commit()

    def _commit(self, *, compaction: bool = False, checkpoint: bool = False) -> None:
        container = self._require(write=True)
        if not (compaction or checkpoint) and not container.needs_commit():
            return
        event = None
        if plugins.commit_hooks_wanted():
            changed, deleted = container.pending()
            event = CommitEvent(self._path, self.type, container.seq + 1, changed, deleted, compaction)
            plugins.before_commit(event)
        if compaction:
            container.compact()
        elif checkpoint:
            container.commit(checkpoint=True)
        else:
            container.commit()
        if event is not None:
            plugins.after_commit(event)

    def _changed(self) -> None:
        """After a change: with auto flush, commit it, or undo it if that fails.

        A call that raised must leave no trace, or a later commit would store
        the change its caller was told had failed.
        """
        if not self._auto_flush:
            return
        try:
            self._commit()
        except BaseException:
            container = self._container
            if container is not None and not container.broken:
                container.discard(keep_bytes=bool(self._writers))
            raise

    def compact(self) -> None:
        """Commit pending changes, then rewrite the file without dead space (crash-safe).

        Refused (:class:`InvalidArgumentError`) while a member is being
        written: the new file would not hold what its writer has stored.
        """
        with self._guard:
            self._require(write=True)
            if self._writers:
                being_written = ", ".join(sorted(repr(writer.name) for writer in self._writers))
                raise InvalidArgumentError(
                    f"can't compact {self._path} while member {being_written} is being written; "
                    "close its file first"
                )
            self._commit()
            self._compact()

    def _compact(self) -> None:
        self._commit(compaction=True)

    def verify(self) -> None:
        """Read and authenticate every record, dead ones included.

        Raises :class:`~pycoffer_core.errors.IntegrityError` describing the
        first problem found.
        """
        with self._guard:
            self._require().verify()

    # ------------------------------------------------------------ passphrases

    def key_slots(self) -> list[SlotInfo]:
        """The passphrase slots (empty for a coffer used only with raw keys)."""
        with self._guard:
            return KeySlots.decode(self._require().keyslots).infos()

    def add_password(self, new: str | bytes) -> None:
        """Let passphrase ``new`` open this coffer too (one KDF run; no data re-encrypted)."""
        with self._guard:
            container = self._require(write=True)
            slots = KeySlots.decode(container.keyslots)
            keys = container.coffer_type.params
            container.write_keyslots(slots.with_password(new, container.coffer_id, keys).encode())

    def remove_password(self, old: str | bytes) -> None:
        """Stop passphrase ``old`` opening this coffer.

        Refused (:class:`InvalidArgumentError`) when it is the last slot and
        the coffer was opened with a passphrase: nothing else would open it.
        """
        with self._guard:
            container = self._require(write=True)
            remaining = KeySlots.decode(container.keyslots).without_password(old, container.coffer_id)
            if not remaining.slots and self._keys.uses_password:
                raise InvalidArgumentError(
                    "refusing to remove the last passphrase: nothing else would open this "
                    "coffer (add another passphrase first)"
                )
            container.write_keyslots(remaining.encode())

    def remove_key_slot(self, index: int) -> None:
        """Remove key slot ``index`` (see :meth:`key_slots`) without knowing its
        passphrase: the way to revoke a forgotten one.

        Refused when it is the last slot and the coffer was opened with a
        passphrase: nothing else would open it.
        """
        with self._guard:
            container = self._require(write=True)
            slots = KeySlots.decode(container.keyslots)
            if not isinstance(index, int) or not 0 <= index < len(slots.slots):
                raise InvalidArgumentError(f"no key slot {index!r} (slots: {len(slots.slots)})")
            remaining = KeySlots(slots.kdf, slots.slots[:index] + slots.slots[index + 1 :])
            if not remaining.slots and self._keys.uses_password:
                raise InvalidArgumentError("refusing to remove the last key slot: nothing else would open this coffer")
            container.write_keyslots(remaining.encode())

    def change_password(self, old: str | bytes, new: str | bytes) -> None:
        """Replace passphrase ``old`` with ``new`` in one crash-safe step."""
        with self._guard:
            container = self._require(write=True)
            slots = KeySlots.decode(container.keyslots).without_password(old, container.coffer_id)
            keys = container.coffer_type.params
            container.write_keyslots(slots.with_password(new, container.coffer_id, keys).encode())

    def crypt_open(self, filename: str | os.PathLike[str], mode: str = "rb") -> IO[bytes]:
        """A file object that encrypts (``wb``) or decrypts (``rb``) an external file.

        Uses the coffer's keys; the file is sealed in authenticated chunks
        bound to their position and to the end of the stream, so any change,
        reordering or truncation raises :class:`IntegrityError` when read.
        Written, the file appears whole when closed, never before: a ``with``
        block that raises leaves ``filename`` as it was. It never replaces
        the coffer or its lock (:class:`UnsafePathError`); a missing file or
        folder raises :class:`CofferNotFoundError`.
        """
        with self._guard:
            container = self._require()
            return open_stream(filename, mode, container.coffer_type, functools.partial(extraction.own_files, self._path))

    # ------------------------------------------------------------ members

    def _entry(self, arcname: object) -> MemberEntry:
        name = names.normalize(arcname)
        entry = self._require().entries.get(name)
        if entry is None:
            raise MemberNotFoundError(f"no member {name!r} in {self._path}")
        return entry

    def getmembers(self) -> list[CofferInfo]:
        """Every member, sorted by name."""
        with self._guard:
            entries = self._require().entries
            return [CofferInfo(e.name, e.size, e.mtime_ns) for _, e in sorted(entries.items())]

    def getmember(self, arcname: str) -> CofferInfo:
        """One member's info, or :class:`MemberNotFoundError`."""
        with self._guard:
            entry = self._entry(arcname)
            return CofferInfo(entry.name, entry.size, entry.mtime_ns)

    def __contains__(self, arcname: object) -> bool:
        with self._guard:
            return names.normalize(arcname) in self._require().entries

    def _reader(self, arcname: object) -> MemberReader:
        with self._guard:
            entry = self._entry(arcname)
            return MemberReader(self._require().chunk_source(entry), entry)

    def _writer(
        self, arcname: object, *, append: bool, mtime_ns: int | None = None, commit: bool = True
    ) -> MemberWriter:
        with self._guard:
            container = self._require(write=True)
            name = names.normalize(arcname)
            base = container.entries.get(name) if append else None
            writer = MemberWriter(
                name,
                base.member_id if base else container.new_member_id(),
                base,
                self._seal_chunk,
                self._store_sealed,
                self._finish_writer if commit else self._finish_writer_in_batch,
                (lambda: mtime_ns) if mtime_ns is not None else time.time_ns,
                self._forget_writer,
            )
            self._writers.add(writer)
            return writer

    def _seal_chunk(self, member_id: bytes, chunk_no: int, data: bytes) -> SealedChunk:
        # No lock: sealing is pure, and runs on several threads for big members.
        return self._require(write=True).seal_chunk(member_id, chunk_no, data)

    def _store_sealed(self, sealed: SealedChunk) -> Chunk:
        with self._guard:
            return self._require(write=True).store_sealed(sealed)

    def _forget_writer(self, writer: MemberWriter) -> None:
        """A writer ended (its member stored, or not): nothing counts as being
        written by it any more, whoever closed it."""
        with self._guard:
            self._writers.discard(writer)

    def _finish_writer(self, writer: MemberWriter, entry: MemberEntry) -> None:
        with self._guard:
            self._finish_writer_in_batch(writer, entry)
            self._changed()

    def _finish_writer_in_batch(self, writer: MemberWriter, entry: MemberEntry) -> None:
        """Register a written member; the caller commits the batch."""
        with self._guard:
            self._writers.discard(writer)
            self._require(write=True).put(entry)

    def read(self, arcname: str) -> bytes:
        """The whole content of a member."""
        with self._reader(arcname) as reader:
            return reader.readall()

    def write(self, arcname: str, data: bytes, *, mtime_ns: int | None = None) -> None:
        """Create or replace a member with ``data``.

        ``mtime_ns`` sets its modification time (nanoseconds since the epoch;
        default: now).
        """
        _check_data(data, arcname, "write")
        mtime_ns = _check_mtime(mtime_ns)
        with self._guard:
            if memoryview(data).nbytes <= CHUNK_SIZE:
                self._write_one_chunk(arcname, bytes(data), mtime_ns)
                return
            writer = self._writer(arcname, append=False, mtime_ns=mtime_ns)
            self._fill(writer, (data,))

    def _write_one_chunk(self, arcname: object, data: bytes, mtime_ns: int | None) -> None:
        """``write()`` of at most one chunk (see :meth:`_put_one_chunk`)."""
        self._put_one_chunk(arcname, data, mtime_ns)
        self._changed()

    def _put_one_chunk(self, arcname: object, data: bytes, mtime_ns: int | None) -> None:
        """Store a member of at most one chunk, uncommitted: the entry a
        :class:`MemberWriter` would make, without the writer (a small write's
        commit, or a small file's share of an add, is short, so its fixed
        costs show; see ``benchmarks/``)."""
        container = self._require(write=True)
        name = names.normalize(arcname)
        member_id = container.new_member_id()
        chunks: tuple[Chunk, ...] = ()
        if data:
            chunks = (container.store_sealed(container.seal_chunk(member_id, 0, data)),)
        mtime = time.time_ns() if mtime_ns is None else mtime_ns
        container.put(MemberEntry(name, member_id, len(data), mtime, chunks))

    def append(self, arcname: str, data: bytes) -> None:
        """Add ``data`` at the end of a member (created if missing)."""
        _check_data(data, arcname, "append")
        with self._guard:
            writer = self._writer(arcname, append=True)
            self._fill(writer, (data,))

    def _fill(self, writer: MemberWriter, blocks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write ``blocks`` and finish the member; on any error leave it as it was."""
        try:
            for block in blocks:
                writer.write(block)
            writer.close()
        except BaseException:
            self._abandon(writer)
            raise

    def _abandon(self, writer: MemberWriter) -> None:
        writer.abort()
        writer.close()  # unregisters it (see _forget_writer), if its own close hasn't yet

    def writelines(self, arcname: str, lines: Iterable[str], encoding: str = "utf-8") -> None:
        """Write ``lines`` as a text member, each followed by a newline."""
        if isinstance(lines, (str, bytes)):
            raise TypeError("writelines() takes an iterable of lines, not a single string")
        self.write(arcname, "".join(f"{line}\n" for line in lines).encode(encoding))

    def readlines(self, arcname: str, encoding: str = "utf-8") -> list[str]:
        """The lines of a text member, without their newlines."""
        lines = self.read(arcname).decode(encoding).split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return lines

    @contextmanager
    def file(
        self,
        arcname: str,
        mode: str = "rb",
        encoding: str | None = None,
        *,
        mtime_ns: int | None = None,
    ) -> Iterator[IO[Any]]:
        """A file object on a member, for a ``with`` block.

        Modes ``rb``, ``wb``, ``ab`` and their text forms ``rt``, ``wt``,
        ``at`` (``encoding`` defaults to UTF-8). Reading is seekable and
        streams chunk by chunk. A written member appears when the block
        exits (durably, with auto flush); if the block raises, the member is
        left as it was. Once a write has failed (the disk full, say), the
        member can't be finished: later writes, and the block's exit, raise
        :class:`ClosedCofferError`, and the member is left as it was.
        ``mtime_ns`` sets a written member's modification time (default:
        when the block exits).
        """
        if mode not in _FILE_MODES:
            raise InvalidArgumentError(f"file mode must be one of rb, wb, ab, rt, wt, at, not {mode!r}")
        text = "t" in mode or "b" not in mode
        if text and encoding is None:
            encoding = "utf-8"
        elif not text and encoding is not None:
            raise InvalidArgumentError("binary mode doesn't take an encoding argument")
        if mode[0] == "r":
            raw_reader = self._reader(arcname)
            stream: IO[Any] = io.BufferedReader(raw_reader, buffer_size=64 * 1024)
            if text:
                stream = io.TextIOWrapper(stream, encoding=encoding)  # type: ignore[arg-type]
            with stream:
                yield stream
            return
        writer = self._writer(arcname, append=mode[0] == "a", mtime_ns=_check_mtime(mtime_ns))
        try:
            buffered = io.BufferedWriter(writer, buffer_size=64 * 1024)
            stream = io.TextIOWrapper(buffered, encoding=encoding) if text else buffered  # type: ignore[assignment]
        except BaseException:  # an unknown encoding, say: the member stays as it was
            self._abandon(writer)
            raise
        try:
            yield stream
        except BaseException:
            writer.abort()
            stream.close()  # flushes into the aborted writer, which drops it
            self._abandon(writer)
            raise
        try:
            stream.close()  # the last flush, then the writer finishes the member
        except BaseException:
            self._abandon(writer)
            raise

    def delete(self, arcname: str) -> None:
        """Remove a member; :class:`MemberNotFoundError` if there is none."""
        with self._guard:
            container = self._require(write=True)
            entry = self._entry(arcname)
            container.delete(entry.name)
            self._changed()

    def rename(self, old: str, new: str, *, replace: bool = False) -> None:
        """Give a member another name, without copying its data."""
        with self._guard:
            container = self._require(write=True)
            entry = self._entry(old)
            new_name = names.normalize(new)
            if new_name == entry.name:
                return
            if new_name in container.entries and not replace:
                raise MemberExistsError(f"member {new_name!r} exists (pass replace=True)")
            container.put(MemberEntry(new_name, entry.member_id, entry.size, entry.mtime_ns, entry.chunks))
            container.delete(entry.name)
            self._changed()

    # ------------------------------------------------------------ trees

    def add(
        self,
        filename: str | os.PathLike[str],
        arcname: str | None = None,
        replace: bool = True,
        *,
        follow_symlinks: bool = False,
    ) -> list[str]:
        """Store a file, or a directory tree, as members; return their names.

        ``arcname`` defaults to the source's base name. The source's mtimes
        are kept. With ``replace=False`` an existing member raises
        :class:`MemberExistsError` before anything changes. Symbolic links
        inside a tree are stored as the file they point to when that file is
        inside the tree; others are skipped unless ``follow_symlinks``. The
        coffer's own file and lock file are never added to it, nor special
        files (FIFOs, devices) inside a tree; given as the source, such a
        file raises :class:`InvalidArgumentError`. A file swapped after the
        tree was read (for another file, or through a link) raises
        :class:`UnsafePathError`, and a folder that can't be read its
        ``PermissionError``. The whole call is one commit: if it fails, the
        coffer is as before.
        """
        source = Path(os.fspath(filename))
        base_name = extraction.base_name_of(source, arcname)
        plan = extraction.plan_add(
            source,
            base_name,
            follow_symlinks=follow_symlinks,
            exclude=(
                self._path,
                Path(f"{self._path}.lock"),
                # Being built: the name is escaped, or "[1]" in it would be a pattern.
                *self._path.parent.glob(f".{glob.escape(self._path.name)}.*.pycoffer-*"),
            ),
        )
        self._add_planned(plan, replace=replace)
        return [planned.name for planned in plan]

    def _add_planned(self, plan: list[extraction.Planned], *, replace: bool) -> None:
        """Store the files of ``plan`` as one change, or change nothing (see
        :meth:`add`). The CLI calls it file by file, for its progress bar,
        with the identities its own plan took."""
        with self._guard:
            container = self._require(write=True)
            if not replace:
                for planned in plan:
                    if planned.name in container.entries:
                        raise MemberExistsError(f"member {planned.name!r} exists (pass replace=True to overwrite)")
            before = {planned.name: container.entries.get(planned.name) for planned in plan}
            try:
                for planned in plan:
                    self._add_file(planned)
            except BaseException:
                for name, old in before.items():
                    if old is None:
                        container.delete(name)
                    else:
                        container.put(old)
                raise
            self._changed()

    def _add_file(self, planned: extraction.Planned) -> None:
        name = planned.name
        with extraction.open_source(planned) as source:
            stat = os.fstat(source.fileno())
            blocks: Iterable[bytes] = iter(lambda: source.read(_COPY_BLOCK), b"")
            if stat.st_size <= CHUNK_SIZE:
                head = source.read(stat.st_size + 1)  # one byte more: has it grown since?
                if len(head) <= stat.st_size:
                    self._put_one_chunk(name, head, stat.st_mtime_ns)
                    return
                blocks = itertools.chain((head,), blocks)
            writer = self._writer(name, append=False, mtime_ns=stat.st_mtime_ns, commit=False)
            self._fill(writer, blocks)

    def extract(self, arcname: str, path: str | os.PathLike[str] = ".") -> list[str]:
        """Write a member, or every member under a directory prefix, as ``path/arcname``.

        Returns the paths written. Never writes outside ``path``, through a
        symbolic link in it, or over the coffer itself or its lock file
        (:class:`UnsafePathError`); files are created 0600, their mtimes kept.
        Members of more than one chunk are written side by side on worker
        threads. If a member can't be written, its error is raised once no
        thread writes any more: the members written are whole, the others
        are not written, and no partial file is left.
        """
        name = names.normalize(arcname)
        with self._guard:
            entries = self._require().entries
            if name in entries:
                chosen = [entries[name]]
            else:
                chosen = [e for n, e in sorted(entries.items()) if names.is_under(n, name)]
            if not chosen:
                raise MemberNotFoundError(f"no member or folder {name!r} in {self._path}")
        return self._extract_entries(chosen, Path(path))

    def extractall(
        self, path: str | os.PathLike[str] = ".", members: Iterable[str | CofferInfo] | None = None
    ) -> list[str]:
        """Write every member (or those in ``members``) under ``path``, as
        :meth:`extract` writes them."""
        with self._guard:
            entries = self._require().entries
            if members is None:
                chosen = [e for _, e in sorted(entries.items())]
            else:
                chosen = [self._entry(m.name if isinstance(m, CofferInfo) else m) for m in members]
        return self._extract_entries(chosen, Path(path))

    def _extract_entries(self, entries: list[MemberEntry], root: Path) -> list[str]:
        """Write ``entries`` under ``root``; return their paths, in order.

        Members of more than one chunk are written first, side by side on the
        extract pool: reading, opening and writing their chunks runs outside
        the GIL, so they use every core. The others follow on this thread:
        their cost is Python work per file, which a second thread would only
        contend for. If a member fails, those being written beside it give
        up, members not started are not written, and the error is raised
        once no thread writes any more; every member written is whole. Two
        members of which one would be a folder of the other (``a`` and
        ``a/b``) are refused before anything is written.
        Members whose paths overlap (``a`` and ``a/b``; names equal but for
        case, on a file system that ignores it) are written one after
        another, in order, so which one fails does not depend on timing.
        """
        extraction.refuse_file_folder_clash([entry.name for entry in entries])
        large = [index for index, entry in enumerate(entries) if len(entry.chunks) > 1]
        protected = extraction.own_files(self._path)
        paths: dict[int, str] = {}
        if len(large) > 1 and not on_worker() and not extraction.paths_overlap([e.name for e in entries]):
            # The readers are made here: a job must not wait for the coffer's
            # lock, which a thread writing a large member holds while it
            # waits for the pool to seal its chunks.
            readers = [self._member_reader(entries[index]) for index in large]
            try:
                jobs = [functools.partial(self._write_out, reader, root, protected) for reader in readers]
                paths.update(zip(large, extraction.side_by_side(extract_pool(), jobs)))
            finally:
                for reader in readers:
                    reader.close()
        folders = extraction.Folders()  # the small members, in name order, share their folders
        try:
            for index, entry in enumerate(entries):
                if index not in paths:
                    paths[index] = self._write_out(self._member_reader(entry), root, protected, folders=folders)
        finally:
            folders.close()
        return [paths[index] for index in range(len(entries))]

    def _member_reader(self, entry: MemberEntry) -> MemberReader:
        with self._guard:
            return MemberReader(self._require().chunk_source(entry), entry)

    @staticmethod
    def _write_out(
        reader: MemberReader,
        root: Path,
        protected: frozenset[tuple[int, int]],
        stop: threading.Event | None = None,
        *,
        folders: extraction.Folders | None = None,
    ) -> str:
        """Write the member ``reader`` reads as a file under ``root``, never
        over one of ``protected`` (see :func:`extraction.write_member`);
        needs no lock, so it may run on the worker pool."""
        with reader:
            entry = reader.entry
            return extraction.write_member(root, entry.name, reader, entry.mtime_ns, stop, protected, folders=folders)
