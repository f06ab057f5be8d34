"""The index: what members exist and where their chunks are.

Each commit record carries a *delta* (the entries changed since the previous
commit); a *checkpoint* carries every entry. Both bodies are encoded here and
sealed by the container layer. See ``docs/format.md`` for the byte layout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from ..errors import IntegrityError
from ..names import canonical_from_utf8

MEMBER_ID_SIZE = 16

#: Random bytes naming one sealing of a chunk (see :class:`Chunk`).
CHUNK_TAG_SIZE = 8
# offset of the record, its total length on disk, the plain bytes it holds, its tag
_CHUNK = struct.Struct(">QII8s")
# member id, plain size, mtime in ns, chunk count
_ENTRY = struct.Struct(">16sQqI")
# seq, prev commit offset, checkpoint offset, data start, time ns, op count
_COMMIT = struct.Struct(">QQQQqI")

OP_PUT = 1
OP_EXTEND = 2
OP_DELETE = 3


class Chunk(NamedTuple):
    """One record of member content (immutable; a tuple, so that opening a
    coffer builds thousands of them cheaply).

    ``tag`` is random and new each time a chunk is sealed. A chunk is sealed
    in the context of its member id, its number *and* its tag, so a record
    left behind by an abandoned write (same member, same number, other
    content) can't stand in for the one the index names.
    """

    offset: int
    stored_len: int
    plain_len: int
    tag: bytes


@dataclass(frozen=True)
class MemberEntry:
    """A member as the index knows it.

    ``member_id`` is random and new for each rewrite of the member; together
    with the chunk number it is the context each chunk is sealed in.
    """

    name: str
    member_id: bytes
    size: int
    mtime_ns: int
    chunks: tuple[Chunk, ...] = field(default=())

    @cached_property
    def stored_bytes(self) -> int:
        return sum(chunk.stored_len for chunk in self.chunks)

    @cached_property
    def encoded(self) -> bytes:
        """The entry as a PUT operation encodes it (entries are immutable, so a
        checkpoint re-encodes only the entries that changed)."""
        return (
            bytes([OP_PUT])
            + _name_bytes(self.name)
            + _ENTRY.pack(self.member_id, self.size, self.mtime_ns, len(self.chunks))
            + _chunks_bytes(self.chunks)
        )


@dataclass(frozen=True)
class CommitHeader:
    """The fixed part of a commit body."""

    seq: int
    prev_offset: int  # 0: none in this file
    checkpoint_offset: int  # of the checkpoint a delta applies to; own offset for a checkpoint
    data_start: int  # where this commit's data records start (end of the previous commit)
    time_ns: int


@dataclass
class Op:
    code: int
    name: str
    entry: MemberEntry | None = None  # PUT: the entry; EXTEND: the entry after extending
    new_chunks: tuple[Chunk, ...] = ()  # EXTEND only


def _name_bytes(name: str) -> bytes:
    raw = name.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def _chunks_bytes(chunks: tuple[Chunk, ...]) -> bytes:
    return b"".join(_CHUNK.pack(c.offset, c.stored_len, c.plain_len, c.tag) for c in chunks)


def encode_commit(header: CommitHeader, ops: list[Op]) -> bytes:
    parts = [
        _COMMIT.pack(
            header.seq,
            header.prev_offset,
            header.checkpoint_offset,
            header.data_start,
            header.time_ns,
            len(ops),
        )
    ]
    for op in ops:
        if op.code == OP_PUT and op.entry is not None and op.entry.name == op.name:
            parts.append(op.entry.encoded)
            continue
        parts.append(bytes([op.code]) + _name_bytes(op.name))
        if op.code == OP_PUT:
            e = op.entry
            assert e is not None
            parts.append(_ENTRY.pack(e.member_id, e.size, e.mtime_ns, len(e.chunks)))
            parts.append(_chunks_bytes(e.chunks))
        elif op.code == OP_EXTEND:
            e = op.entry
            assert e is not None
            parts.append(struct.pack(">QqI", e.size, e.mtime_ns, len(op.new_chunks)))
            parts.append(_chunks_bytes(op.new_chunks))
    return b"".join(parts)


_NAME_LEN = struct.Struct(">H")
_EXTEND = struct.Struct(">QqI")


def _malformed(what: str) -> IntegrityError:
    return IntegrityError(f"index record is malformed ({what})")


def decode_commit(body: bytes) -> tuple[CommitHeader, list[Op]]:
    """Parse a commit body; raise :class:`IntegrityError` if malformed.

    Every length is checked against the body before it is used; a name that
    is not in the canonical form the writer stores is forged.
    """
    if not isinstance(body, (bytes, bytearray)):
        body = bytes(body)  # a layer may hand back any buffer
    end = len(body)
    if end < _COMMIT.size:
        raise _malformed("truncated")
    seq, prev, checkpoint, data_start, time_ns, count = _COMMIT.unpack_from(body, 0)
    header = CommitHeader(seq, prev, checkpoint, data_start, time_ns)
    pos = _COMMIT.size
    ops: list[Op] = []
    for _ in range(count):
        if pos + 1 + _NAME_LEN.size > end:
            raise _malformed("truncated")
        code = body[pos]
        (name_len,) = _NAME_LEN.unpack_from(body, pos + 1)
        pos += 1 + _NAME_LEN.size
        raw_name = body[pos : pos + name_len]
        pos += name_len
        if pos > end:
            raise _malformed("truncated")
        name = canonical_from_utf8(raw_name)
        if name is None:
            # The writer only stores canonical names: anything else is forged.
            raise _malformed("member name")
        if code == OP_PUT:
            if pos + _ENTRY.size > end:
                raise _malformed("truncated")
            member_id, size, mtime_ns, n = _ENTRY.unpack_from(body, pos)
            pos += _ENTRY.size
            chunks, pos = _chunks_at(body, pos, n)
            ops.append(Op(OP_PUT, name, MemberEntry(name, member_id, size, mtime_ns, chunks)))
        elif code == OP_EXTEND:
            if pos + _EXTEND.size > end:
                raise _malformed("truncated")
            size, mtime_ns, n = _EXTEND.unpack_from(body, pos)
            pos += _EXTEND.size
            new_chunks, pos = _chunks_at(body, pos, n)
            # The entry is completed against the previous state by apply_ops.
            ops.append(Op(OP_EXTEND, name, MemberEntry(name, b"", size, mtime_ns), new_chunks))
        elif code == OP_DELETE:
            ops.append(Op(OP_DELETE, name))
        else:
            raise _malformed(f"unknown operation {code}")
    if pos != end:
        raise _malformed("trailing bytes")
    return header, ops


def _chunks_at(body: bytes, pos: int, count: int) -> tuple[tuple[Chunk, ...], int]:
    stop = pos + count * _CHUNK.size
    if stop > len(body):
        raise _malformed("truncated")
    return tuple(map(Chunk._make, _CHUNK.iter_unpack(body[pos:stop]))), stop


def apply_ops(entries: dict[str, MemberEntry], ops: list[Op]) -> None:
    """Apply decoded ``ops`` to ``entries`` in place, checking they make sense."""
    for op in ops:
        if op.code == OP_PUT:
            assert op.entry is not None
            _check_entry(op.entry)
            entries[op.name] = op.entry
        elif op.code == OP_EXTEND:
            old = entries.get(op.name)
            if old is None or op.entry is None:
                raise IntegrityError(f"index extends member {op.name!r} that does not exist")
            new = MemberEntry(
                op.name, old.member_id, op.entry.size, op.entry.mtime_ns, old.chunks + op.new_chunks
            )
            _check_entry(new)
            entries[op.name] = new
        elif op.code == OP_DELETE:
            if entries.pop(op.name, None) is None:
                raise IntegrityError(f"index deletes member {op.name!r} that does not exist")


def _check_entry(entry: MemberEntry) -> None:
    if sum(c.plain_len for c in entry.chunks) != entry.size:
        raise IntegrityError(f"index entry of {entry.name!r} is inconsistent (sizes)")
    if len(entry.member_id) != MEMBER_ID_SIZE:
        raise IntegrityError(f"index entry of {entry.name!r} is malformed (member id)")


def diff_ops(old: MemberEntry | None, new: MemberEntry | None, name: str) -> Op | None:
    """The smallest op turning ``old`` into ``new`` (None if they are the same)."""
    if new is None:
        return None if old is None else Op(OP_DELETE, name)
    if old is new:
        return None
    if (
        old is not None
        and old.member_id == new.member_id
        and new.chunks[: len(old.chunks)] == old.chunks
    ):
        return Op(OP_EXTEND, name, new, new.chunks[len(old.chunks) :])
    return Op(OP_PUT, name, new)
