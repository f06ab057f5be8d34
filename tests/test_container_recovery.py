"""How the log container tells an interrupted commit from damage, at the edges."""

from __future__ import annotations

import os
import struct
import zlib

import pytest

from pycoffer_core import Coffer, IntegrityError
from pycoffer_core.container import framing, log
from pycoffer_core.container.index import CommitHeader, MemberEntry, Op, OP_PUT, decode_commit, encode_commit


def _two_commits(path, second: bytes):
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a", b"first")
    size = path.stat().st_size
    with Coffer.open(path, "a", type="null") as coffer:
        coffer.write("b", second)
    return size


def test_a_never_written_page_inside_the_last_small_commit_falls_back_to_the_commit_before(tmp_path):
    path = tmp_path / "c.coffer"
    before = _two_commits(path, os.urandom(200_000))
    data = bytearray(path.read_bytes())
    page = (before // 4096 + 3) * 4096  # a whole page inside the new member's record
    data[page : page + 4096] = bytes(4096)
    path.write_bytes(bytes(data))
    with Coffer.open(path, "r", type="null") as coffer:
        assert [i.name for i in coffer.getmembers()] == ["a"]


def test_a_damaged_byte_inside_the_last_small_commit_is_damage(tmp_path):
    path = tmp_path / "c.coffer"
    before = _two_commits(path, os.urandom(200_000))
    data = bytearray(path.read_bytes())
    data[before + 50_000] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        Coffer.open(path, "r", type="null")


def test_a_never_written_page_inside_the_last_commit_record_is_an_interrupted_commit(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        for i in range(3000):  # a checkpoint of well over a page
            coffer.write(f"member-{i:05d}-{os.urandom(8).hex()}", b"")
    with Coffer.open(path, "a", type="null") as coffer:
        coffer.compact()  # one checkpoint record spanning many pages, ending the file
    data = bytearray(path.read_bytes())
    page = (len(data) - 3 * 4096) // 4096 * 4096
    data[page : page + 4096] = bytes(4096)
    path.write_bytes(bytes(data))
    # The compacted file has no earlier commit to fall back to: nothing complete.
    with pytest.raises(IntegrityError, match="no complete commit"):
        Coffer.open(path, "r", type="null")


def test_a_large_commit_syncs_its_data_before_its_commit_record(tmp_path, monkeypatch):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a", b"1")
    syncs = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real(fd))[1])
    monkeypatch.setattr(log, "RUNWAY_COMMIT_MAX", 0)  # count the commits' syncs alone (runway: test_runway.py)
    with Coffer.open(path, "a", type="null") as coffer:
        coffer.write("small", b"x" * 1000)
        coffer.flush()
        assert len(syncs) == 1
        coffer.write("big", os.urandom(log.PRESYNC_THRESHOLD + 1))
        coffer.flush()
        assert len(syncs) == 3


def test_a_new_coffers_first_commit_syncs_once_and_only_then_appears(tmp_path, monkeypatch):
    """Nothing is visible before the rename, so a big first commit needs no data sync of its own."""
    path = tmp_path / "c.coffer"
    events = []
    real_sync, real_replace = os.fdatasync, os.replace
    monkeypatch.setattr(os, "fdatasync", lambda fd: (events.append("sync"), real_sync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("publish"), real_replace(a, b))[1])
    monkeypatch.setattr(log, "RUNWAY_COMMIT_MAX", 0)  # count the commit's syncs alone
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("big", os.urandom(log.PRESYNC_THRESHOLD + 1))
        assert not path.exists()
        coffer.flush()
        assert events == ["sync", "publish"]
    with Coffer.open(path, "r", type="null") as coffer:
        coffer.verify()


def test_a_header_whose_fields_run_past_its_end_is_integrity_error(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null"):
        pass
    data = bytearray(path.read_bytes())
    length = struct.unpack_from(">H", data, 10)[0]
    data[32] = 250  # the type name's length, far past the header
    data[length - 4 : length] = struct.pack(">I", zlib.crc32(bytes(data[: length - 4])))
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="coffer header is damaged"):
        Coffer.type_of(path)


