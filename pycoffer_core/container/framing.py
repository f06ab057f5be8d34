"""The byte layout of the file header and of records (see ``docs/format.md``).

Framing is not security: its CRCs tell damage from an interrupted write, so a
torn tail can be dropped while a damaged record raises. Authentication is the
layers' job.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

from ..errors import IntegrityError, NotACofferError

MAGIC = b"\x89COFFER\n"
FORMAT_VERSION = 1

# magic, version, header length, epoch, coffer id
_HEADER_FIXED = struct.Struct(">8sHHI16s")
_CRC = struct.Struct(">I")

KIND_DATA = 1
KIND_COMMIT = 2
KIND_CHECKPOINT = 3
COMMIT_KINDS = (KIND_COMMIT, KIND_CHECKPOINT)
KNOWN_KINDS = (KIND_DATA, KIND_COMMIT, KIND_CHECKPOINT)

# kind, flags, body length, CRC-32 of the first six bytes
_RECORD_HEAD = struct.Struct(">BBII")
# CRC-32 of the body, body length again, end marker
_RECORD_TRAIL = struct.Struct(">IIB")
HEAD_SIZE = _RECORD_HEAD.size
TRAIL_SIZE = _RECORD_TRAIL.size
OVERHEAD = HEAD_SIZE + TRAIL_SIZE
# Non-zero, so a complete record never ends in a zero byte: a zero tail is
# always a never-written one.
END_MARKER = 0xA5
MAX_BODY = (1 << 31) - 1


#: Header params entry: the member layer's key check (see ``docs/format.md``, "Params").
PARAM_MEMBER_KEY_CHECK = 1
_PARAM_HEAD = struct.Struct(">BH")  # tag, value length


def encode_params(entries: dict[int, bytes]) -> bytes:
    """The header's params: each entry as tag, length, value, in tag order."""
    return b"".join(_PARAM_HEAD.pack(tag, len(value)) + value for tag, value in sorted(entries.items()))


def decode_params(raw: bytes) -> dict[int, bytes] | None:
    """Invert :func:`encode_params`, unknown tags included (a reader skips
    what it doesn't know). ``None`` if ``raw`` is not a sequence of entries:
    format version 1 first reserved the params, with readers bound to accept
    any bytes there, so such params are opaque, not damage."""
    entries, pos = {}, 0
    while pos < len(raw):
        if pos + _PARAM_HEAD.size > len(raw):
            return None
        tag, length = _PARAM_HEAD.unpack_from(raw, pos)
        pos += _PARAM_HEAD.size
        if pos + length > len(raw) or tag in entries:
            return None
        entries[tag] = raw[pos : pos + length]
        pos += length
    return entries


#: Each of the two copies of the key-slot area (see :func:`read_slot_area`).
SLOT_COPY_SIZE = 2048
_SLOT_HEAD = struct.Struct(">QI")  # generation, blob length
MAX_SLOT_BLOB = SLOT_COPY_SIZE - _SLOT_HEAD.size - _CRC.size


@dataclass(frozen=True)
class FileHeader:
    """The plaintext header at offset 0 of every coffer file."""

    coffer_id: bytes
    epoch: int
    type_name: str
    params: bytes = b""

    def encode(self) -> bytes:
        name = self.type_name.encode("ascii")
        tail = bytes([len(name)]) + name + struct.pack(">H", len(self.params)) + self.params
        length = _HEADER_FIXED.size + len(tail) + _CRC.size
        head = _HEADER_FIXED.pack(MAGIC, FORMAT_VERSION, length, self.epoch, self.coffer_id)
        body = head + tail
        return body + _CRC.pack(zlib.crc32(body))

    @property
    def size(self) -> int:
        return len(self.encode())

    @property
    def records_start(self) -> int:
        """Where the first record starts: after the header and the key-slot area."""
        return self.size + 2 * SLOT_COPY_SIZE


def encode_slot_copy(generation: int, blob: bytes) -> bytes:
    """One copy of the key-slot area, padded with zeros to its fixed size."""
    if len(blob) > MAX_SLOT_BLOB:
        raise ValueError(f"key slots need {len(blob)} bytes; at most {MAX_SLOT_BLOB} fit")
    body = _SLOT_HEAD.pack(generation, len(blob)) + blob
    return (body + _CRC.pack(zlib.crc32(body))).ljust(SLOT_COPY_SIZE, b"\x00")


def _decode_slot_copy(raw: bytes) -> tuple[int, bytes] | None:
    if len(raw) != SLOT_COPY_SIZE:
        return None
    generation, length = _SLOT_HEAD.unpack_from(raw)
    if length > MAX_SLOT_BLOB:
        return None
    end = _SLOT_HEAD.size + length
    if zlib.crc32(raw[:end]) != _CRC.unpack_from(raw, end)[0]:
        return None
    if raw[end + _CRC.size :].count(0) != SLOT_COPY_SIZE - end - _CRC.size:
        return None  # padding must stay zero: anything else is damage
    return generation, raw[_SLOT_HEAD.size : end]


def _slot_copies(fd: int, header_len: int) -> list[tuple[int, bytes] | None]:
    """Both key-slot copies, each decoded or None if damaged."""
    return [_decode_slot_copy(os.pread(fd, SLOT_COPY_SIZE, header_len + i * SLOT_COPY_SIZE)) for i in (0, 1)]


def slot_copies_intact(fd: int, header_len: int) -> bool:
    """Whether both key-slot copies are intact and say the same."""
    first, second = _slot_copies(fd, header_len)
    return first is not None and first == second


