"""The chunk-record stream of ``cofferfile`` 0.0.10, read one record at a time.

A stream is ``header(32) || body(N)`` records up to end of file, with no
file header, counter or end marker: the header is ``N`` as a little-endian
uint32 followed by 28 reserved zero bytes; each body is one sealed chunk.
Bodies are independent, so reading needs one body in memory at a time.

Own code rather than cofferfile's: this reader must not import the old
library, must bound a hostile record length, and must tell a truncated
stream from a damaged one, which cofferfile does not.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import BinaryIO

HEADER_SIZE = 32
_RESERVED = bytes(HEADER_SIZE - 4)
#: Longest body accepted. Upstream writes at most 65504 plaintext bytes per
#: chunk; sealed, that is under 64 KiB for NaCl and AES and about 87 KiB for
#: a (base64) Fernet token. Anything far larger is not an upstream record.
MAX_BODY = 1 << 20


class LayerError(Exception):
    """A layer of an old coffer can't be read.

    ``kind`` is ``truncated``, ``structure`` or ``auth``; ``layer`` is
    ``container`` or ``member``; ``index`` the record number (-1 when the
    layer has no records). Internal: :mod:`.reader` turns it into a public
    error that names the file and member and says what to do.
    """

    def __init__(self, kind: str, index: int, message: str, layer: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.index = index
        self.layer = layer


class AuthFailure(Exception):
    """Raised by a body decrypter: the body does not authenticate under the key."""


def parse_header(header: bytes, index: int) -> int:
    """The body length in a 32-byte record header, or :class:`LayerError`."""
    (length,) = struct.unpack_from("<I", header)
    if header[4:] != _RESERVED:
        raise LayerError("structure", index, f"record {index} has non-zero reserved header bytes")
    if not 0 < length <= MAX_BODY:
        raise LayerError("structure", index, f"record {index} claims a body of {length} bytes")
    return length


def looks_like_records(data: bytes) -> bool:
    """True if ``data`` starts with a plausible record header."""
    if len(data) < HEADER_SIZE:
        return False
    try:
        parse_header(data[:HEADER_SIZE], 0)
    except LayerError:
        return False
    return True


def _read_exact(raw: BinaryIO, size: int) -> bytes:
    parts = []
    while size:
        block = raw.read(size)
        if not block:
            break
        parts.append(block)
        size -= len(block)
    return b"".join(parts)


def read_record(raw: BinaryIO, index: int) -> bytes | None:
    """The next record's sealed body, or ``None`` at a clean end of stream."""
    header = _read_exact(raw, HEADER_SIZE)
    if not header:
        return None
    if len(header) < HEADER_SIZE:
        raise LayerError("truncated", index, f"the stream ends inside the header of record {index}")
    length = parse_header(header, index)
    body = _read_exact(raw, length)
    if len(body) < length:
        raise LayerError(
            "truncated", index, f"the stream ends inside record {index} ({len(body)} of {length} bytes)"
        )
    return body


class RecordReader(io.RawIOBase):
    """The plaintext of a record stream, as a readable binary file.

    ``open_body(body)`` returns a body's plaintext, or raises
    :class:`AuthFailure`. Errors are raised as :class:`LayerError` tagged
    with ``layer``.
    """

    def __init__(self, raw: BinaryIO, open_body: Callable[[bytes], bytes], layer: str) -> None:
        super().__init__()
        self._raw = raw
        self._open_body = open_body
        self._layer = layer
        self._index = 0
        self._pending = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            try:
                body = read_record(self._raw, self._index)
                if body is None:
                    self._eof = True
                    break
                plain = self._open_body(body)
            except LayerError as exc:
                exc.layer = self._layer
                raise
            except AuthFailure as exc:
                raise LayerError("auth", self._index, f"record {self._index} {exc}", self._layer) from None
            self._pending = memoryview(plain)
            self._index += 1
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count
