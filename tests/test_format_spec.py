"""An independent reader of the coffer format, written from ``docs/format.md`` alone.

It uses ``struct``, ``zlib``, ``hmac`` and ``pyzstd``, and never imports
``pycoffer_core.container``: if it parses the frozen vectors and freshly
written coffers and agrees with the :class:`Coffer` API, the spec says
enough to write a reader. The library is used only to *write* coffers and as
the reference the reader is compared with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import pyzstd

from pycoffer_core import Coffer, CofferType, IntegrityError, Layer, hookimpl
from pycoffer_core.plugins import find_type, registered

VECTORS = Path(__file__).resolve().parent / "vectors"
FORMAT_DOC = Path(__file__).resolve().parents[1] / "docs" / "format.md"
EXPECTED = json.loads((VECTORS / "null-v1.json").read_text(encoding="utf-8"))


# ====================================================================== the reader


class FormatError(Exception):
    """The file is damaged, tampered with, or not a coffer (the reader's IntegrityError)."""


def crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


MAGIC = b"\x89COFFER\n"
SLOT_COPY = 2048
KINDS = {1: "data", 2: "commit", 3: "checkpoint"}
PUT, EXTEND, DELETE = 1, 2, 3


@dataclass
class Header:
    version: int
    length: int
    epoch: int
    coffer_id: bytes
    type_name: str
    params: bytes

    @property
    def records_start(self) -> int:
        return self.length + 2 * SLOT_COPY


def parse_header(raw: bytes) -> Header:
    if len(raw) < 32 or raw[:8] != MAGIC:
        raise FormatError("not a coffer")
    version, length, epoch = struct.unpack_from(">HHI", raw, 8)
    if version != 1:
        raise FormatError(f"version {version}")
    if not 39 <= length <= len(raw):
        raise FormatError("header length")
    if crc(raw[: length - 4]) != struct.unpack_from(">I", raw, length - 4)[0]:
        raise FormatError("header CRC")
    n = raw[32]
    type_name = raw[33 : 33 + n].decode("ascii")
    (p,) = struct.unpack_from(">H", raw, 33 + n)
    if 35 + n + p + 4 != length:
        raise FormatError("header lengths")
    return Header(version, length, epoch, raw[16:32], type_name, raw[35 + n : 35 + n + p])


def slot_copy(raw: bytes, at: int) -> tuple[int, bytes] | None:
    """(generation, blob) of the copy at ``at``, or None if it is not intact."""
    copy = raw[at : at + SLOT_COPY]
    if len(copy) != SLOT_COPY:
        return None
    generation, b = struct.unpack_from(">QI", copy)
    if b > 2032 or crc(copy[: 12 + b]) != struct.unpack_from(">I", copy, 12 + b)[0]:
        return None
    if any(copy[16 + b :]):
        return None
    return generation, copy[12 : 12 + b]


def key_slots(raw: bytes, header: Header) -> tuple[int, bytes]:
    copies = [slot_copy(raw, header.length + i * SLOT_COPY) for i in (0, 1)]
    intact = [c for c in copies if c is not None]
    if not intact:
        raise FormatError("both key-slot copies damaged")
    return max(intact)


@dataclass
class Head:
    kind: int
    length: int  # L, the body length

    @property
    def total(self) -> int:
        return self.length + 19


def valid_head(raw: bytes, offset: int) -> Head | None:
    h = raw[offset : offset + 10]
    if len(h) < 10:
        return None
    kind, flags, length, head_crc = struct.unpack(">BBII", h)
    if crc(h[:6]) != head_crc or kind not in KINDS or flags != 0:
        return None
    return Head(kind, length)


def trail_matches(raw: bytes, offset: int, head: Head) -> bool:
    t = raw[offset + 10 + head.length : offset + head.total]
    if len(t) != 9:
        return False
    _, length, marker = struct.unpack(">IIB", t)
    return length == head.length and marker == 0xA5


def whole_record(raw: bytes, offset: int) -> tuple[Head, bytes]:
    head = valid_head(raw, offset)
    if head is None or offset + head.total > len(raw) or not trail_matches(raw, offset, head):
        raise FormatError(f"record at {offset}: head or trail")
    body = raw[offset + 10 : offset + 10 + head.length]
    if crc(body) != struct.unpack_from(">I", raw, offset + 10 + head.length)[0]:
        raise FormatError(f"record at {offset}: body CRC")
    return head, body


def walk_records(raw: bytes, start: int) -> list[tuple[int, Head, bytes]]:
    """Every record of a file that ends cleanly, as (offset, head, body)."""
    out, offset = [], start
    while offset < len(raw):
        head, body = whole_record(raw, offset)
        out.append((offset, head, body))
        offset += head.total
    return out


# ---------------------------------------------------------------- layers and contexts


class SpecLayer:
    def open(self, data: bytes, context: bytes) -> bytes:
        raise NotImplementedError


class SpecPlain(SpecLayer):
    def open(self, data: bytes, context: bytes) -> bytes:
        return data


class SpecZstd(SpecLayer):
    def open(self, data: bytes, context: bytes) -> bytes:
        if data[:1] == b"\x00":
            return data[1:]
        if data[:1] == b"\x01":
            cap = 256 << 20
            decompressor = pyzstd.ZstdDecompressor()
            try:
                plain = decompressor.decompress(data[1:], cap + 1)
            except pyzstd.ZstdError as exc:
                raise FormatError(str(exc)) from None
            if len(plain) > cap or not decompressor.eof or decompressor.unused_data:
                raise FormatError("zstd payload is not exactly one frame within the cap")
            return plain
        raise FormatError("zstd flag")


def data_context(coffer_id: bytes) -> bytes:
    return b"pycoffer/data\x00" + coffer_id


def chunk_id(member_id: bytes, chunk_no: int, tag: bytes) -> bytes:
    return member_id + struct.pack(">Q", chunk_no) + tag


def chunk_context(coffer_id: bytes, chunk_id: bytes) -> bytes:
    return b"pycoffer/chunk\x00" + coffer_id + chunk_id


def commit_context(coffer_id: bytes, epoch: int, offset: int) -> bytes:
    return b"pycoffer/commit\x00" + coffer_id + struct.pack(">IQ", epoch, offset)


# ---------------------------------------------------------------- commit bodies


@dataclass(frozen=True)
class ChunkRef:
    offset: int
    stored: int
    plain: int
    tag: bytes


@dataclass
class Entry:
    member_id: bytes
    size: int
    mtime_ns: int
    chunks: list[ChunkRef]


@dataclass
class SpecOp:
    code: int
    name: str
    member_id: bytes = b""
    size: int = 0
    mtime_ns: int = 0
    chunks: list[ChunkRef] = field(default_factory=list)


@dataclass
class SpecCommit:
    offset: int
    kind: int
    total: int
    seq: int
    prev: int
    checkpoint: int
    data_start: int
    time_ns: int
    ops: list[SpecOp]


def decode_commit_body(plain: bytes, offset: int, kind: int, total: int) -> SpecCommit:
    try:
        seq, prev, checkpoint, data_start, time_ns, count = struct.unpack_from(">QQQQqI", plain)
        pos, ops = 44, []
        for _ in range(count):
            code, k = struct.unpack_from(">BH", plain, pos)
            name = plain[pos + 3 : pos + 3 + k].decode("utf-8")
            pos += 3 + k
            if code == PUT:
                member_id = plain[pos : pos + 16]
                size, mtime, c = struct.unpack_from(">QqI", plain, pos + 16)
                pos += 36
                op = SpecOp(PUT, name, member_id, size, mtime)
            elif code == EXTEND:
                size, mtime, c = struct.unpack_from(">QqI", plain, pos)
                pos += 20
                op = SpecOp(EXTEND, name, b"", size, mtime)
            elif code == DELETE:
                op, c = SpecOp(DELETE, name), 0
            else:
                raise FormatError(f"op {code}")
            for _ in range(c):
                op.chunks.append(ChunkRef(*struct.unpack_from(">QII8s", plain, pos)))
                pos += 24
            ops.append(op)
    except (struct.error, UnicodeDecodeError) as exc:
        raise FormatError(f"commit at {offset} malformed: {exc}") from None
    if pos != len(plain):
        raise FormatError(f"commit at {offset}: trailing bytes")
    return SpecCommit(offset, kind, total, seq, prev, checkpoint, data_start, time_ns, ops)


def apply(index: dict[str, Entry], ops: list[SpecOp]) -> None:
    for op in ops:
        if op.code == PUT:
            entry = Entry(op.member_id, op.size, op.mtime_ns, list(op.chunks))
        elif op.code == EXTEND:
            if op.name not in index:
                raise FormatError(f"EXTEND of missing {op.name!r}")
            old = index[op.name]
            entry = Entry(old.member_id, op.size, op.mtime_ns, old.chunks + op.chunks)
        else:
            if index.pop(op.name, None) is None:
                raise FormatError(f"DELETE of missing {op.name!r}")
            continue
        if sum(c.plain for c in entry.chunks) != entry.size or len(entry.member_id) != 16:
            raise FormatError(f"entry {op.name!r} inconsistent")
        index[op.name] = entry


# ---------------------------------------------------------------- opening


class SpecCoffer:
    """A read-only coffer, opened with the algorithm of docs/format.md."""

    def __init__(self, raw: bytes, type_name: str, container: SpecLayer, member: SpecLayer) -> None:
        self.raw = raw
        self.container = container
        self.member = member
        self.header = parse_header(raw)
        if self.header.type_name != type_name:
            raise FormatError(f"wrong type {self.header.type_name}")
        self.slot_generation, self.slot_blob = key_slots(raw, self.header)
        self.start = self.header.records_start
        last = self.last_commit_at_end()
        self.used_fast_path = last is not None
        if last is None:
            last = self.scan()
        if last is None:
            raise FormatError("no complete commit")
        if not self.fresh_data_present(last):
            if last.prev == 0:
                raise FormatError("no complete commit")
            last = self.read_commit(last.prev)
        self.chain = self.walk_chain(last)
        self.index: dict[str, Entry] = {}
        for commit in reversed(self.chain):
            apply(self.index, commit.ops)
        self.seq = last.seq
        self.end = last.offset + last.total

    def read_commit(self, offset: int) -> SpecCommit:
        head, body = whole_record(self.raw, offset)
        if KINDS[head.kind] == "data":
            raise FormatError(f"no commit at {offset}")
        plain = self.container.open(body, commit_context(self.header.coffer_id, self.header.epoch, offset))
        return decode_commit_body(plain, offset, head.kind, head.total)

    def last_commit_at_end(self) -> SpecCommit | None:
        size = len(self.raw)
        if size < self.start + 19:
            return None
        _, length, marker = struct.unpack(">IIB", self.raw[-9:])
        if marker != 0xA5:
            return None
        start = size - 19 - length
        if start < self.start:
            return None
        head = valid_head(self.raw, start)
        if head is None or head.kind == 1 or head.length != length:
            return None
        try:
            return self.read_commit(start)
        except FormatError:
            return None

    def zero_start(self) -> int:
        return max(self.start, len(self.raw.rstrip(b"\x00")))

    def scan(self) -> SpecCommit | None:
        size, zero_start = len(self.raw), self.zero_start()
        offset, last = self.start, None
        while offset < size:
            if offset + 10 > size or offset >= zero_start:
                break
            head = valid_head(self.raw, offset)
            if head is None:
                if offset + 10 > zero_start:
                    break
                raise FormatError(f"record head at {offset} damaged")
            end = offset + head.total
            if end > size or end > zero_start:
                break
            if head.kind != 1:
                last = self.read_commit(offset)
            elif not trail_matches(self.raw, offset, head):
                raise FormatError(f"record at {offset}: trail")
            offset = end
        return last

    def fresh_data_present(self, commit: SpecCommit) -> bool:
        for op in commit.ops:
            for chunk in op.chunks:  # PUT: all its chunks; EXTEND: the new ones
                if chunk.offset < commit.data_start:
                    continue
                head = self.raw[chunk.offset : chunk.offset + 10]
                trail = self.raw[chunk.offset + chunk.stored - 9 : chunk.offset + chunk.stored]
                if not any(head) or not any(trail):
                    return False
                parsed = valid_head(self.raw, chunk.offset)
                if parsed is None or parsed.kind != 1 or parsed.total != chunk.stored:
                    raise FormatError(f"fresh record at {chunk.offset} damaged")
                if not trail_matches(self.raw, chunk.offset, parsed):
                    raise FormatError(f"fresh record at {chunk.offset}: trail")
        return True

    def walk_chain(self, last: SpecCommit) -> list[SpecCommit]:
        chain = [last]
        while chain[-1].kind == 2:
            c = chain[-1]
            if not self.start <= c.prev < c.offset:
                raise FormatError(f"commit at {c.offset}: back link")
            p = self.read_commit(c.prev)
            expected_checkpoint = p.offset if p.kind == 3 else p.checkpoint
            if p.seq + 1 != c.seq or c.checkpoint != expected_checkpoint:
                raise FormatError(f"commit at {c.offset} does not follow {p.offset}")
            chain.append(p)
        checkpoint = chain[-1]
        if checkpoint.checkpoint != checkpoint.offset or any(op.code != PUT for op in checkpoint.ops):
            raise FormatError(f"checkpoint at {checkpoint.offset} malformed")
        return chain

    def read_chunk(self, entry: Entry, i: int) -> bytes:
        ref = entry.chunks[i]
        head, body = whole_record(self.raw, ref.offset)
        if head.kind != 1 or head.total != ref.stored:
            raise FormatError(f"chunk at {ref.offset}: not the indexed data record")
        plain = self.container.open(body, data_context(self.header.coffer_id))
        cid = chunk_id(entry.member_id, i, ref.tag)
        if len(plain) < 32 or plain[:32] != cid:
            raise FormatError(f"chunk at {ref.offset} belongs elsewhere")
        data = self.member.open(plain[32:], chunk_context(self.header.coffer_id, cid))
        if len(data) != ref.plain:
            raise FormatError(f"chunk at {ref.offset}: length")
        return data

    def read(self, name: str) -> bytes:
        entry = self.index[name]
        return b"".join(self.read_chunk(entry, i) for i in range(len(entry.chunks)))


def spec_null(raw: bytes) -> SpecCoffer:
    return SpecCoffer(raw, "null", SpecZstd(), SpecPlain())


# ====================================================================== helpers


def api_view(path: Path, type_name: str = "null", **keys) -> tuple[int, dict[str, tuple[int, int, bytes]]]:
    """(seq, {name: (size, mtime_ns, content)}) as the Coffer API sees the file."""
    with Coffer.open(path, "r", type=type_name, **keys) as coffer:
        members = {i.name: (i.filesize, i.mtime_ns, coffer.read(i.name)) for i in coffer.getmembers()}
        return coffer.stats()["seq"], members


def spec_view(spec: SpecCoffer) -> tuple[int, dict[str, tuple[int, int, bytes]]]:
    return spec.seq, {name: (e.size, e.mtime_ns, spec.read(name)) for name, e in spec.index.items()}


def assert_agree(path: Path, spec: SpecCoffer, type_name: str = "null", **keys) -> None:
    assert spec_view(spec) == api_view(path, type_name, **keys)


@pytest.fixture
def vector(tmp_path: Path) -> Path:
    path = tmp_path / "null-v1.coffer"
    shutil.copyfile(VECTORS / "null-v1.coffer", path)
    return path


def write_session(path: Path, type_name: str = "null", **keys) -> None:
    """Several commits of every kind of change, through the public API."""
    big = b"".join(b"%07d compressible line of text\n" % i for i in range(12000))  # two chunks
    with Coffer.open(path, "w", type=type_name, **keys) as coffer:
        coffer.write("a.txt", b"alpha\n")
        coffer.write("big.bin", big)
        coffer.write("empty", b"")
        coffer.write("tree/b.txt", b"beta\n" * 40)
        coffer.flush()
        coffer.append("a.txt", b"more alpha\n")
        coffer.append("big.bin", b"tail\n" * 3)
        coffer.delete("empty")
        coffer.flush()
        coffer.rename("tree/b.txt", "tree/renamed.txt")
        coffer.write("a.txt", b"replaced\n")
        coffer.flush()


# ====================================================================== the vector


def test_the_header_and_key_slots_of_the_vector_are_as_documented():
    raw = (VECTORS / "null-v1.coffer").read_bytes()
    header = parse_header(raw)
    assert (header.version, header.type_name, header.params, header.epoch) == (1, "null", b"", 1)
    assert header.length == 39 + len("null")
    assert header.coffer_id.hex() == EXPECTED["coffer_id"]
    assert header.records_start == EXPECTED["records_start"]
    empty_copy = bytes(12) + bytes.fromhex("7BD5C66F") + bytes(2032)
    assert raw[header.length : header.length + SLOT_COPY] == empty_copy
    assert raw[header.length + SLOT_COPY : header.records_start] == empty_copy
    assert key_slots(raw, header) == (0, b"")


def test_the_records_of_the_vector_tile_the_file_as_the_json_lists_them():
    raw = (VECTORS / "null-v1.coffer").read_bytes()
    records = walk_records(raw, parse_header(raw).records_start)
    assert [(o, KINDS[h.kind], h.total) for o, h, _ in records] == [
        (r["offset"], r["kind"], r["length"]) for r in EXPECTED["records"]
    ]


def test_the_commit_chain_of_the_vector_is_a_checkpoint_and_two_deltas():
    spec = spec_null((VECTORS / "null-v1.coffer").read_bytes())
    assert spec.used_fast_path
    chain = list(reversed(spec.chain))
    assert [(c.offset, KINDS[c.kind], c.seq) for c in chain] == [
        (c["offset"], c["kind"], c["seq"]) for c in EXPECTED["commits"]
    ]
    checkpoint, second, third = chain
    assert checkpoint.prev == 0 and checkpoint.checkpoint == checkpoint.offset
    assert checkpoint.data_start == spec.start
    assert {op.code for op in checkpoint.ops} == {PUT}
    assert (second.prev, second.checkpoint, second.data_start) == (
        checkpoint.offset, checkpoint.offset, checkpoint.offset + checkpoint.total
    )
    assert sorted((op.code, op.name) for op in second.ops) == [(EXTEND, "log.txt"), (DELETE, "deleted.txt")]
    assert sorted((op.code, op.name) for op in third.ops) == [(PUT, "hello.txt"), (PUT, "later.txt")]
    assert third.prev == second.offset and third.checkpoint == checkpoint.offset


def test_the_reader_finds_the_vector_members_the_json_and_the_api_list(vector):
    spec = spec_null(vector.read_bytes())
    for name, want in EXPECTED["members"].items():
        entry = spec.index[name]
        data = spec.read(name)
        assert (entry.size, entry.mtime_ns) == (want["size"], want["mtime_ns"]), name
        assert hashlib.sha256(data).hexdigest() == want["sha256"], name
    assert set(spec.index) == set(EXPECTED["members"])
    assert len(spec.index["big/lines.txt"].chunks) == 2
    assert spec.index["empty"].chunks == []
    assert_agree(vector, spec)


def test_the_data_records_of_the_vector_carry_member_id_chunk_number_and_tag(vector):
    spec = spec_null(vector.read_bytes())
    for entry in spec.index.values():
        for number, ref in enumerate(entry.chunks):
            _, body = whole_record(spec.raw, ref.offset)
            plain = SpecZstd().open(body, b"")
            assert plain[:16] == entry.member_id
            assert struct.unpack(">Q", plain[16:24])[0] == number
            assert plain[24:32] == ref.tag


def test_the_scan_and_the_fast_path_agree_on_the_vector():
    spec = spec_null((VECTORS / "null-v1.coffer").read_bytes())
    scanned = spec.scan()
    assert scanned is not None and scanned.offset == spec.chain[0].offset


# ====================================================================== the worked example


def _doc_example_bytes() -> bytes:
    block = re.search(r"<!-- hex-example:start -->\n```text\n(.*?)\n```", FORMAT_DOC.read_text(), re.S)
    assert block, "docs/format.md has no generated hex example"
    out = bytearray()
    for line in block.group(1).splitlines():
        if not line.startswith("0x"):
            continue  # notes, and decompressed bodies (offsets "+...")
        offset, rest = int(line[2:6], 16), line[8:55]
        assert offset == len(out), f"hex example skips or repeats bytes at {line!r}"
        zeros = re.fullmatch(r"\((\d+) zero bytes\)\s*", rest)
        out += bytes(int(zeros.group(1))) if zeros else bytes.fromhex(rest)
    return bytes(out)


def test_the_worked_example_in_format_md_is_every_byte_of_the_tiny_vector():
    assert _doc_example_bytes() == (VECTORS / "null-tiny.coffer").read_bytes()


def test_the_tiny_vector_holds_a_checkpoint_and_an_extending_delta():
    spec = spec_null((VECTORS / "null-tiny.coffer").read_bytes())
    assert spec.read("hello.txt") == b"Hello, world!\nBye!\n"
    delta, checkpoint = spec.chain
    assert (checkpoint.kind, delta.kind) == (3, 2)
    assert [(op.code, op.name) for op in delta.ops] == [(EXTEND, "hello.txt")]
    assert [c.plain for c in spec.index["hello.txt"].chunks] == [14, 5]


# ====================================================================== fresh coffers


def test_the_reader_agrees_with_the_api_on_a_freshly_written_coffer(tmp_path):
    path = tmp_path / "fresh.coffer"
    write_session(path)
    spec = spec_null(path.read_bytes())
    assert spec.seq == 3 and len(spec.chain) == 3
    assert set(spec.index) == {"a.txt", "big.bin", "tree/renamed.txt"}
    ops_of_rename = sorted((op.code, op.name) for op in spec.chain[0].ops)
    assert (PUT, "tree/renamed.txt") in ops_of_rename and (DELETE, "tree/b.txt") in ops_of_rename
    renamed = spec.chain[0].ops[[op.name for op in spec.chain[0].ops].index("tree/renamed.txt")]
    old = next(op for op in spec.chain[-1].ops if op.name == "tree/b.txt")
    assert (renamed.member_id, renamed.chunks) == (old.member_id, old.chunks)  # no data copied
    assert_agree(path, spec)


def test_after_compaction_the_epoch_grows_and_one_checkpoint_holds_copied_records(tmp_path):
    path = tmp_path / "compact.coffer"
    write_session(path)
    before = spec_null(path.read_bytes())
    with Coffer.open(path, "a", type="null") as coffer:
        coffer.compact()
    raw = path.read_bytes()
    after = spec_null(raw)
    assert after.header.epoch == before.header.epoch + 1
    assert after.header.coffer_id == before.header.coffer_id
    assert after.seq == before.seq + 1
    (checkpoint,) = after.chain
    assert (checkpoint.kind, checkpoint.prev) == (3, 0)
    assert checkpoint.checkpoint == checkpoint.data_start == checkpoint.offset
    assert checkpoint.offset + checkpoint.total == len(raw)
    for name, entry in after.index.items():
        old = before.index[name]
        assert entry.member_id == old.member_id
        for new_ref, old_ref in zip(entry.chunks, old.chunks, strict=True):
            assert raw[new_ref.offset : new_ref.offset + new_ref.stored] == before.raw[
                old_ref.offset : old_ref.offset + old_ref.stored
            ]  # copied byte for byte
    assert spec_view(after)[1] == spec_view(before)[1]
    assert_agree(path, after)


def test_a_commit_record_does_not_open_in_another_epoch(tmp_path):
    path = tmp_path / "epoch.coffer"
    with Coffer.open(path, "w", type=TOY) as coffer:
        coffer.write("a", b"x")
    raw = bytearray(path.read_bytes())
    raw[12:16] = struct.pack(">I", 2)  # epoch 1 -> 2, header CRC fixed up
    (header_len,) = struct.unpack(">H", raw[10:12])
    raw[header_len - 4 : header_len] = struct.pack(">I", crc(bytes(raw[: header_len - 4])))
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="tag mismatch"):
        toy_spec(bytes(raw))
    with pytest.raises(IntegrityError):
        api_view(path, TOY)