def slot_copies_consistent(fd: int, header_len: int) -> bool:
    """Whether the copies are what a writer can leave: equal, or both intact
    with copy 0 one generation ahead (a change interrupted between the two
    writes, which the next writer repairs)."""
    first, second = _slot_copies(fd, header_len)
    if first is None or second is None:
        return False
    return first == second or first[0] == second[0] + 1


def read_slot_area(fd: int, header_len: int) -> tuple[int, bytes]:
    """The newest intact copy of the key-slot area: (generation, blob).

    The area holds two copies, rewritten in place one after the other, each
    made durable before the next is touched; a torn write spoils at most one,
    and both say the same once a change completes. Both damaged raises.
    """
    intact = [copy for copy in _slot_copies(fd, header_len) if copy is not None]
    if not intact:
        raise IntegrityError("both copies of the key-slot area are damaged")
    if len(intact) == 2 and intact[0][0] == intact[1][0] and intact[0][1] != intact[1][1]:
        # One generation is written with one content: two contents is tampering.
        raise IntegrityError("the two key-slot copies disagree within one generation")
    return max(intact, key=lambda copy: copy[0])


def read_header(fd: int, file_size: int) -> tuple[FileHeader, int]:
    """Parse the header of the coffer open on ``fd``; return it and its length."""
    fixed = os.pread(fd, _HEADER_FIXED.size, 0)
    if len(fixed) < _HEADER_FIXED.size or fixed[:8] != MAGIC:
        raise NotACofferError("not a coffer file (no coffer magic number at its start)")
    _, version, length, epoch, coffer_id = _HEADER_FIXED.unpack(fixed)
    if version != FORMAT_VERSION:
        raise NotACofferError(
            f"coffer format version {version} is not supported (this PyCoffer reads version "
            f"{FORMAT_VERSION}); upgrade pycoffer-core"
        )
    if length > file_size or length < _HEADER_FIXED.size + 1 + 2 + _CRC.size:
        raise NotACofferError("coffer header is truncated or damaged")
    raw = os.pread(fd, length, 0)
    if zlib.crc32(raw[:-4]) != _CRC.unpack(raw[-4:])[0]:
        raise IntegrityError("coffer header is damaged (checksum mismatch)")
    try:
        return _parse_header(raw, epoch, coffer_id, length)
    except (struct.error, IndexError):
        raise IntegrityError("coffer header is damaged (fields run past its end)") from None


def _parse_header(raw: bytes, epoch: int, coffer_id: bytes, length: int) -> tuple[FileHeader, int]:
    pos = _HEADER_FIXED.size
    name_len = raw[pos]
    try:
        type_name = raw[pos + 1 : pos + 1 + name_len].decode("ascii")
    except UnicodeDecodeError:
        raise IntegrityError("coffer header is damaged (type name)") from None
    pos += 1 + name_len
    (params_len,) = struct.unpack_from(">H", raw, pos)
    pos += 2
    params = raw[pos : pos + params_len]
    if pos + params_len + _CRC.size != length:
        raise IntegrityError("coffer header is damaged (lengths disagree)")
    return FileHeader(coffer_id, epoch, type_name, params), length


def frame(kind: int, body: bytes) -> bytes:
    """One record: head, body, trail."""
    if len(body) > MAX_BODY:
        raise ValueError("record body too large")
    head6 = struct.pack(">BBI", kind, 0, len(body))
    head = head6 + _CRC.pack(zlib.crc32(head6))
    return head + body + _RECORD_TRAIL.pack(zlib.crc32(body), len(body), END_MARKER)


@dataclass(frozen=True)
class RecordHead:
    kind: int
    body_len: int

    @property
    def total(self) -> int:
        return OVERHEAD + self.body_len


def parse_head(raw: bytes) -> RecordHead | None:
    """The record head in ``raw``, or None if its checksum or kind is wrong."""
    if len(raw) < HEAD_SIZE:
        return None
    kind, flags, body_len, crc = _RECORD_HEAD.unpack_from(raw)
    if zlib.crc32(raw[:6]) != crc or kind not in KNOWN_KINDS or flags != 0:
        return None
    return RecordHead(kind, body_len)


def trail_ok(raw_trail: bytes, body_len: int) -> bool:
    """Whether a trail matches its head (without checking the body CRC)."""
    _, length, marker = _RECORD_TRAIL.unpack(raw_trail)
    return length == body_len and marker == END_MARKER


def unframe(raw: bytes, offset: int, *, check_body: bool = True) -> tuple[int, memoryview]:
    """Check a whole record read from ``offset``; return its kind and body,
    a view of ``raw`` (a chunk's record is opened with no copy).

    ``check_body=False`` skips the body's CRC, for a caller that
    authenticates the body next (a CRC can only add a weaker check).
    """
    head = parse_head(raw)
    if head is None or len(raw) != head.total:
        raise IntegrityError(f"record at offset {offset} is damaged (header)")
    body = memoryview(raw)[HEAD_SIZE : HEAD_SIZE + head.body_len]
    crc, length, marker = _RECORD_TRAIL.unpack_from(raw, HEAD_SIZE + head.body_len)
    if length != head.body_len or marker != END_MARKER or (check_body and crc != zlib.crc32(body)):
        raise IntegrityError(f"record at offset {offset} is damaged (checksum mismatch)")
    return head.kind, body


def parse_trail(raw_trail: bytes) -> int | None:
    """The body length a trail announces, or None if it is not a trail."""
    if len(raw_trail) != TRAIL_SIZE:
        return None
    _, length, marker = _RECORD_TRAIL.unpack(raw_trail)
    return length if marker == END_MARKER else None
