"""The frozen ``null`` vector of format version 1 reads, through the Coffer API, as written.

``tests/vectors/null-v1.coffer`` was made once by ``make_null_vector.py``;
``null-v1.json`` says what it holds. If one of these tests fails, the code no
longer reads files that earlier versions wrote: fix the code, not the vector.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from pycoffer_core import Coffer, IntegrityError, MemberNotFoundError

VECTORS = Path(__file__).resolve().parent / "vectors"
FROZEN = VECTORS / "null-v1.coffer"
EXPECTED = json.loads((VECTORS / "null-v1.json").read_text(encoding="utf-8"))
MEMBERS: dict[str, dict] = EXPECTED["members"]
CHUNK = 256 * 1024


def expected_bytes(spec: dict) -> bytes | None:
    """The content the JSON spells out, or None where it gives only a hash."""
    if "text" in spec:
        return spec["text"].encode("utf-8")
    if "base64" in spec:
        return base64.b64decode(spec["base64"])
    return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def vector(tmp_path: Path) -> Path:
    """A copy of the vector: opening writes a lock file beside it, and some tests change it."""
    path = tmp_path / "null-v1.coffer"
    shutil.copyfile(FROZEN, path)
    return path


def open_null(path: Path, mode: str = "r") -> Coffer:
    return Coffer.open(path, mode, type="null")


def test_the_vector_on_disk_is_the_frozen_one():
    raw = FROZEN.read_bytes()
    assert len(raw) == EXPECTED["file"]["size"]
    assert sha256(raw) == EXPECTED["file"]["sha256"]


def test_the_json_describes_the_members_it_was_made_with():
    assert len(MEMBERS) == 7
    assert any(spec["size"] > CHUNK for spec in MEMBERS.values())
    assert any(spec["size"] == 0 for spec in MEMBERS.values())
    assert any("/" in name and not name.isascii() for name in MEMBERS)
    for name, spec in MEMBERS.items():
        content = expected_bytes(spec)
        if content is not None:
            assert len(content) == spec["size"], name
            assert sha256(content) == spec["sha256"], name


def test_type_of_reads_the_type_without_a_key(vector):
    assert Coffer.type_of(vector) == "null"


def test_getmembers_lists_every_member_with_its_size_and_mtime(vector):
    with open_null(vector) as coffer:
        listed = [(info.name, info.filesize, info.mtime_ns) for info in coffer.getmembers()]
    assert listed == [(name, spec["size"], spec["mtime_ns"]) for name, spec in sorted(MEMBERS.items())]


@pytest.mark.parametrize("name", sorted(MEMBERS))
def test_each_member_reads_back_exactly(vector, name):
    spec = MEMBERS[name]
    with open_null(vector) as coffer:
        data = coffer.read(name)
        info = coffer.getmember(name)
    assert info.filesize == len(data) == spec["size"]
    assert sha256(data) == spec["sha256"]
    content = expected_bytes(spec)
    if content is not None:
        assert data == content


def test_the_last_commit_wins_for_a_replaced_and_an_appended_member(vector):
    with open_null(vector) as coffer:
        assert coffer.read("hello.txt") == b"Hello again, coffer! (replaced by commit 3)\n"
        assert coffer.readlines("log.txt") == ["first line", "second line, appended by the second commit"]


@pytest.mark.parametrize("name", EXPECTED["deleted"])
def test_a_deleted_member_is_gone(vector, name):
    with open_null(vector) as coffer:
        assert name not in coffer
        with pytest.raises(MemberNotFoundError):
            coffer.read(name)


def test_a_member_of_several_chunks_streams_and_seeks_across_a_chunk_boundary(vector):
    name = next(name for name, spec in MEMBERS.items() if spec["size"] > CHUNK)
    with open_null(vector) as coffer:
        whole = coffer.read(name)
        with coffer.file(name, "rb") as stream:
            stream.seek(CHUNK - 7)
            across = stream.read(20)
            stream.seek(-5, os.SEEK_END)
            tail = stream.read()
    assert sha256(whole) == MEMBERS[name]["sha256"]
    assert across == whole[CHUNK - 7 : CHUNK + 13]
    assert tail == whole[-5:]


def test_text_mode_reads_the_nested_unicode_member(vector):
    name = next(name for name in MEMBERS if not name.isascii())
    with open_null(vector) as coffer, coffer.file(name, "rt") as stream:
        assert stream.read() == MEMBERS[name]["text"]


def test_verify_accepts_the_vector(vector):
    with open_null(vector) as coffer:
        coffer.verify()


def test_stats_count_commits_members_and_dead_records(vector):
    with open_null(vector) as coffer:
        stats = coffer.stats()
    assert stats["seq"] == EXPECTED["seq"] == len(EXPECTED["commits"])
    assert stats["members"] == len(MEMBERS)
    assert stats["file_size"] == EXPECTED["file"]["size"]
    assert stats["dead_bytes"] > 0  # the replaced hello.txt and deleted.txt


def test_reading_in_mode_r_leaves_the_file_unchanged(vector):
    before = vector.read_bytes()
    with open_null(vector) as coffer:
        for info in coffer.getmembers():
            coffer.read(info.name)
        coffer.verify()
    assert vector.read_bytes() == before


def test_extractall_restores_contents_and_mtimes(vector, tmp_path):
    target = tmp_path / "out"
    with open_null(vector) as coffer:
        coffer.extractall(target)
    for name, spec in MEMBERS.items():
        path = target / name
        assert sha256(path.read_bytes()) == spec["sha256"], name
        assert path.stat().st_mtime_ns == spec["mtime_ns"], name


def test_a_writer_appends_to_the_vector_without_changing_what_it_held(vector):
    with open_null(vector, "a") as coffer:
        coffer.write("new.txt", b"written by today's code\n")
    raw = vector.read_bytes()
    assert raw[: EXPECTED["file"]["size"]] == FROZEN.read_bytes()  # append-only
    with open_null(vector) as coffer:
        coffer.verify()
        assert coffer.read("new.txt") == b"written by today's code\n"
        for name, spec in MEMBERS.items():
            assert sha256(coffer.read(name)) == spec["sha256"], name


def test_compacting_the_vector_drops_dead_records_and_keeps_every_member(vector):
    with open_null(vector, "a") as coffer:
        coffer.compact()
        assert coffer.stats()["dead_bytes"] == 0
    assert vector.stat().st_size < EXPECTED["file"]["size"]
    with open_null(vector) as coffer:
        coffer.verify()
        assert [(i.name, i.filesize, i.mtime_ns) for i in coffer.getmembers()] == [
            (name, spec["size"], spec["mtime_ns"]) for name, spec in sorted(MEMBERS.items())
        ]
        for name, spec in MEMBERS.items():
            assert sha256(coffer.read(name)) == spec["sha256"], name


def test_verify_finds_damage_in_a_dead_record_that_reading_never_touches(vector):
    raw = bytearray(vector.read_bytes())
    dead = raw.find(b"this member is deleted by the second commit")
    assert dead > 0  # stored raw: the null type does not encrypt
    raw[dead] ^= 0x01
    vector.write_bytes(bytes(raw))
    with open_null(vector) as coffer:
        for name, spec in MEMBERS.items():
            assert sha256(coffer.read(name)) == spec["sha256"], name
        with pytest.raises(IntegrityError, match=str(_record_containing(dead))):
            coffer.verify()


def _record_containing(offset: int) -> int:
    return max(r["offset"] for r in EXPECTED["records"] if r["offset"] <= offset)