# ====================================================================== interrupted commits and damage


def _three_commits(tmp_path: Path) -> tuple[Path, SpecCoffer]:
    path = tmp_path / "tail.coffer"
    write_session(path)
    return path, spec_null(path.read_bytes())


def _api_error(path: Path) -> type[BaseException] | None:
    try:
        api_view(path)
    except IntegrityError as exc:
        return type(exc)
    return None


def test_a_truncated_last_commit_is_an_interrupted_commit_for_both_readers(tmp_path):
    path, spec = _three_commits(tmp_path)
    last = spec.chain[0]
    path.write_bytes(spec.raw[: last.offset + last.total - 5])
    cut = spec_null(path.read_bytes())
    assert not cut.used_fast_path
    assert cut.seq == 2
    assert_agree(path, cut)


def test_a_zeroed_tail_is_never_written_space_for_both_readers(tmp_path):
    path, spec = _three_commits(tmp_path)
    last = spec.chain[0]
    raw = bytearray(spec.raw)
    raw[last.offset + 3 :] = bytes(len(raw) - last.offset - 3)
    path.write_bytes(bytes(raw))
    zeroed = spec_null(bytes(raw))
    assert zeroed.seq == 2
    assert_agree(path, zeroed)


def test_a_last_commit_whose_data_never_reached_the_disk_falls_back_for_both_readers(tmp_path):
    path, spec = _three_commits(tmp_path)
    last = spec.chain[0]
    fresh = [c for op in last.ops for c in op.chunks if c.offset >= last.data_start]
    assert fresh
    raw = bytearray(spec.raw)
    raw[fresh[0].offset : fresh[0].offset + 10] = bytes(10)  # its head never written
    path.write_bytes(bytes(raw))
    fallen = spec_null(bytes(raw))
    assert fallen.seq == 2
    assert_agree(path, fallen)


