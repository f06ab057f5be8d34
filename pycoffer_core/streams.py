"""Sealed streams: external files encrypted with a coffer's keys (``crypt_open``).

Layout (big-endian)::

    magic b"\\x89CFSTRM\\n" | version u8 = 1 | type_len u8 | type name | stream_id[16]
    then chunks:  length u32 | last u8 | sealed[length]

Each chunk is sealed by the type's encrypting layer (the member layer, or the
container layer where only that one encrypts) in the context
``b"pycoffer/stream\\0" + stream_id + chunk_no u64 + last u8``: chunks can't be
reordered, dropped, swapped between streams, or cut off after a non-last
chunk without :class:`IntegrityError`. Memory is bounded by one chunk.
"""

from __future__ import annotations

import io
import os
import struct
from typing import IO, BinaryIO

from .errors import IntegrityError, InvalidArgumentError
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
    def __init__(self, out: BinaryIO, layer: Layer, stream_id: bytes) -> None:
        super().__init__()
        self._out = out
        self._layer = layer
        self._stream_id = stream_id
        self._buffer = bytearray()
        self._chunk_no = 0

    def writable(self) -> bool:
        return True

    def _emit(self, data: bytes, last: bool) -> None:
        sealed = self._layer.seal(data, _context(self._stream_id, self._chunk_no, last))
        self._out.write(_CHUNK_HEAD.pack(len(sealed), last) + sealed)
        self._chunk_no += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._checkClosed()
        with memoryview(data) as view:
            self._buffer += view.cast("B")
            count = view.nbytes
        # Keep a full chunk back: the last chunk must be sealed as last.
        while len(self._buffer) > CHUNK_SIZE:
            self._emit(bytes(self._buffer[:CHUNK_SIZE]), last=False)
            del self._buffer[:CHUNK_SIZE]
        return count

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._emit(bytes(self._buffer), last=True)
            self._out.flush()
            os.fsync(self._out.fileno())
        finally:
            self._out.close()
            super().close()


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


def open_stream(filename: str | os.PathLike[str], mode: str, coffer_type: CofferType) -> IO[bytes]:
    """Open ``filename`` to write (``wb``) or read (``rb``) a sealed stream."""
    layer = _encrypting_layer(coffer_type)
    name = coffer_type.name.encode("ascii")
    if mode == "wb":
        fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        out = open(fd, "wb")
        stream_id = os.urandom(16)
        out.write(MAGIC + bytes([VERSION, len(name)]) + name + stream_id)
        return io.BufferedWriter(_SealingWriter(out, layer, stream_id), buffer_size=CHUNK_SIZE)
    if mode == "rb":
        source = open(filename, "rb")
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
