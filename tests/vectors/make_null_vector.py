#!/usr/bin/env python3
"""Make the frozen test vectors of the ``null`` type, format version 1.

    .venv/bin/python tests/vectors/make_null_vector.py           # make missing vectors
    .venv/bin/python tests/vectors/make_null_vector.py --force   # remake them (see below)
    .venv/bin/python tests/vectors/make_null_vector.py --docs    # rewrite the hex example

It writes, beside itself:

- ``null-v1.coffer`` and ``null-v1.json``: a coffer of three commits (a
  checkpoint, then two deltas) holding an empty member, a nested non-ASCII
  name, small text, incompressible bytes, a member of more than one chunk,
  a deleted member, a replaced one and an appended one, so the file holds
  PUT, EXTEND and DELETE operations and dead records. The JSON says what a
  reader must find: names, sizes, mtimes, contents (text, base64, or a
  SHA-256 for the large member), the commit chain and every record.
- ``null-tiny.coffer``: one small member written, then appended to; its
  annotated hex dump is the worked example of ``docs/format.md``
  (``--docs`` puts it there, between the ``hex-example`` markers).

The vectors are *frozen*: the tests check that today's code reads what was
written when format version 1 was defined. Remake them only together with a
new format version (and new file names), never to make a test pass. (They
were remade once under version 1, before any release, when chunk tags were
added to the format in commit 92b6411.) Coffer
ids, member ids and commit times are random or taken from the clock, so a
remade vector never has the same bytes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import pyzstd

from pycoffer_core import Coffer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VECTOR = HERE / "null-v1.coffer"
EXPECTED = HERE / "null-v1.json"
TINY = HERE / "null-tiny.coffer"
FORMAT_DOC = ROOT / "docs" / "format.md"

#: Fixed mtimes (ns since the epoch) of the members stored with ``add``.
MTIME_1 = 1_700_000_000_123_456_789
MTIME_2 = 1_700_000_100_000_000_000
MTIME_3 = 1_700_000_200_500_000_000

NESTED = "docs/nested/dir/ünïcödé name.txt"


def big_content() -> bytes:
    """Compressible text of more than one 256 KiB chunk."""
    lines = (f"{i:06d} the quick brown fox jumps over the lazy dog\n" for i in range(6000))
    return "".join(lines).encode("ascii")


def random_content() -> bytes:
    return random.Random(20240601).randbytes(200)


# ---------------------------------------------------------------- the vector


def _stage(folder: Path, data: bytes, mtime_ns: int) -> Path:
    path = folder / hashlib.sha256(data + str(mtime_ns).encode()).hexdigest()
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def _build_vector(path: Path, staging: Path) -> None:
    """Three commits through the public API; the type's auto flush is off."""
    with Coffer.open(path, "w", type="null") as coffer:
        assert not coffer.auto_flush
        # Commit 1: a checkpoint.
        first = {
            "empty": b"",
            "hello.txt": b"Hello, coffer!\n",
            NESTED: "Ünïcödé text in a nested folder.\n".encode() * 3,
            "big/lines.txt": big_content(),
            "random.bin": random_content(),
            "deleted.txt": b"this member is deleted by the second commit\n",
            "log.txt": b"first line\n",
        }
        for name, data in first.items():
            coffer.add(_stage(staging, data, MTIME_1), name)
        coffer.flush()
        # Commit 2: a delta with DELETE and EXTEND.
        coffer.delete("deleted.txt")
        coffer.append("log.txt", b"second line, appended by the second commit\n")
        coffer.flush()
        # Commit 3: a delta with PUTs: a replaced member and a new one.
        coffer.add(_stage(staging, b"Hello again, coffer! (replaced by commit 3)\n", MTIME_2), "hello.txt")
        coffer.add(_stage(staging, b"added by the third commit\n", MTIME_3), "later.txt")
        coffer.flush()


def _content(data: bytes) -> dict[str, object]:
    out: dict[str, object] = {"sha256": hashlib.sha256(data).hexdigest()}
    if len(data) <= 4096:
        try:
            out["text"] = data.decode("utf-8")
        except UnicodeDecodeError:
            out["base64"] = base64.b64encode(data).decode("ascii")
    return out