def test_a_damaged_last_commit_is_damage_for_both_readers(tmp_path):
    path, spec = _three_commits(tmp_path)
    last = spec.chain[0]
    raw = bytearray(spec.raw)
    raw[last.offset + 12] ^= 0x40  # inside the body: the body CRC fails
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError):
        spec_null(bytes(raw))
    assert _api_error(path) is not None


def test_a_damaged_head_in_the_middle_is_damage_for_both_readers(tmp_path):
    path, spec = _three_commits(tmp_path)
    middle = spec.chain[1]
    raw = bytearray(spec.raw)
    raw[middle.offset + 2] ^= 0x01  # its head CRC fails, far from any zero tail
    raw[-9:] = bytes(9)  # and the fast path can't be taken
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=f"head at {middle.offset}"):
        spec_null(bytes(raw))
    assert _api_error(path) is not None


def test_one_damaged_key_slot_copy_is_survived_and_two_are_not_by_both_readers(tmp_path):
    path, spec = _three_commits(tmp_path)
    raw = bytearray(spec.raw)
    raw[spec.header.length + SLOT_COPY + 100] = 1  # padding of copy 1
    path.write_bytes(bytes(raw))
    assert spec_null(bytes(raw)).slot_blob == b""
    assert_agree(path, spec_null(bytes(raw)))
    with Coffer.open(path, "r", type="null") as coffer, pytest.raises(IntegrityError, match="key-slot"):
        coffer.verify()
    raw[spec.header.length + 5] ^= 1  # generation of copy 0
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError):
        spec_null(bytes(raw))
    assert _api_error(path) is not None


