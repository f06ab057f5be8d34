"""Sealed streams: external files encrypted with a coffer's keys (``crypt_open``).

Layout (big-endian)::

    magic b"\\x89CFSTRM\\n" | version u8 = 1 | type_len u8 | type name | stream_id[16]
    then chunks:  length u32 | last u8 | sealed[length]

Each chunk is sealed by the type's encrypting layer (the member layer, or the
container layer where only that one encrypts) in the context
``b"pycoffer/stream\\0" + stream_id + chunk_no u64 + last u8``: chunks can't be
reordered, dropped, swapped between streams, or cut off after a non-last
chunk without :class:`IntegrityError`. Memory is bounded by one chunk. A
stream being written lives in a part file beside its target until closed.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from pathlib import Path
from typing import IO, BinaryIO, Callable

from . import extraction
from .container.log import fsync_dir
from .errors import ClosedCofferError, CofferNotFoundError, IntegrityError, InvalidArgumentError, UnsafePathError
from .layers import Layer
from .types import CofferType

MAGIC = b"\x89CFSTRM\n"
VERSION = 1
CHUNK_SIZE = 256 * 1024
_CHUNK_HEAD = struct.Struct(">IB")
_CONTEXT = b"pycoffer/stream\x00"
#: A sealed chunk is at most this much larger than its plaintext.
_MAX_EXPANSION = 64 * 1024


def _encrypting_layer(coffer_type: CofferType) -> Layer:
    for layer in (coffer_type.member_layer(), coffer_type.container_layer()):
        if layer.encrypts:
            return layer
    raise InvalidArgumentError(
        f"type {coffer_type.name!r} does not encrypt, so a file sealed with it would not be protected"
    )


def _context(stream_id: bytes, chunk_no: int, last: bool) -> bytes:
    return _CONTEXT + stream_id + struct.pack(">QB", chunk_no, last)


class _SealingWriter(io.RawIOBase):
    """Seals what is written into a part file beside the target, moved over
    the target when closed; :meth:`abort` removes it instead."""

    def __init__(self, part: _PartFile, layer: Layer, stream_id: bytes) -> None:
        super().__init__()
        self._part = part
        self._layer = layer
        self._stream_id = stream_id
        self._buffer = bytearray()
        self._chunk_no = 0
        self._aborted = False
        #: What a failed write raised (its text: the exception itself would
        #: hold this writer in a cycle through its traceback). A chunk is
        #: missing, so nothing is published, and close() says so unless the
        #: writer was aborted (a with block's own exception explains it).
        self._failure: str | None = None

    def writable(self) -> bool:
        return True

    def _emit(self, data: bytes | memoryview, last: bool) -> None:
        sealed = self._layer.seal(bytes(data), _context(self._stream_id, self._chunk_no, last))
        self._part.write(_CHUNK_HEAD.pack(len(sealed), last) + sealed)
        self._chunk_no += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        if self._failure is not None:
            raise ClosedCofferError(f"{self._part.target}: an earlier write failed ({self._failure}); nothing will be written")
        with memoryview(data) as whole:
            view = whole.cast("B")
            count = len(view)
            if self._aborted:
                return count
            try:
                # A chunk is kept back: the last one must be sealed as last.
                # Whole chunks are sealed straight from the caller's bytes,
                # so a large write holds no more than a chunk of its own.
                while len(self._buffer) + len(view) > CHUNK_SIZE:
                    if self._buffer:
                        take = CHUNK_SIZE - len(self._buffer)
                        self._buffer += view[:take]
                        view = view[take:]
                        self._emit(self._buffer, last=False)
                        self._buffer.clear()
                    else:
                        self._emit(view[:CHUNK_SIZE], last=False)
                        view = view[CHUNK_SIZE:]
                self._buffer += view
            except BaseException as exc:
                # A stream with a chunk missing must not be published.
                self._aborted, self._failure = True, repr(exc)
                self._buffer.clear()
                raise
        return count

    def abort(self) -> None:
        """Drop the stream: the part file is removed, the target left as it
        was, and ``close()`` raises nothing (the caller knows why)."""
        self._aborted, self._failure = True, None
        self._buffer.clear()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._aborted:
                self._part.discard()
                if self._failure is not None:
                    raise ClosedCofferError(f"{self._part.target} was not written: a write failed ({self._failure})")
            else:
                try:
                    self._emit(self._buffer, last=True)
                    self._part.publish()
                except BaseException:
                    self._part.discard()
                    raise
        finally:
            super().close()

    def __del__(self) -> None:
        # Collected unclosed (dropped, or in a reference cycle, where the
        # buffered writer around it may be collected after it): publish
        # nothing, as a with block that raised would.
        if not self.closed:
            self.abort()
        super().__del__()


class _PartFile:
    """A new file written beside ``target`` under a hidden name, renamed
    over it only once complete (as an extracted member is): the target is
    never truncated, nor written through if it is a link."""

    def __init__(
        self, target: str | bytes | os.PathLike[str], protected: Callable[[], frozenset[tuple[int, int]]]
    ) -> None:
        self.target = os.path.abspath(os.fsdecode(target))
        self._protected = protected
        folder, leaf = os.path.split(self.target)
        self._refuse_protected()
        self._part = os.path.join(folder, extraction.part_name(leaf))
        try:
            self._fd = os.open(self._part, extraction.NEW_FILE_FLAGS, 0o600)
        except FileNotFoundError:
            raise CofferNotFoundError(f"{folder}: no such folder") from None

    def _refuse_protected(self) -> None:
        """Refuse a target that is a folder, or the coffer or its lock
        (checked again when publishing: the coffer may have been made there
        since)."""
        try:
            info = os.lstat(self.target)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(f"{self.target} is a folder")
        if (info.st_dev, info.st_ino) in self._protected():
            raise UnsafePathError(f"refusing to replace {self.target}: it is the coffer itself, or its lock")

    def write(self, data: bytes) -> None:
        extraction.write_all(self._fd, data)

    def publish(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        self._refuse_protected()
        os.replace(self._part, self.target)
        fsync_dir(Path(self.target).parent)

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            os.unlink(self._part)
        except FileNotFoundError:
            pass


class _StreamFile(io.BufferedWriter):
    """The buffered writer ``crypt_open(..., "wb")`` returns: a ``with``
    block that raises, or a writer dropped unclosed, leaves the target as it
    was instead of publishing a shorter stream."""

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is not None:
            self.raw.abort()  # type: ignore[attr-defined]
        super().__exit__(*exc_info)

    def __del__(self) -> None:
        if not self.closed:
            self.raw.abort()  # type: ignore[attr-defined]
            self.close()


class _OpeningReader(io.RawIOBase):
    def __init__(self, source: BinaryIO, layer: Layer, stream_id: bytes) -> None:
        super().__init__()
        self._source = source
        self._layer = layer
        self._stream_id = stream_id
        self._chunk_no = 0
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> None:
        head = self._source.read(_CHUNK_HEAD.size)
        if len(head) < _CHUNK_HEAD.size:
            raise IntegrityError("sealed file is truncated (its last chunk is missing)")
        length, last = _CHUNK_HEAD.unpack(head)
        if last not in (0, 1) or length > CHUNK_SIZE + _MAX_EXPANSION:
            raise IntegrityError("sealed file is damaged (chunk header)")
        sealed = self._source.read(length)
        if len(sealed) < length:
            raise IntegrityError("sealed file is truncated")
        self._pending = self._layer.open(sealed, _context(self._stream_id, self._chunk_no, bool(last)))
        self._chunk_no += 1
        if last:
            if self._source.read(1):
                raise IntegrityError("sealed file has data after its last chunk")
            self._done = True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        while not self._pending and not self._done:
            self._next_chunk()
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


def open_stream(
    filename: str | os.PathLike[str],
    mode: str,
    coffer_type: CofferType,
    protected: Callable[[], frozenset[tuple[int, int]]] = frozenset,
) -> IO[bytes]:
    """Open ``filename`` to write (``wb``) or read (``rb``) a sealed stream.

    A stream written appears at ``filename`` when closed, whole, never
    before; a write that fails, or a ``with`` block that raises, leaves
    ``filename`` as it was. After a write that failed, ``close()`` raises
    :class:`ClosedCofferError` and publishes nothing (writes that reach the
    sealing writer raise it too; small ones may only be buffered). A file ``protected()``
    names (the coffer's own, see :func:`extraction.own_files`), asked when
    opening and again when publishing, is never replaced
    (:class:`UnsafePathError`).
    """
    layer = _encrypting_layer(coffer_type)
    name = coffer_type.name.encode("ascii")
    if mode == "wb":
        part = _PartFile(filename, protected)
        try:
            stream_id = os.urandom(16)
            part.write(MAGIC + bytes([VERSION, len(name)]) + name + stream_id)
        except BaseException:
            part.discard()
            raise
        return _StreamFile(_SealingWriter(part, layer, stream_id), buffer_size=CHUNK_SIZE)
    if mode == "rb":
        try:
            source = open(filename, "rb")
        except FileNotFoundError:
            raise CofferNotFoundError(f"{filename}: no such file") from None
        try:
            head = source.read(len(MAGIC) + 2)
            if head[: len(MAGIC)] != MAGIC or len(head) < len(MAGIC) + 2:
                raise IntegrityError(f"{filename} is not a file sealed by crypt_open()")
            if head[len(MAGIC)] != VERSION:
                raise IntegrityError(f"{filename}: sealed-file version {head[len(MAGIC)]} is not supported")
            written_by = source.read(head[-1])
            if written_by != name:
                raise IntegrityError(
                    f"{filename} was sealed by a {written_by.decode('ascii', 'replace')!r} coffer, "
                    f"not {coffer_type.name!r}"
                )
            stream_id = source.read(16)
            if len(stream_id) != 16:
                raise IntegrityError(f"{filename} is truncated")
        except BaseException:
            source.close()
            raise
        return io.BufferedReader(_OpeningReader(source, layer, stream_id), buffer_size=CHUNK_SIZE)
    raise InvalidArgumentError(f"crypt_open() mode must be 'rb' or 'wb', not {mode!r}")
