"""The default container: an append-only log of sealed records.

A commit appends the chunks it wrote and one commit record (an index delta,
or now and then a full checkpoint), then ``fdatasync``s once; its cost grows
with the change, not with the coffer. Opening reads the last commit record at
the end of the file and walks back to the last checkpoint. Anything after the
last complete commit is an interrupted commit and is dropped; a complete
record that fails its checks raises :class:`IntegrityError`. Compaction copies
the live records into a new file and renames it over the old one.
``docs/format.md`` describes every byte.
"""

from __future__ import annotations

import os
import re
import secrets
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..layers import decompression_limit, open_layer
from ..errors import (
    ClosedCofferError,
    CofferBrokenError,
    CofferExistsError,
    CofferNotFoundError,
    IntegrityError,
    InvalidArgumentError,
    WrongKeyError,
    WrongTypeError,
)
from ..types import CofferType
from ..unlock import KeyProvider
from . import framing
from .base import ChunkSource, Container, OpenMode, SealedChunk
from .framing import (
    COMMIT_KINDS,
    HEAD_SIZE,
    KIND_CHECKPOINT,
    KIND_COMMIT,
    KIND_DATA,
    OVERHEAD,
    TRAIL_SIZE,
    FileHeader,
)
from .index import (
    CHUNK_TAG_SIZE,
    MEMBER_ID_SIZE,
    OP_PUT,
    Chunk,
    CommitHeader,
    MemberEntry,
    Op,
    apply_ops,
    decode_commit,
    diff_ops,
    encode_commit,
)

#: A checkpoint is written after this many deltas, so an open reads at most this many.
MAX_DELTAS = 1024
#: ... or once the deltas outgrow the last checkpoint (and at least this many bytes).
MIN_CHECKPOINT_BYTES = 64 * 1024
#: A coffer closed with at least this many deltas since its last checkpoint
#: gets one more: the next open then replays few deltas.
CLOSE_CHECKPOINT_DELTAS = 8
#: ``should_compact``: dead space above this fraction of a file above this size.
COMPACT_DEAD_FRACTION = 0.5
COMPACT_MIN_FILE = 1 << 20

_DATA_CONTEXT = b"pycoffer/data\x00"
_CHUNK_CONTEXT = b"pycoffer/chunk\x00"
_COMMIT_CONTEXT = b"pycoffer/commit\x00"
_MEMBER_KEY_CONTEXT = b"pycoffer/member-key\x00"
_MEMBER_KEY_PLAIN = b"pycoffer member key check"
# member id, chunk number, chunk tag: what a chunk is sealed as (see index.Chunk)
_CHUNK_ID = struct.Struct(">16sQ8s")
_ZERO_SCAN_BLOCK = 1 << 16
#: A commit whose data records hold more than this is made in two syncs: the
#: data, then the commit record. A smaller one takes a single sync, and an
#: open checks its data records whole (see ``_fresh_data_present``).
PRESYNC_THRESHOLD = 1 << 20
#: Power loss can leave never-written blocks of this size as zeros.
_PAGE = 4096
#: A writer keeps this many bytes of synced zeros ahead of its next small
#: commit (its *runway*): a commit that overwrites blocks the file system has
#: already allocated makes ``fdatasync`` flush data alone, where an append
#: also commits the file system's journal (the new size, the new blocks).
#: On ext4 that takes a 2 KiB commit from about 0.24 ms to 0.15 ms, the trick
#: SQLite's WAL gets from reusing its file. The zeros sit after the last
#: record, where readers already treat zeros as never-written space; close
#: cuts them off.
RUNWAY = 256 * 1024
#: Only a commit that wrote at most this much renews the runway: bulk writes
#: append, rather than write everything twice (zeros, then data).
RUNWAY_COMMIT_MAX = 64 * 1024
#: A runway costs a write and a sync of its zeros and saves about 0.09 ms per
#: commit landing on it: it is laid only once a session has made this many
#: small commits, so short sessions (open, change a few members, close) don't
#: pay for zeros that close then cuts off.
RUNWAY_AFTER_COMMITS = 16
#: A writer that has appended this many bytes of data records since its last
#: sync starts an *early sync* of them on a thread of its own and goes on
#: writing: the disk takes the bulk of a large commit while the caller still
#: reads and seals its input, and the commit's own sync flushes only the
#: tail. Durability does not depend on it: every commit still syncs.
EARLY_SYNC_BYTES = 4 << 20
#: What one data record may decompress to: a chunk (256 KiB written; up to
#: 1 MiB read) and the layers' framing.
MAX_CHUNK_RECORD = (1 << 20) + 4096
#: What one data record may take on disk (a chunk and the layers' overhead).
MAX_STORED_CHUNK = 2 << 20
#: An index decompresses to at most this many times its stored size (its
#: random member ids and chunk tags keep real ones far below), and never
#: past 1 MiB less than that: a tiny record can't ask for hundreds of MiB.
INDEX_EXPANSION = 64


#: Index records shorter than this are stored uncompressed: a delta of a
#: change or two (mostly random ids and offsets) hardly shrinks, while every
#: open pays about 15 µs to set up a zstd decompressor for each record it replays.
MIN_COMPRESSED_INDEX = 1024


def _index_cap(stored: int) -> int:
    return max(1 << 20, INDEX_EXPANSION * stored)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: The name of a file ``LogContainer._sibling`` makes beside coffer ``coffer``.