def test_a_header_with_another_version_is_refused_by_both_readers(tmp_path):
    path, spec = _three_commits(tmp_path)
    raw = bytearray(spec.raw)
    raw[8:10] = struct.pack(">H", 2)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="version"):
        spec_null(bytes(raw))
    with pytest.raises(ValueError, match="version 2"):
        api_view(path)


# ====================================================================== contexts, proven with an authenticating toy type


TOY = "spec-toy-hmac"


class ToyMac(Layer):
    """Test-only layer: data ‖ HMAC-SHA256(key, u32 len(context) ‖ context ‖ data)."""

    authenticates = True

    def __init__(self, key: bytes) -> None:
        self.key = key

    def tag(self, data: bytes, context: bytes) -> bytes:
        return hmac.digest(self.key, struct.pack(">I", len(context)) + context + data, "sha256")

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        return bytes(data) + self.tag(data, context)

    def open(self, data: bytes, context: bytes) -> bytes:
        body, tag = data[:-32], data[-32:]
        if not hmac.compare_digest(tag, self.tag(body, context)):
            raise IntegrityError("toy tag mismatch")
        return bytes(body)


class SpecToyMac(SpecLayer):
    """The reader's own copy of the toy layer: the contexts it checks come from the spec."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def open(self, data: bytes, context: bytes) -> bytes:
        body, tag = data[:-32], data[-32:]
        want = hmac.digest(self.key, struct.pack(">I", len(context)) + context + body, "sha256")
        if not hmac.compare_digest(tag, want):
            raise FormatError(f"tag mismatch for context {context!r}")
        return body


CONTAINER_KEY, MEMBER_KEY = b"c" * 32, b"m" * 32


class ToyType(CofferType):
    name = TOY
    description = "test only: HMAC-tagged layers that make every context matter"

    def container_layer(self) -> Layer:
        return ToyMac(CONTAINER_KEY)

    def member_layer(self) -> Layer:
        return ToyMac(MEMBER_KEY)


class ToyPlugin:
    @hookimpl
    def pycoffer_types(self) -> list[type[CofferType]]:
        return [ToyType]


@pytest.fixture(autouse=True)
def toy_type():
    with registered(ToyPlugin()):
        yield


def toy_spec(raw: bytes) -> SpecCoffer:
    return SpecCoffer(raw, TOY, SpecToyMac(CONTAINER_KEY), SpecToyMac(MEMBER_KEY))


def test_the_documented_contexts_are_exactly_those_the_library_binds(tmp_path):
    path = tmp_path / "toy.coffer"
    write_session(path, TOY)
    spec = toy_spec(path.read_bytes())  # every tag checked against the spec's contexts
    assert spec.seq == 3
    assert_agree(path, spec, TOY)
    with Coffer.open(path, "a", type=TOY) as coffer:
        coffer.compact()
    assert_agree(path, toy_spec(path.read_bytes()), TOY)


@pytest.mark.parametrize(
    "wrong",
    [
        lambda coffer, chunk: b"pycoffer/chunk\x00" + coffer + chunk[:16] + struct.pack(">Q", 1) + chunk[24:],
        lambda coffer, chunk: b"pycoffer/chunk\x00" + coffer + chunk[:24] + bytes(8),
        lambda coffer, chunk: b"pycoffer/chunk\x00" + bytes(16) + chunk,
        lambda coffer, chunk: b"pycoffer/chunk" + coffer + chunk,
        lambda coffer, chunk: b"pycoffer/chunk\x00" + coffer + chunk[:24],
    ],
    ids=["chunk number", "tag", "coffer id", "no NUL", "no tag"],
)
def test_a_context_differing_from_the_spec_fails_to_open(tmp_path, wrong: Callable, monkeypatch):
    path = tmp_path / "toy.coffer"
    write_session(path, TOY)
    spec = toy_spec(path.read_bytes())
    monkeypatch.setitem(globals(), "chunk_context", wrong)
    with pytest.raises(FormatError, match="tag mismatch"):
        spec.read("a.txt")


def test_a_record_left_by_an_abandoned_append_cannot_stand_in_for_the_committed_chunk(tmp_path):
    path = tmp_path / "replay.coffer"
    chunk = 256 * 1024
    with Coffer.open(path, "w", type=TOY) as coffer:
        coffer.write("log", b"A" * chunk)
        coffer.flush()
        with pytest.raises(RuntimeError), coffer.file("log", "ab") as stream:
            stream.write(b"B" * chunk * 24)  # more than are sealed ahead: some reach the file
            raise RuntimeError("the caller gives up")
        coffer.append("log", b"C" * chunk * 24)
    spec = toy_spec(path.read_bytes())
    entry = spec.index["log"]
    live = {ref.offset: (number, ref) for number, ref in enumerate(entry.chunks)}
    dead = []
    for offset, head, body in walk_records(spec.raw, spec.start):
        if head.kind == 1 and offset not in live:
            plain = SpecToyMac(CONTAINER_KEY).open(body, data_context(spec.header.coffer_id))
            dead.append((offset, head.total, plain[:32]))
    assert dead, "the abandoned append left no record to replay"
    offset, total, dead_id = dead[0]
    number = struct.unpack(">Q", dead_id[16:24])[0]
    target = entry.chunks[number]
    assert dead_id[:24] == chunk_id(entry.member_id, number, b"")  # same member, same position
    assert dead_id[24:] != target.tag and total == target.stored
    raw = bytearray(spec.raw)
    raw[target.offset : target.offset + total] = spec.raw[offset : offset + total]
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="belongs elsewhere"):
        toy_spec(bytes(raw)).read("log")
    with Coffer.open(path, "r", type=TOY) as coffer:
        with pytest.raises(IntegrityError):
            coffer.read("log")
        with pytest.raises(IntegrityError):
            coffer.verify()


# ====================================================================== the member key check


def _params_of(path: Path) -> tuple[bytes, bytes]:
    """The coffer id and the params of the header at ``path``."""
    raw = path.read_bytes()
    name_len = raw[32]
    (params_len,) = struct.unpack(">H", raw[33 + name_len : 35 + name_len])
    return raw[16:32], raw[35 + name_len : 35 + name_len + params_len]


@pytest.mark.parametrize("type_name", ["bank", "market"])
def test_the_header_params_hold_the_member_key_check_as_documented(tmp_path, type_name):
    """Params: ``u8 tag ‖ u16 length ‖ value``; tag 1 is the member layer's
    seal of ``pycoffer member key check`` in ``"pycoffer/member-key\\0" ‖ coffer_id``."""
    path = tmp_path / "k.coffer"
    keys = Coffer.gen_params(type_name)
    with Coffer.open(path, "w", type=type_name, **keys) as coffer:
        coffer.write("a", b"x")
    coffer_id, params = _params_of(path)
    tag, length = struct.unpack(">BH", params[:3])
    assert (tag, length + 3) == (1, len(params))
    member_layer = find_type(type_name)(**keys).member_layer()
    context = b"pycoffer/member-key\x00" + coffer_id
    assert member_layer.open(params[3:], context) == b"pycoffer member key check"


@pytest.mark.parametrize("type_name", ["null", "store", "aes"])
def test_a_member_layer_that_does_not_authenticate_leaves_the_params_empty(tmp_path, type_name):
    path = tmp_path / "k.coffer"
    with Coffer.open(path, "w", type=type_name, **Coffer.gen_params(type_name)) as coffer:
        coffer.write("a", b"x")
    assert _params_of(path)[1] == b""


def test_params_entries_decode_with_unknown_tags_and_other_bytes_are_opaque():
    from pycoffer_core.container import framing

    encoded = framing.encode_params({9: b"later", 1: b"check"})
    assert encoded == b"\x01\x00\x05check\x09\x00\x05later"
    assert framing.decode_params(encoded) == {1: b"check", 9: b"later"}
    assert framing.decode_params(b"") == {}
    for opaque in (encoded[:-1], encoded[:2], encoded + encoded[:8], b"\x07"):
        assert framing.decode_params(opaque) is None


def test_a_coffer_whose_params_are_not_entries_opens_unchecked(tmp_path, monkeypatch):
    """Version 1 first reserved the params and bound readers to accept any
    bytes there: a file from such a writer still opens (with no key check)."""
    from pycoffer_core.container import framing

    path = tmp_path / "p.coffer"
    monkeypatch.setattr(framing, "encode_params", lambda entries: b"\x07")  # a writer of other params
    with Coffer.open(path, "w", type=TOY) as coffer:
        coffer.write("a", b"x")
    monkeypatch.undo()
    raw = path.read_bytes()
    name_len = raw[32]
    assert raw[33 + name_len : 36 + name_len] == b"\x00\x01\x07"
    with Coffer.open(path, "r", type=TOY) as coffer:
        assert coffer.read("a") == b"x"