def _expected(path: Path) -> dict[str, object]:
    raw = path.read_bytes()
    header_len = struct.unpack_from(">H", raw, 10)[0]
    (epoch,) = struct.unpack_from(">I", raw, 12)
    members = {}
    with Coffer.open(path, "r", type="null") as coffer:
        for info in coffer.getmembers():
            data = coffer.read(info.name)
            members[info.name] = {"size": info.filesize, "mtime_ns": info.mtime_ns, **_content(data)}
        stats = coffer.stats()
        coffer.verify()
    records = list(_walk(raw, header_len + 2 * 2048))
    commits = [
        {"offset": off, "kind": kind, "seq": struct.unpack_from(">Q", _open_zstd_layer(body))[0]}
        for off, kind, _, body in records
        if kind in ("commit", "checkpoint")
    ]
    return {
        "format_version": 1,
        "type": "null",
        "file": {"name": path.name, "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()},
        "coffer_id": raw[16:32].hex(),
        "epoch": epoch,
        "records_start": header_len + 2 * 2048,
        "seq": stats["seq"],
        "members": members,
        "deleted": ["deleted.txt"],
        "commits": commits,
        "records": [{"offset": off, "kind": kind, "length": length} for off, kind, length, _ in records],
    }


# ---------------------------------------------------------------- a tiny reader

_KINDS = {1: "data", 2: "commit", 3: "checkpoint"}


def _walk(raw: bytes, start: int):
    """(offset, kind, total length, body) of each record; the file must be whole."""
    offset = start
    while offset < len(raw):
        kind, flags, length = struct.unpack_from(">BBI", raw, offset)
        body = raw[offset + 10 : offset + 10 + length]
        trail = raw[offset + 10 + length : offset + 19 + length]
        assert flags == 0 and trail[-1] == 0xA5, f"not a record at {offset}"
        yield offset, _KINDS[kind], 19 + length, body
        offset += 19 + length


def _open_zstd_layer(body: bytes) -> bytes:
    return body[1:] if body[0] == 0 else pyzstd.decompress(body[1:])


# ---------------------------------------------------------------- the hex example


class _Dump:
    """Rows of ``offset  hex bytes  meaning``; every byte of the file appears once."""

    WIDTH = 16

    def __init__(self) -> None:
        self.lines: list[str] = []

    def row(self, offset: int, data: bytes, label: str, *, relative: bool = False) -> None:
        prefix = "  +" if relative else "0x"
        for i in range(0, max(len(data), 1), self.WIDTH):
            part = data[i : i + self.WIDTH]
            self.lines.append(f"{prefix}{offset + i:04x}  {part.hex(' '):<47}  {label if i == 0 else '…'}")

    def zeros(self, offset: int, count: int, label: str) -> None:
        self.lines.append(f"0x{offset:04x}  {f'({count} zero bytes)':<47}  {label}")

    def note(self, text: str) -> None:
        self.lines.append(f"        {text}")


def _u(data: bytes, fmt: str, pos: int) -> int:
    return struct.unpack_from(fmt, data, pos)[0]


def _dump_fields(d: _Dump, base: int, data: bytes, fields: list[tuple[int, str]], relative: bool) -> int:
    pos = 0
    for size, label in fields:
        d.row(base + pos, data[pos : pos + size], label, relative=relative)
        pos += size
    return pos


def _dump_commit_body(d: _Dump, base: int, body: bytes, relative: bool) -> None:
    seq, prev, checkpoint, data_start, time_ns, count = struct.unpack_from(">QQQQqI", body)
    pos = _dump_fields(
        d,
        base,
        body,
        [
            (8, f"seq = {seq}"),
            (8, f"prev commit offset = {prev}" + (" (none)" if prev == 0 else "")),
            (8, f"checkpoint offset = {checkpoint}"),
            (8, f"data start = {data_start}"),
            (8, f"time = {time_ns} ns"),
            (4, f"op count = {count}"),
        ],
        relative,
    )
    for _ in range(count):
        code = body[pos]
        name_len = _u(body, ">H", pos + 1)
        name = body[pos + 3 : pos + 3 + name_len].decode()
        fields = [(1, f"op = {code} ({ {1: 'PUT', 2: 'EXTEND', 3: 'DELETE'}[code] })"),
                  (2, f"name length = {name_len}"), (name_len, f"name {name!r}")]
        if code == 1:
            n = _u(body, ">I", pos + 3 + name_len + 32)
            fields += [
                (16, "member id"),
                (8, f"size = {_u(body, '>Q', pos + 3 + name_len + 16)}"),
                (8, f"mtime = {_u(body, '>q', pos + 3 + name_len + 24)} ns"),
                (4, f"chunk count = {n}"),
            ]
        elif code == 2:
            n = _u(body, ">I", pos + 3 + name_len + 16)
            fields += [
                (8, f"size after = {_u(body, '>Q', pos + 3 + name_len)}"),
                (8, f"mtime = {_u(body, '>q', pos + 3 + name_len + 8)} ns"),
                (4, f"new chunk count = {n}"),
            ]
        else:
            n = 0
        pos += _dump_fields(d, base + pos, body[pos:], fields, relative)
        for i in range(n):
            off, stored, plain = struct.unpack_from(">QII", body, pos)
            pos += _dump_fields(
                d,
                base + pos,
                body[pos:],
                [
                    (8, f"chunk offset = {off}"),
                    (4, f"stored length = {stored}"),
                    (4, f"plain length = {plain}"),
                    (8, "chunk tag (random)"),
                ],
                relative,
            )
    assert pos == len(body)


def _dump_data_plain(d: _Dump, base: int, plain: bytes, relative: bool) -> None:
    _dump_fields(
        d,
        base,
        plain,
        [(16, "member id"), (8, f"chunk number = {_u(plain, '>Q', 16)}"), (8, "chunk tag (random)")],
        relative,
    )
    d.row(base + 32, plain[32:], f"member-layer output (plain): {plain[32:]!r}", relative=relative)


def hex_example(raw: bytes) -> str:
    d = _Dump()
    name_len = raw[32]
    header_len = _u(raw, ">H", 10)
    d.note("--- file header ---")
    _dump_fields(
        d,
        0,
        raw,
        [
            (8, 'magic "\\x89COFFER\\n"'),
            (2, f"format version = {_u(raw, '>H', 8)}"),
            (2, f"header length = {header_len}"),
            (4, f"epoch = {_u(raw, '>I', 12)}"),
            (16, "coffer id (random)"),
            (1, f"type name length = {name_len}"),
            (name_len, f"type name {raw[33:33 + name_len].decode()!r}"),
            (2, f"params length = {_u(raw, '>H', 33 + name_len)}"),
            (4, "CRC-32 of the header bytes before it"),
        ],
        False,
    )
    assert _u(raw, ">H", 33 + name_len) == 0  # the example has no params to show
    for copy in (0, 1):
        base = header_len + copy * 2048
        blob_len = _u(raw, ">I", base + 8)
        d.note(f"--- key-slot area, copy {copy} ---")
        pos = _dump_fields(
            d,
            base,
            raw[base:],
            [(8, f"generation = {_u(raw, '>Q', base)}"), (4, f"blob length = {blob_len}")]
            + ([(blob_len, "key-slot blob")] if blob_len else [])
            + [(4, "CRC-32 of generation, length and blob")],
            False,
        )
        d.zeros(base + pos, 2048 - pos, "zero padding to 2048 bytes")
    for offset, kind, length, body in _walk(raw, header_len + 4096):
        d.note(f"--- record: {kind} ---")
        _dump_fields(
            d,
            offset,
            raw[offset:],
            [
                (1, f"kind = {raw[offset]} ({kind})"),
                (1, "flags = 0"),
                (4, f"body length = {len(body)}"),
                (4, "CRC-32 of the 6 bytes before it"),
            ],
            False,
        )
        start = offset + 10
        d.row(start, body[:1], f"zstd-layer flag = {body[0]} ({'raw' if body[0] == 0 else 'zstd'})")
        plain = _open_zstd_layer(body)
        if body[0] == 0:
            (_dump_data_plain if kind == "data" else _dump_commit_body)(d, start + 1, plain, False)
        else:
            d.row(start + 1, body[1:], f"zstd frame, {len(plain)} bytes decompressed:")
            (_dump_data_plain if kind == "data" else _dump_commit_body)(d, 0, plain, True)
        _dump_fields(
            d,
            start + len(body),
            raw[start + len(body) :],
            [(4, "CRC-32 of the body"), (4, f"body length again = {len(body)}"), (1, "end marker 0xa5")],
            False,
        )
    d.note(f"--- end of file: {len(raw)} bytes ---")
    return "\n".join(d.lines)


def _build_tiny(path: Path, staging: Path) -> None:
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("hello.txt", b"Hello, world!\n")
        coffer.flush()
        coffer.append("hello.txt", b"Bye!\n")


# ---------------------------------------------------------------- main


def _make(target: Path, build) -> None:
    with tempfile.TemporaryDirectory(prefix="pycoffer-vector-") as tmp:
        folder = Path(tmp)
        staging = folder / "staging"
        staging.mkdir()
        made = folder / target.name
        build(made, staging)
        if target is VECTOR:
            EXPECTED.write_text(json.dumps(_expected(made), indent=1, ensure_ascii=False) + "\n")
        shutil.copyfile(made, target)


def write_docs() -> None:
    text = FORMAT_DOC.read_text()
    block = f"<!-- hex-example:start -->\n```text\n{hex_example(TINY.read_bytes())}\n```\n<!-- hex-example:end -->"
    new, count = re.subn(
        r"<!-- hex-example:start -->.*?<!-- hex-example:end -->", lambda _: block, text, flags=re.S
    )
    if count != 1:
        sys.exit(f"{FORMAT_DOC} needs one pair of hex-example markers")
    FORMAT_DOC.write_text(new)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="remake vectors that exist (see the docstring)")
    parser.add_argument("--docs", action="store_true", help="rewrite the hex example in docs/format.md")
    args = parser.parse_args(argv)
    for target, build in ((VECTOR, _build_vector), (TINY, _build_tiny)):
        if target.exists() and not args.force:
            print(f"{target.name}: exists, kept (frozen)")
            continue
        _make(target, build)
        print(f"{target.name}: written")
    if args.docs:
        write_docs()
        print(f"{FORMAT_DOC}: hex example rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