_SIBLING_NAME = re.compile(r"\.(?P<coffer>.+)\.[0-9a-f]{12}\.pycoffer-(?:new|compact|backup)", re.DOTALL)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` names the file open on ``fd``."""
    try:
        named = os.stat(path)
    except OSError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _pread_exact(fd: int, size: int, offset: int) -> bytes:
    # Check a length read from the file against the file before allocating it.
    if offset + size > os.fstat(fd).st_size:
        raise IntegrityError(f"coffer is truncated: {size} bytes expected at offset {offset}")
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise IntegrityError(f"coffer is truncated: {size} bytes expected at offset {offset}")
    return data


@dataclass(frozen=True)
class _Commit:
    """A commit record read back from the file."""

    offset: int
    length: int
    kind: int
    header: CommitHeader
    ops: list[Op]

    @property
    def end(self) -> int:
        return self.offset + self.length


class _Chunks(ChunkSource):
    def __init__(self, container: LogContainer, fd: int, entry: MemberEntry) -> None:
        self._container = container
        self._fd = fd
        self._entry = entry

    def read(self, index: int) -> bytes | memoryview:
        if self._container.closed:
            raise ClosedCofferError("the coffer is closed")
        chunk = self._entry.chunks[index]
        return self._container.open_chunk(self._fd, chunk, self._entry.member_id, index)


class LogContainer(Container):
    """The log-structured container of ``docs/format.md``."""

    def __init__(
        self,
        path: Path,
        keys: KeyProvider,
        *,
        mode: OpenMode,
        backup: Path | None = None,
    ) -> None:
        self.path = Path(path)
        self._keys = keys
        self._writable = mode != "read"
        self._exclusive = mode == "exclusive"
        self._backup = backup
        self._entries: dict[str, MemberEntry] = {}
        self._undo: dict[str, MemberEntry | None] = {}
        self._retired_fds: list[int] = []
        self._broken: BaseException | None = None  # an I/O error, or an interrupt mid-commit
        self._dir_sync_pending = False
        self._fd = -1
        self._runway_end = 0  # zeros, synced, lie in [_write_end, _runway_end)
        self._small_commits = 0  # since this container opened
        self._synced_end = 0  # the file up to here was being synced by the last early sync
        self._early_sync: threading.Thread | None = None
        self._early_sync_error: OSError | None = None
        self._tmp_path: Path | None = None
        self._last: _Commit | None = None
        self.seq = 0
        self._deltas_since_checkpoint = 0
        self._delta_bytes = 0
        self._checkpoint_bytes = 0
        self._ignored_at_open = 0  # bytes after the last complete commit when opened
        if mode in ("new", "exclusive"):
            self._start_new()
        else:
            self._open_existing()

    # ------------------------------------------------------------ opening

    def _use_type(self, coffer_type: CofferType) -> None:
        self._type = coffer_type
        self._container_layer = coffer_type.container_layer()
        self._member_layer = coffer_type.member_layer()
        self._member_precompressed = self._member_layer.encrypts or self._member_layer.compresses
        # Where the container layer authenticates every record, a chunk read
        # needs no body CRC: opening it catches any change (see open_chunk).
        self._chunk_crc = not self._container_layer.authenticates

    def _start_new(self) -> None:
        coffer_id = os.urandom(16)
        coffer_type, self._slots = self._keys.create(coffer_id)
        self._slot_generation = 1 if self._slots else 0
        self._use_type(coffer_type)
        params = {}
        if self._member_layer.authenticates:
            params[framing.PARAM_MEMBER_KEY_CHECK] = self._member_layer.seal(
                _MEMBER_KEY_PLAIN, _MEMBER_KEY_CONTEXT + coffer_id, compressible=False
            )
        self._header = FileHeader(coffer_id, 1, self._type.name, framing.encode_params(params))
        self._tmp_path = self._sibling("new")
        self._fd = os.open(
            self._tmp_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        self._header_len = self._write_header(self._fd, self._header)
        self._committed_end = self._write_end = self._open_end = self._header_len
        self._runway_end = self._write_end
        self._backup_pending = self._backup is not None and self.path.exists()

    def _open_existing(self) -> None:
        flags = (os.O_RDWR if self._writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0)
        try:
            self._fd = os.open(self.path, flags)
        except FileNotFoundError:
            raise CofferNotFoundError(f"no coffer at {self.path}") from None
        try:
            size = os.fstat(self._fd).st_size
            self._header, fixed_len = framing.read_header(self._fd, size)
            self._slot_generation, self._slots = framing.read_slot_area(self._fd, fixed_len)
            self._header_len = self._header.records_start
            expected = self._keys.type_class.name
            if self._header.type_name != expected:
                raise WrongTypeError(
                    f"{self.path} is a {self._header.type_name!r} coffer, not "
                    f"{expected!r}: open it with type={self._header.type_name!r}",
                    actual=self._header.type_name,
                )
            self._use_type(self._keys.unlock(self._slots, self._header.coffer_id))
            self._load(size)
            self._check_member_key()
            if self._writable:
                if not framing.slot_copies_intact(self._fd, self._header.size):
                    self._repair_slot_copies()
                if size > self._committed_end:
                    # An interrupted commit: drop its bytes before appending anew.
                    os.ftruncate(self._fd, self._committed_end)
                    os.fsync(self._fd)
                self._remove_stale_siblings()
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise
        self._write_end = self._open_end = self._runway_end = self._committed_end
        self._backup_pending = self._backup is not None

    def _check_member_key(self) -> None:
        """Refuse keys that open the records but not the members' content
        (a type whose member layer has a key of its own, as bank's
        ``secure_key``): writing with them would store members nobody can
        read. Files written before the header held this check skip it."""
        check = (framing.decode_params(self._header.params) or {}).get(framing.PARAM_MEMBER_KEY_CHECK)
        if check is None or not self._member_layer.authenticates:
            return
        try:
            opened = self._member_layer.open(check, _MEMBER_KEY_CONTEXT + self._header.coffer_id)
        except IntegrityError:
            opened = None
        if opened != _MEMBER_KEY_PLAIN:
            raise WrongKeyError(
                f"{self.path}: wrong key: the keys given open this coffer's records but not its "
                f"members' content (one of {', '.join(self._type.key_params)} is wrong), "
                "or its header is damaged"
            )

    def _load(self, size: int) -> None:
        records_end = self._records_end(size)
        last = self._last_commit_at_end(records_end)
        if last is None:
            last = self._scan_for_last_commit(size)
        if last is None:
            raise IntegrityError(f"{self.path} holds no complete commit (damaged or truncated)")
        if not self._fresh_data_present(last):
            # Power was lost before the last commit's data reached the disk: it
            # was never acknowledged, so the coffer is at the commit before it.
            if last.header.prev_offset == 0:
                raise IntegrityError(f"{self.path} holds no complete commit")
            last = self._read_commit(last.header.prev_offset)
        self._adopt_chain(last)
        self._ignored_at_open = max(0, records_end - self._committed_end)

    def _records_end(self, size: int) -> int:
        """Where the records end: before the zeros that end the file, if any
        (a live writer's runway, or space a crash left never written). A whole
        record never ends in a zero byte (see ``framing.END_MARKER``)."""
        if size > self._header_len and os.pread(self._fd, 1, size - 1) == b"\x00":
            return self._zero_suffix_start(size)
        return size

    def _last_commit_at_end(self, size: int) -> _Commit | None:
        """The commit record ending the file, if the file ends with one."""
        if size < self._header_len + OVERHEAD:
            return None
        body_len = framing.parse_trail(os.pread(self._fd, TRAIL_SIZE, size - TRAIL_SIZE))
        if body_len is None:
            return None
        start = size - OVERHEAD - body_len
        if start < self._header_len:
            return None
        head = framing.parse_head(os.pread(self._fd, HEAD_SIZE, start))
        if head is None or head.kind not in COMMIT_KINDS or head.body_len != body_len:
            return None
        try:
            return self._read_commit(start)
        except WrongKeyError:
            raise
        except IntegrityError:
            return None  # the forward scan says precisely what is wrong

    def _scan_for_last_commit(self, size: int) -> _Commit | None:
        """Walk the records from the start; stop at the torn tail, if any.

        A record that fails a check is an interrupted commit rather than
        damage when part of it was never written (see ``_never_written``):
        every acknowledged commit was synced whole, with everything before
        it, so none can lie beyond such bytes. Power lost while a commit
        overwrote the runway leaves just that: its pages reach the disk in
        any order, and those that don't still hold the runway's zeros.
        """
        zero_start = self._zero_suffix_start(size)
        offset = self._header_len
        last: _Commit | None = None
        while offset < size:
            if offset + HEAD_SIZE > size or offset >= zero_start:
                break  # torn or never-written tail
            raw_head = os.pread(self._fd, HEAD_SIZE, offset)
            head = framing.parse_head(raw_head)
            if head is None:
                if (
                    offset + HEAD_SIZE > zero_start
                    or len(raw_head) < HEAD_SIZE
                    or self._zeros(offset, max(offset + HEAD_SIZE, offset - offset % _PAGE + _PAGE))
                    or self._in_zero_page(offset + HEAD_SIZE - 1)
                ):
                    # Never written: a head of zeros that run on to its page's
                    # end, or a head ending in a page of zeros. (A head that
                    # straddles a page boundary with fewer than its ten bytes
                    # zero in the first page is damage: one flipped bit can
                    # leave that, and reading it as a crash would drop an
                    # acknowledged commit. See REL-17 in reliability.md.)
                    self._refuse_if_synced_after(offset, zero_start)
                    break
                raise IntegrityError(f"record header at offset {offset} is damaged")
            end = offset + head.total
            if end > size or end > zero_start:
                break  # an incomplete record: the interrupted commit
            if head.kind in COMMIT_KINDS:
                try:
                    last = self._read_commit(offset)
                except WrongKeyError:
                    raise
                except IntegrityError:
                    if self._never_written(offset, end):
                        self._refuse_if_synced_after(offset, zero_start)
                        break  # interrupted
                    raise
            else:
                trail = os.pread(self._fd, TRAIL_SIZE, end - TRAIL_SIZE)
                if len(trail) < TRAIL_SIZE:
                    break  # a writer dropped its uncommitted records meanwhile
                if not framing.trail_ok(trail, head.body_len):
                    if self._never_written(offset, end):
                        self._refuse_if_synced_after(offset, zero_start)
                        break  # interrupted
                    raise IntegrityError(f"record at offset {offset} is damaged (trail)")
            offset = end
        return last

    def _refuse_if_synced_after(self, offset: int, end: int) -> None:
        """Raise :class:`IntegrityError` if the record at ``offset``, which
        reads as never written, was in fact synced: a commit lies after it
        (before ``end``) whose data starts after ``offset``. Its writer
        wrote it only once the commit before it was synced, with everything
        up to there, so those bytes reached the disk and were damaged since.
        Stopping at them would roll the coffer back past acknowledged
        commits, and a writer would cut those off. (A commit whose own data
        holds ``offset`` proves nothing: power lost during its sync leaves
        exactly that.)"""
        if not self._container_layer.authenticates:
            # Without authentication (``null``) a member's bytes can hold a
            # valid commit record (a coffer stored raw inside this one).
            return
        for candidate in self._commit_heads(offset, end):
            try:
                commit = self._read_commit(candidate)
            except IntegrityError:
                continue  # not a commit record, or damaged itself
            if commit.header.data_start > offset:
                if not self._writable and self._rewritten_meanwhile(offset):
                    return
                raise IntegrityError(
                    f"{self.path}: the record at offset {offset} reads as never written, yet the "
                    f"commit at offset {candidate}, written after it was synced, is intact: the file "
                    "is damaged (opening it at an earlier commit would lose acknowledged changes)"
                )

    def _rewritten_meanwhile(self, offset: int) -> bool:
        """For a reader, which may hold no lock: whether a writer rewrote the
        bytes at ``offset`` while it looked (dropped records, then new
        commits). Looked at again a few times, as a writer may be midway;
        damage stays as it is, and costs a few milliseconds more."""
        for pause in (0.0, 0.005, 0.02, 0.05):
            time.sleep(pause)
            if self._record_whole(offset):
                return True
        return False

    def _record_whole(self, offset: int) -> bool:
        """Whether a whole record, its checks passing, starts at ``offset`` now."""
        head = framing.parse_head(os.pread(self._fd, HEAD_SIZE, offset))
        if head is None:
            return False
        raw = os.pread(self._fd, head.total, offset)
        if len(raw) != head.total:
            return False
        try:
            framing.unframe(raw, offset)
        except IntegrityError:
            return False
        return True

    def _commit_heads(self, start: int, end: int) -> Iterator[int]:
        """The offsets in ``[start, end)`` where a valid commit record head
        starts (its CRC checks), searched for byte by byte: the records
        after a damaged one can't be walked to."""
        block = 1 << 20
        position = start
        while position < end:
            data = os.pread(self._fd, min(block + HEAD_SIZE - 1, end - position), position)
            found = []
            for kind in COMMIT_KINDS:
                pattern = bytes((kind, 0))  # a head starts with its kind and zero flags
                index = data.find(pattern)
                while 0 <= index < block:
                    head = framing.parse_head(data[index : index + HEAD_SIZE])
                    if head is not None and position + index + head.total <= end:
                        found.append(position + index)
                    index = data.find(pattern, index + 1)
            yield from sorted(found)
            position += block

    def _zero_suffix_start(self, size: int) -> int:
        """Where the run of zero bytes that ends the file starts (``size`` if none)."""
        end = size
        while end > self._header_len:
            start = max(self._header_len, end - _ZERO_SCAN_BLOCK)
            block = os.pread(self._fd, end - start, start)
            stripped = block.rstrip(b"\x00")
            if stripped:
                return start + len(stripped)
            end = start
        return end

    def _zeros(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` holds only zero bytes (up to the file's end)."""
        block = os.pread(self._fd, end - start, start)
        return bool(block) and block.count(0) == len(block)

    def _in_zero_page(self, position: int) -> bool:
        """Whether the page holding this byte is all zeros, within the file."""
        page = position - position % _PAGE
        return self._zeros(page, page + _PAGE)

    def _never_written(self, start: int, end: int) -> bool:
        """Whether the record at ``[start, end)``, whose head is valid but which
        fails a check, was partly never written: its trail and all its bytes
        in the page of its end marker are zeros (that page was never written;
        a whole record's marker is never zero), or it covers a whole page of
        zeros (sealed and compressed bodies hold none). A single zero byte
        is not enough: damage can leave one."""
        last_page = (end - 1) - (end - 1) % _PAGE
        return self._zeros(min(max(start, last_page), end - TRAIL_SIZE), end) or self._holds_zero_page(start, end)

    def _holds_zero_page(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` covers a whole page of zeros: never written."""
        first = -(-start // _PAGE) * _PAGE
        return any(self._in_zero_page(page) for page in range(first, end - _PAGE + 1, _PAGE))

    def _fresh_data_present(self, commit: _Commit) -> bool:
        """Whether the chunks first written by ``commit`` reached the disk.

        A large commit synced its data before writing its commit record, so
        its data is there if the record is. A small one was made durable by
        one sync together with its data, so its data records are checked
        whole: one whose head or trail is zeros, or that holds a page of
        zeros, was never written (power loss); any other damage is damage.
        """
        start = commit.header.data_start
        if commit.offset - start > PRESYNC_THRESHOLD:
            return True
        for op in commit.ops:
            chunks = op.new_chunks if op.code != OP_PUT else (op.entry.chunks if op.entry else ())
            for chunk in chunks:
                if chunk.offset < start:
                    continue
                raw = _pread_exact(self._fd, chunk.stored_len, chunk.offset)
                try:
                    framing.unframe(raw, chunk.offset)
                except IntegrityError:
                    if (
                        raw[:HEAD_SIZE].count(0) == HEAD_SIZE
                        or raw[-TRAIL_SIZE:].count(0) == TRAIL_SIZE
                        or self._holds_zero_page(chunk.offset, chunk.offset + chunk.stored_len)
                    ):
                        return False
                    raise
        return True

    def _commit_context(self, offset: int, epoch: int | None = None) -> bytes:
        epoch = self._header.epoch if epoch is None else epoch
        return _COMMIT_CONTEXT + self._header.coffer_id + struct.pack(">IQ", epoch, offset)

    def _read_commit(self, offset: int) -> _Commit:
        head = framing.parse_head(_pread_exact(self._fd, HEAD_SIZE, offset))
        if head is None or head.kind not in COMMIT_KINDS:
            raise IntegrityError(f"commit record at offset {offset} is damaged or missing")
        kind, body = framing.unframe(_pread_exact(self._fd, head.total, offset), offset)
        try:
            with decompression_limit(_index_cap(len(body))):
                plain = open_layer(self._container_layer, body, self._commit_context(offset))
        except IntegrityError as exc:
            raise self._auth_error(f"commit record at offset {offset}", exc) from None
        header, ops = decode_commit(bytes(plain))
        return _Commit(offset, head.total, kind, header, ops)

    def _auth_error(self, what: str, exc: IntegrityError) -> IntegrityError:
        if self._last is None and self._container_layer.authenticates and not self._keys.uses_password:
            # Nothing has authenticated yet: a wrong key looks exactly like this.
            return WrongKeyError(
                f"{self.path}: wrong key or passphrase for this coffer, or its {what} is damaged"
            )
        return IntegrityError(f"{self.path}: {what} fails authentication ({exc})")

    def _adopt_chain(self, last: _Commit) -> None:
        """Rebuild the index from ``last`` back to its checkpoint."""
        chain = [last]
        while chain[-1].kind == KIND_COMMIT:
            current = chain[-1]
            prev_offset = current.header.prev_offset
            if not self._header_len <= prev_offset < current.offset:
                raise IntegrityError(f"commit at offset {current.offset} has a bad back link")
            prev = self._read_commit(prev_offset)
            expected_checkpoint = prev.offset if prev.kind == KIND_CHECKPOINT else prev.header.checkpoint_offset
            if (
                prev.header.seq + 1 != current.header.seq
                or expected_checkpoint != current.header.checkpoint_offset
                or current.header.data_start != prev.end
            ):
                raise IntegrityError(f"commit at offset {current.offset} does not follow its predecessor")
            chain.append(prev)
        checkpoint = chain[-1]
        if checkpoint.header.checkpoint_offset != checkpoint.offset or any(
            op.code != OP_PUT for op in checkpoint.ops
        ):
            raise IntegrityError(f"checkpoint at offset {checkpoint.offset} is malformed")
        entries: dict[str, MemberEntry] = {}
        for commit in reversed(chain):
            apply_ops(entries, commit.ops)
        self._entries = entries
        self._last = last
        self.seq = last.header.seq
        self._committed_end = last.end
        self._checkpoint_bytes = checkpoint.length
        self._deltas_since_checkpoint = len(chain) - 1
        self._delta_bytes = sum(commit.length for commit in chain[:-1])

    def _write_header(self, fd: int, header: FileHeader) -> int:
        """Write the header and both key-slot copies; return where records start."""
        copy = framing.encode_slot_copy(self._slot_generation, self._slots)
        _pwrite_all(fd, header.encode() + copy + copy, 0)
        return header.records_start

    @property
    def coffer_type(self) -> CofferType:
        return self._type

    @property
    def coffer_id(self) -> bytes:
        return self._header.coffer_id

    @property
    def keyslots(self) -> bytes:
        return self._slots

    def write_keyslots(self, blob: bytes) -> None:
        """Replace the key-slot blob, crash-safely: one copy, sync, the other, sync.

        Once both copies are rewritten, no trace of a removed slot is left.
        """
        self._check_writable()
        generation = self._slot_generation + 1
        try:
            copy = framing.encode_slot_copy(generation, blob)
        except ValueError as exc:
            raise InvalidArgumentError(f"{exc}: remove a key slot first") from None
        if self._backup_pending:
            self._write_backup()  # the backup keeps the key slots as they were at open, too
        base = self._header.size
        published = self._tmp_path is None  # an unpublished file is synced when published
        try:
            # Not while an early sync runs: of two syncs at once, only one
            # would hear of a failed write of these pages.
            self._finish_early_sync()
            for index in (0, 1):
                _pwrite_all(self._fd, copy, base + index * framing.SLOT_COPY_SIZE)
                if published:
                    os.fdatasync(self._fd)
        except OSError as exc:
            self._broken = exc
            raise CofferBrokenError(f"{self.path}: key slots could not be written ({exc})") from exc
        except BaseException as exc:
            # An interrupt (KeyboardInterrupt...) between the copies: the file
            # may hold the old slots or the new, and this object can't tell
            # which; a later change (a compaction) could write the wrong ones
            # back. Refuse changes until the coffer is opened again.
            self._broken = exc
            raise
        self._slot_generation, self._slots = generation, blob

    def _repair_slot_copies(self) -> None:
        """Make both key-slot copies say what the newest intact one says.

        One copy differs after a change of key slots was interrupted (or a
        copy was damaged); left alone, the older copy could still hold a
        slot that was being removed.
        """
        copy = framing.encode_slot_copy(self._slot_generation, self._slots)
        for index in (0, 1):
            _pwrite_all(self._fd, copy, self._header.size + index * framing.SLOT_COPY_SIZE)
            os.fdatasync(self._fd)

    def _sibling(self, purpose: str) -> Path:
        # See _SIBLING_NAME, which must match what this makes.
        return self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.pycoffer-{purpose}")

    def _remove_stale_siblings(self) -> None:
        # Left by a process killed while creating or compacting this coffer;
        # we hold the writer's lock, so no live process owns them. Matched by
        # the exact name ``_sibling`` makes: another coffer's (``data.old``
        # beside ``data``) belongs to a process holding another lock.
        with os.scandir(self.path.parent) as entries:
            for entry in entries:
                found = _SIBLING_NAME.fullmatch(entry.name)
                if found is not None and found["coffer"] == self.path.name:
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        pass

    # ------------------------------------------------------------ members

    @property
    def entries(self) -> Mapping[str, MemberEntry]:
        return self._entries

    def new_member_id(self) -> bytes:
        return os.urandom(MEMBER_ID_SIZE)

    def _chunk_context(self, chunk_id: bytes) -> bytes:
        return _CHUNK_CONTEXT + self._header.coffer_id + chunk_id

    def _data_context(self) -> bytes:
        return _DATA_CONTEXT + self._header.coffer_id

    def seal_chunk(self, member_id: bytes, chunk_no: int, data: bytes) -> SealedChunk:
        tag = os.urandom(CHUNK_TAG_SIZE)
        chunk_id = _CHUNK_ID.pack(member_id, chunk_no, tag)
        inner = self._member_layer.seal(data, self._chunk_context(chunk_id))
        body = self._container_layer.seal(
            chunk_id + inner, self._data_context(), compressible=not self._member_precompressed
        )
        return SealedChunk(framing.frame(KIND_DATA, body), len(data), tag)

    def store_sealed(self, sealed: SealedChunk) -> Chunk:
        self._check_writable()
        offset = self._append_data(sealed.record)
        return Chunk(offset, len(sealed.record), sealed.plain_len, sealed.tag)

    def _open_data(self, body: memoryview) -> tuple[bytes, bytes | memoryview]:
        """Open a data record's body: its chunk id and its plaintext (maybe a
        view of ``body``: layers that take views copy nothing)."""
        with decompression_limit(MAX_CHUNK_RECORD):
            plain = memoryview(open_layer(self._container_layer, body, self._data_context()))
            chunk_id = bytes(plain[: _CHUNK_ID.size])
            if len(chunk_id) != _CHUNK_ID.size:
                raise IntegrityError("member data record is too short")
            return chunk_id, open_layer(self._member_layer, plain[_CHUNK_ID.size :], self._chunk_context(chunk_id))

    def _append(self, record: bytes) -> int:
        offset = self._write_end
        try:
            _pwrite_all(self._fd, record, offset)
        except OSError:
            self._truncate_to(offset)
            raise
        self._write_end = offset + len(record)
        return offset

    def _append_data(self, record: bytes) -> int:
        offset = self._append(record)
        if self._write_end - max(self._synced_end, self._committed_end) >= EARLY_SYNC_BYTES:
            self._start_early_sync()
        return offset

    def _start_early_sync(self) -> None:
        """Sync what is written so far on another thread (see ``EARLY_SYNC_BYTES``)."""
        if self._early_sync is not None:
            if self._early_sync.is_alive():
                return  # one at a time; the next record tries again
            self._join_early_sync()
        previous, self._synced_end = self._synced_end, self._write_end
        fd = self._fd

        def sync() -> None:
            try:
                os.fdatasync(fd)
            except OSError as exc:
                # Raised by the next commit: after a failed sync the page
                # cache can no longer say what reached the disk.
                self._early_sync_error = exc

        thread = threading.Thread(target=sync, name="pycoffer-early-sync", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            # No thread to be had (a thread limit, interpreter shutdown): the
            # commit's own sync still covers these bytes; only speed is lost.
            self._synced_end = previous
            return
        self._early_sync = thread

    def _finish_early_sync(self) -> None:
        """Wait for the early sync; raise the error it met, if any."""
        self._join_early_sync()
        error, self._early_sync_error = self._early_sync_error, None
        if error is not None:
            raise error

    def _join_early_sync(self) -> None:
        """Wait for the early sync, if one runs: before a commit, and before the
        descriptor is truncated, swapped or closed."""
        if self._early_sync is not None:
            self._early_sync.join()
            self._early_sync = None

    def _truncate_to(self, offset: int) -> None:
        self._join_early_sync()
        self._synced_end = min(self._synced_end, offset)
        self._runway_end = min(self._runway_end, offset)
        try:
            os.ftruncate(self._fd, offset)
        except OSError as exc:
            self._broken = exc

    def _renew_runway(self, commit_bytes: int) -> None:
        """After a small commit, make sure the next one lands on synced zeros
        (see ``RUNWAY``), once the session has made ``RUNWAY_AFTER_COMMITS``
        of them; never for close's own checkpoint.
        A failure here costs only speed, so it is not raised: the commit is
        already durable, and zeros after the last record, written or not,
        synced or not, are never-written space to every reader."""
        if commit_bytes > RUNWAY_COMMIT_MAX:
            return
        self._small_commits += 1
        if self._small_commits < RUNWAY_AFTER_COMMITS or self._runway_end - self._write_end >= RUNWAY // 4:
            return
        start = max(self._runway_end, self._write_end)
        end = self._write_end + RUNWAY
        try:
            _pwrite_all(self._fd, bytes(end - start), start)
            os.fdatasync(self._fd)
        except OSError:
            # Zeros may lie past the records now, synced or not: close cuts
            # them off all the same.
            try:
                self._runway_end = max(self._write_end, os.fstat(self._fd).st_size)
            except OSError:
                self._runway_end = self._write_end
        else:
            self._runway_end = end

    def _drop_runway(self) -> None:
        """Cut the runway off, so a closed coffer ends at its last record."""
        if self._runway_end > self._write_end:
            self._runway_end = self._write_end
            try:
                os.ftruncate(self._fd, self._write_end)
            except OSError:
                pass  # zeros left after the last record: the next open skips them

    def open_chunk(self, fd: int, chunk: Chunk, member_id: bytes, chunk_no: int) -> bytes | memoryview:
        """Read, check and open one chunk from the file open on ``fd`` (as a
        view where the layers copied nothing)."""
        if fd < 0:
            raise ClosedCofferError("the coffer is closed")
        if chunk.stored_len > MAX_STORED_CHUNK:
            raise IntegrityError(f"record at offset {chunk.offset} claims {chunk.stored_len} bytes")
        raw = os.pread(fd, chunk.stored_len, chunk.offset)  # bounded above: no fstat needed
        if len(raw) != chunk.stored_len:
            raise IntegrityError(f"coffer is truncated: record expected at offset {chunk.offset}")
        kind, body = framing.unframe(raw, chunk.offset, check_body=self._chunk_crc)
        if kind != KIND_DATA:
            raise IntegrityError(f"record at offset {chunk.offset} is not member data")
        try:
            chunk_id, data = self._open_data(body)
        except IntegrityError as exc:
            raise type(exc)(f"record at offset {chunk.offset}: {exc}") from None
        if chunk_id != _CHUNK_ID.pack(member_id, chunk_no, chunk.tag):
            raise IntegrityError(
                f"record at offset {chunk.offset} belongs to another member, position or write"
            )
        if len(data) != chunk.plain_len:
            raise IntegrityError(f"record at offset {chunk.offset} has the wrong length")
        return data

    def chunk_source(self, entry: MemberEntry) -> ChunkSource:
        return _Chunks(self, self._fd, entry)

    def put(self, entry: MemberEntry) -> None:
        self._check_writable()
        if entry.name not in self._undo:
            self._undo[entry.name] = self._entries.get(entry.name)
        self._entries[entry.name] = entry

    def delete(self, name: str) -> None:
        self._check_writable()
        if name not in self._undo:
            self._undo[name] = self._entries.get(name)
        self._entries.pop(name, None)

    # ------------------------------------------------------------ commits

    def _pending_ops(self) -> list[Op]:
        ops = []
        for name in sorted(self._undo):
            op = diff_ops(self._undo[name], self._entries.get(name), name)
            if op is not None:
                ops.append(op)
        return ops

    def pending(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        changed, deleted = [], []
        for name in sorted(self._undo):
            if self._undo[name] is self._entries.get(name):
                continue
            (deleted if name not in self._entries else changed).append(name)
        return tuple(changed), tuple(deleted)

    def _has_changes(self) -> bool:
        """Whether any name changed since the last commit (the test ``diff_ops``
        applies, without building the ops: this runs before every commit)."""
        return any(old is not self._entries.get(name) for name, old in self._undo.items())

    def needs_commit(self) -> bool:
        return self._tmp_path is not None or self._has_changes()

    def wants_checkpoint(self) -> bool:
        return (
            self._writable
            and not self._broken
            and self._deltas_since_checkpoint >= CLOSE_CHECKPOINT_DELTAS
        )

    def commit(self, *, checkpoint: bool = False) -> int:
        self._check_writable()
        ops = self._pending_ops()
        if not ops and self._tmp_path is None and not checkpoint:
            self._undo.clear()  # changes that cancel out
            return self.seq
        if self._backup_pending:
            self._write_backup()
        seq = self.seq + 1
        offset = self._write_end
        last = self._last
        time_ns = time.time_ns()
        kind = KIND_CHECKPOINT
        body = b""
        if last is not None and not checkpoint and self._deltas_since_checkpoint < MAX_DELTAS:
            checkpoint_offset = (
                last.offset if last.kind == KIND_CHECKPOINT else last.header.checkpoint_offset
            )
            header = CommitHeader(seq, last.offset, checkpoint_offset, self._committed_end, time_ns)
            body = self._seal_commit(header, ops, offset)
            if self._delta_bytes + OVERHEAD + len(body) <= max(MIN_CHECKPOINT_BYTES, self._checkpoint_bytes):
                kind = KIND_COMMIT
        if kind == KIND_CHECKPOINT:
            header = CommitHeader(
                seq=seq,
                prev_offset=last.offset if last else 0,
                checkpoint_offset=offset,
                data_start=self._committed_end,
                time_ns=time_ns,
            )
            everything = [Op(OP_PUT, name, entry) for name, entry in sorted(self._entries.items())]
            body = self._seal_commit(header, everything, offset)
            ops = everything
        record = framing.frame(kind, body)
        try:
            self._finish_early_sync()
            # The data first (see PRESYNC_THRESHOLD), unless the file is not
            # published yet: the rename comes after the whole file is synced.
            if offset - self._committed_end > PRESYNC_THRESHOLD and self._tmp_path is None:
                os.fdatasync(self._fd)
        except OSError as exc:
            self._broken = exc
            raise CofferBrokenError(
                f"{self.path}: the commit's data could not be made durable ({exc}); "
                "close the coffer and open it again"
            ) from exc
        self._append(record)
        try:
            os.fdatasync(self._fd)
            if self._tmp_path is not None:
                self._publish_new_file()
            if self._dir_sync_pending:
                self._sync_dir()
            self._count_commit(_Commit(offset, len(record), kind, header, ops))
        except CofferExistsError as exc:
            # Mode "x": the path was taken while the coffer was open. Nothing
            # was published; this coffer can't be.
            self._broken = exc
            raise
        except OSError as exc:
            # The disk may or may not hold this commit; the page cache can no
            # longer be trusted to say which (see PostgreSQL's "fsyncgate").
            self._broken = exc
            raise CofferBrokenError(
                f"{self.path}: the commit could not be made durable ({exc}); "
                "close the coffer and open it again"
            ) from exc
        except BaseException as exc:
            # An interrupt (KeyboardInterrupt...) once the record is out: the
            # commit may be durable already. Cutting the record off would not
            # be durable itself, so keep it and refuse further changes.
            self._broken = exc
            raise
        if not checkpoint:  # close's checkpoint: the runway would be cut at once
            self._renew_runway(self._write_end - header.data_start)
        return seq

    def _count_commit(self, commit: _Commit) -> None:
        """Make ``commit``, written and synced, the last one."""
        self._last = commit
        self.seq = commit.header.seq
        self._committed_end = self._write_end
        self._undo.clear()
        if commit.kind == KIND_CHECKPOINT:
            self._checkpoint_bytes, self._deltas_since_checkpoint, self._delta_bytes = commit.length, 0, 0
        else:
            self._deltas_since_checkpoint += 1
            self._delta_bytes += commit.length

    def _seal_commit(
        self, header: CommitHeader, ops: list[Op], offset: int, epoch: int | None = None
    ) -> bytes:
        encoded = encode_commit(header, ops)
        context = self._commit_context(offset, epoch)
        body = self._container_layer.seal(encoded, context, compressible=len(encoded) >= MIN_COMPRESSED_INDEX)
        if len(encoded) > _index_cap(len(body)):
            # Compresses better than a reader accepts (see INDEX_EXPANSION): store it raw.
            body = self._container_layer.seal(encoded, context, compressible=False)
        return body

    def _publish_new_file(self) -> None:
        """First commit of a new coffer: move it into place, atomically."""
        assert self._tmp_path is not None
        tmp = self._tmp_path
        if self._exclusive:
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                raise CofferExistsError(f"{self.path} appeared while the coffer was open") from None
            self._tmp_path = None
            self._dir_sync_pending = True
            os.unlink(tmp)
        else:
            os.replace(tmp, self.path)
            self._tmp_path = None
        self._dir_sync_pending = True

    def _sync_dir(self) -> None:
        """Make the last rename in the coffer's folder durable.

        Until this succeeds, every commit tries it again before it is
        acknowledged: a commit appended to a file whose name may still revert
        to an older file after a crash is not durable.
        """
        fsync_dir(self.path.parent)
        self._dir_sync_pending = False

    def _write_backup(self) -> None:
        """Keep the coffer as it was at open as ``backup``, before the first commit."""
        assert self._backup is not None
        tmp = self._sibling("backup")
        try:
            if self._tmp_path is not None:
                # Mode "new": the old file is left untouched, so a link keeps it.
                os.link(self.path, tmp)
            else:
                self._copy_prefix(tmp, self._open_end)
            os.replace(tmp, self._backup)
            fsync_dir(self._backup.parent)
        finally:
            tmp.unlink(missing_ok=True)
        self._backup_pending = False

    def _copy_prefix(self, dest: Path, length: int) -> None:
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            offset = 0
            while offset < length:
                block = os.pread(self._fd, min(1 << 20, length - offset), offset)
                if not block:
                    raise IntegrityError(f"{self.path} shrank while being backed up")
                _pwrite_all(out, block, offset)
                offset += len(block)
            os.fsync(out)
        finally:
            os.close(out)

    def discard(self, *, keep_bytes: bool = False) -> None:
        for name, old in self._undo.items():
            if old is None:
                self._entries.pop(name, None)
            else:
                self._entries[name] = old
        self._undo.clear()
        # Once broken, the bytes past the last commit we know of may hold a
        # commit that did reach the disk: leave them for the next open to judge.
        if keep_bytes:
            return  # records of writers still open lie past the last commit
        if self._writable and self._fd >= 0 and not self._broken and self._write_end > self._committed_end:
            self._truncate_to(self._committed_end)
            self._write_end = self._committed_end
            if not self._broken:
                # An early sync only ever covers records written since the
                # last commit (commits and key-slot writes wait for it):
                # what its error concerned is cut off now.
                self._early_sync_error = None

    # ------------------------------------------------------------ upkeep

    def stats(self) -> dict[str, int]:
        live = sum(entry.stored_bytes for entry in self._entries.values())
        index = self._checkpoint_bytes + self._delta_bytes
        return {
            "format_version": framing.FORMAT_VERSION,
            "file_size": self._committed_end,
            "live_bytes": live,
            "index_bytes": index,
            "dead_bytes": max(0, self._committed_end - self._header_len - live - index),
            "members": len(self._entries),
            "seq": self.seq,
            "ignored_bytes": self._ignored_at_open,
        }

    def should_compact(self) -> bool:
        stats = self.stats()
        return (
            stats["file_size"] >= COMPACT_MIN_FILE
            and stats["dead_bytes"] > COMPACT_DEAD_FRACTION * stats["file_size"]
        )

    def compact(self) -> None:
        self._check_writable()
        self._join_early_sync()  # its descriptor is about to be retired
        if self._has_changes() or self._tmp_path is not None:
            raise RuntimeError("compact() needs every change committed first")
        self._undo.clear()  # only changes that cancel out (a member made and deleted)
        if self._backup_pending:
            self._write_backup()
        header = FileHeader(self._header.coffer_id, self._header.epoch + 1, self._header.type_name, self._header.params)
        tmp = self._sibling("compact")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            position = self._write_header(fd, header)
            entries: dict[str, MemberEntry] = {}
            by_first_offset = sorted(self._entries.values(), key=lambda e: e.chunks[0].offset if e.chunks else 0)
            for entry in by_first_offset:
                moved = []
                for chunk in entry.chunks:
                    raw = _pread_exact(self._fd, chunk.stored_len, chunk.offset)
                    framing.unframe(raw, chunk.offset)  # never copy damage silently
                    _pwrite_all(fd, raw, position)
                    moved.append(Chunk(position, chunk.stored_len, chunk.plain_len, chunk.tag))
                    position += chunk.stored_len
                entries[entry.name] = MemberEntry(entry.name, entry.member_id, entry.size, entry.mtime_ns, tuple(moved))
            seq = self.seq + 1
            commit_header = CommitHeader(seq, 0, position, position, time.time_ns())
            ops = [Op(OP_PUT, name, entry) for name, entry in sorted(entries.items())]
            body = self._seal_commit(commit_header, ops, position, header.epoch)
            record = framing.frame(KIND_CHECKPOINT, body)
            _pwrite_all(fd, record, position)
            os.fsync(fd)
            os.replace(tmp, self.path)
        except BaseException as exc:
            if not _names(self.path, fd):
                os.close(fd)
                tmp.unlink(missing_ok=True)
                raise
            # Interrupted once the rename was made: the compacted file is the
            # coffer now, and later commits must go to it, not to the old one.
            try:
                self._adopt_compacted(fd, header, entries, position, record, commit_header, ops)
            except BaseException:
                self._broken = exc
            raise
        self._adopt_compacted(fd, header, entries, position, record, commit_header, ops)
        self._sync_dir()

    def _adopt_compacted(
        self,
        fd: int,
        header: FileHeader,
        entries: dict[str, MemberEntry],
        position: int,
        record: bytes,
        commit_header: CommitHeader,
        ops: list[Op],
    ) -> None:
        """Make the compacted file, renamed into place, the one this container writes."""
        # Readers of the old version keep its descriptor until the container closes.
        self._retired_fds.append(self._fd)
        self._fd = fd
        self._header = header
        self._header_len = header.records_start
        self._entries = entries
        self._write_end = self._runway_end = position + len(record)
        self._count_commit(_Commit(position, len(record), KIND_CHECKPOINT, commit_header, ops))
        # The new file was synced whole; an early sync's error concerned
        # records of the old one that were not carried over.
        self._synced_end, self._early_sync_error = 0, None
        # From here on the compacted file is the coffer; if its rename can't be
        # made durable now, the next commit retries before it is acknowledged.
        self._dir_sync_pending = True

    def verify(self) -> None:
        """Authenticate every record up to the end of what was written."""
        if not framing.slot_copies_consistent(self._fd, self._header.size):
            raise IntegrityError(
                f"{self.path}: a copy of the key-slot area is damaged, or the two disagree in a "
                "way no interrupted change leaves (opening the coffer for writing rewrites both)"
            )
        seen: dict[int, tuple[bytes, int, int]] = {}
        offset = self._header_len
        while offset < self._write_end:
            head = framing.parse_head(_pread_exact(self._fd, HEAD_SIZE, offset))
            if head is None:
                raise IntegrityError(f"record header at offset {offset} is damaged")
            kind, body = framing.unframe(_pread_exact(self._fd, head.total, offset), offset)
            if kind == KIND_DATA:
                chunk_id, data = self._open_data(body)
                seen[offset] = (chunk_id, head.total, len(data))
            else:
                self._read_commit(offset)
            offset += head.total
        if offset != self._write_end:
            raise IntegrityError("the last record runs past the end of the coffer")
        for entry in self._entries.values():
            for number, chunk in enumerate(entry.chunks):
                expected = (_CHUNK_ID.pack(entry.member_id, number, chunk.tag), chunk.stored_len, chunk.plain_len)
                if seen.get(chunk.offset) != expected:
                    raise IntegrityError(
                        f"member {entry.name!r}: chunk {number} at offset {chunk.offset} "
                        "is missing or belongs elsewhere"
                    )

    # ------------------------------------------------------------ life cycle

    def _check_writable(self) -> None:
        if self._broken is not None:
            raise CofferBrokenError(
                f"{self.path}: an earlier failure ({self._broken!r}) left this coffer object "
                "unsure of the disk; close it and open the coffer again"
            )
        if not self._writable:
            raise RuntimeError("container opened read-only")

    @property
    def closed(self) -> bool:
        return self._fd < 0

    @property
    def broken(self) -> bool:
        return self._broken is not None

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self._join_early_sync()
                self.discard()
                if self._writable and not self._broken:
                    self._drop_runway()
            finally:
                os.close(self._fd)
                self._fd = -1
        for fd in self._retired_fds:
            os.close(fd)
        self._retired_fds.clear()
        if self._tmp_path is not None:
            self._tmp_path.unlink(missing_ok=True)
            self._tmp_path = None
