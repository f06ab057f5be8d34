"""The interface between a :class:`~pycoffer_core.Coffer` and its container.

The coffer owns names, modes, locks, threads and hooks; the container owns
the bytes of the file. A container plugin subclasses :class:`Container`.
The coffer serialises every call except :meth:`ChunkSource.read`, which may
run in several threads at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..types import CofferType
from ..unlock import KeyProvider
from .index import Chunk, MemberEntry

#: How a container is opened: read an existing file, change an existing file,
#: or build a new one that replaces (``new``) or must not clobber (``exclusive``)
#: whatever is at the path when it is first committed.
OpenMode = Literal["read", "update", "new", "exclusive"]


@dataclass(frozen=True)
class SealedChunk:
    """A chunk sealed into a record, waiting to be stored."""

    record: bytes
    plain_len: int
    tag: bytes


class ChunkSource(ABC):
    """Reads the chunks of one member version; safe to use from several threads."""

    @abstractmethod
    def read(self, index: int) -> bytes | memoryview:
        """The plaintext of chunk ``index``, authenticated, or :class:`IntegrityError`;
        a read-only view where opening it copied nothing."""


class Container(ABC):
    """A coffer file: its members' entries, their chunks, and commits."""

    @abstractmethod
    def __init__(
        self,
        path: Path,
        keys: KeyProvider,
        *,
        mode: OpenMode,
        backup: Path | None = None,
    ) -> None:
        """Open or start the coffer at ``path``.

        ``keys.create`` (new coffer) or ``keys.unlock`` (existing one, after
        its type name is checked) gives the keyed type whose layers seal
        every byte. Raises :class:`NotACofferError`, :class:`WrongTypeError`,
        :class:`IntegrityError` (damage, tampering, wrong key). ``backup``:
        before the first commit, keep the file as it was at open there.
        """

    #: Number of the last commit (0 before the first).
    seq: int

    @property
    def broken(self) -> bool:
        """True once an I/O error left the container unsure of the disk."""
        return False

    @property
    @abstractmethod
    def coffer_type(self) -> CofferType:
        """The keyed coffer type in use."""

    @property
    @abstractmethod
    def coffer_id(self) -> bytes:
        """The coffer's random id (the same across compactions)."""

    @property
    @abstractmethod
    def keyslots(self) -> bytes:
        """The key-slot blob (empty when the coffer has no passphrase)."""

    @abstractmethod
    def write_keyslots(self, blob: bytes) -> None:
        """Replace the key-slot blob durably and atomically."""

    @property
    @abstractmethod
    def entries(self) -> Mapping[str, MemberEntry]:
        """The members, with changes not yet committed."""

    @abstractmethod
    def new_member_id(self) -> bytes:
        """A fresh random id for a new member version."""

    @abstractmethod
    def seal_chunk(self, member_id: bytes, chunk_no: int, data: bytes) -> SealedChunk:
        """Seal one chunk of a member into a record. Thread-safe: the coffer
        seals the chunks of a large member on several threads at once."""

    @abstractmethod
    def store_sealed(self, sealed: SealedChunk) -> Chunk:
        """Store a record made by :meth:`seal_chunk` (not yet committed)."""

    def append_chunk(self, member_id: bytes, chunk_no: int, data: bytes) -> Chunk:
        """Seal and store one chunk of a member (not yet committed)."""
        return self.store_sealed(self.seal_chunk(member_id, chunk_no, data))

    @abstractmethod
    def chunk_source(self, entry: MemberEntry) -> ChunkSource:
        """A reader for the chunks of ``entry``, valid until the container closes."""

    @abstractmethod
    def put(self, entry: MemberEntry) -> None:
        """Add or replace a member (pending until :meth:`commit`)."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove a member (pending until :meth:`commit`)."""

    @abstractmethod
    def pending(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The names changed and the names deleted since the last commit."""

    @abstractmethod
    def needs_commit(self) -> bool:
        """True if :meth:`commit` would write anything."""

    @abstractmethod
    def commit(self, *, checkpoint: bool = False) -> int:
        """Make the pending changes durable, atomically; return the commit number.

        ``checkpoint``: commit even with nothing pending, writing the whole
        index (see :meth:`wants_checkpoint`).
        """

    def wants_checkpoint(self) -> bool:
        """True if a checkpoint at close would make the next open cheaper."""
        return False

    @abstractmethod
    def discard(self, *, keep_bytes: bool = False) -> None:
        """Drop the pending changes; the container is back at its last commit.

        ``keep_bytes``: leave the records stored since the last commit in
        place (writers still open will reference theirs).
        """

    @abstractmethod
    def compact(self) -> None:
        """Rewrite the file with live data only, atomically. No pending changes allowed."""

    @abstractmethod
    def should_compact(self) -> bool:
        """True if dead space passes the container's threshold."""

    @abstractmethod
    def verify(self) -> None:
        """Read and authenticate every record; :class:`IntegrityError` for the first problem."""

    @abstractmethod
    def stats(self) -> dict[str, int]:
        """``format_version``; sizes ``file_size``, ``live_bytes``, ``index_bytes``,
        ``dead_bytes``, ``ignored_bytes``; ``members``; ``seq``."""

    @abstractmethod
    def close(self) -> None:
        """Release the file; pending changes are dropped. Idempotent."""