@pytest.mark.parametrize("name", ["../evil", "/abs", "a//b", "a\\b"])
def test_an_index_naming_a_member_the_writer_would_refuse_is_forged(name):
    header = CommitHeader(1, 0, 0, 0, 0)
    body = encode_commit(header, [Op(OP_PUT, name, MemberEntry(name, bytes(16), 0, 0))])
    with pytest.raises(IntegrityError, match="member name"):
        decode_commit(body)


def test_two_intact_key_slot_copies_of_one_generation_that_disagree_are_tampering(tmp_path):
    path = tmp_path / "slots"
    header_len = 0
    path.write_bytes(framing.encode_slot_copy(3, b"one") + framing.encode_slot_copy(3, b"two"))
    with open(path, "rb") as f:
        with pytest.raises(IntegrityError, match="generation"):
            framing.read_slot_area(f.fileno(), header_len)
    path.write_bytes(framing.encode_slot_copy(3, b"one") + framing.encode_slot_copy(4, b"two"))
    with open(path, "rb") as f:
        assert framing.read_slot_area(f.fileno(), header_len) == (4, b"two")


def test_an_index_that_compresses_beyond_the_readers_cap_is_stored_so_it_still_opens(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        for i in range(700):  # long, repetitive names: an index that compresses enormously
            coffer.write(("x" * 250 + "/") * 8 + f"{i}", b"")
    with Coffer.open(path, "r", type="null") as coffer:
        assert len(coffer.getmembers()) == 700
        coffer.verify()


def test_closing_after_many_deltas_writes_a_checkpoint_so_the_next_open_replays_few(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        for i in range(log.CLOSE_CHECKPOINT_DELTAS + 5):
            coffer.write(f"m{i}", b"x")
    with Coffer.open(path, "a", type="null") as coffer:
        assert coffer._container._deltas_since_checkpoint == 0  # white-box: what open replays
        assert len(coffer.getmembers()) == log.CLOSE_CHECKPOINT_DELTAS + 5
        coffer.write("few", b"y")
        coffer.flush()
    with Coffer.open(path, "r", type="null") as coffer:
        assert coffer._container._deltas_since_checkpoint == 1  # a few deltas: no checkpoint at close


@pytest.mark.parametrize("type_name", ["null", "store"])
def test_a_changed_chunk_is_integrity_error_naming_its_record(tmp_path, type_name):
    """Authenticated types skip the record's body CRC; the error still says where."""
    path = tmp_path / "c.coffer"
    keys = Coffer.gen_params(type_name)
    with Coffer.open(path, "w", type=type_name, **keys) as coffer:
        coffer.write("m", os.urandom(5000))
        (chunk,) = coffer._container.entries["m"].chunks
        coffer.flush()
        coffer.write("later", b"x")  # the last commit's own data is checked whole at open
    data = bytearray(path.read_bytes())
    data[chunk.offset + chunk.stored_len // 2] ^= 1
    path.write_bytes(bytes(data))
    with Coffer.open(path, "r", type=type_name, **keys) as coffer:
        with pytest.raises(IntegrityError, match=f"record at offset {chunk.offset}"):
            coffer.read("m")


def test_a_cut_tail_is_reported_as_ignored_and_a_writer_drops_it(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("first", b"1")
    with Coffer.open(path, "a", type="null") as coffer:
        assert coffer.stats()["ignored_bytes"] == 0
        coffer.write("later", os.urandom(5000))
    whole = path.stat().st_size
    os.truncate(path, whole - 10)  # the last commit is cut short
    with Coffer.open(path, "r", type="null") as coffer:
        assert "later" not in coffer
        assert coffer.stats()["ignored_bytes"] > 5000
    with Coffer.open(path, "a", type="null") as coffer:
        assert coffer.stats()["ignored_bytes"] > 5000  # what this open dropped
    with Coffer.open(path, "r", type="null") as coffer:
        assert coffer.stats()["ignored_bytes"] == 0
        assert coffer.read("first") == b"1"
