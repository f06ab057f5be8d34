"""Defects a review of recovery, compaction and locking found, each kept fixed."""

from __future__ import annotations

import os

import pytest

from pycoffer_core import (
    ClosedCofferError,
    Coffer,
    CofferExistsError,
    IntegrityError,
    LockTimeoutError,
)
from pycoffer_core.container import framing


def test_opening_a_coffer_leaves_another_coffers_work_files_alone(tmp_path):
    # "data" and "data.old" side by side: a writer opening "data" must not
    # take the file "data.old" is being built in for one of its own leftovers.
    building = Coffer.open(tmp_path / "data.old", "w", type="null")
    building.write("m", b"content")  # not committed: its file is still a work file
    with Coffer.open(tmp_path / "data", "w", type="null") as other:
        other.write("x", b"1")
    with Coffer.open(tmp_path / "data", "a", type="null") as other:
        other.write("y", b"2")
    building.close()
    with Coffer.open(tmp_path / "data.old", "r", type="null") as built:
        assert built.read("m") == b"content"


def test_a_coffer_with_glob_characters_in_its_name_cleans_up_its_own_leftovers(tmp_path):
    path = tmp_path / "c[1]"
    Coffer.open(path, "w", type="null").close()
    stale = tmp_path / f".{path.name}.0123456789ab.pycoffer-compact"  # a killed compaction's
    stale.write_bytes(b"partial")
    bystander = tmp_path / ".c1.0123456789ab.pycoffer-new"  # coffer "c1" being made
    bystander.write_bytes(b"in use")
    Coffer.open(path, "a", type="null").close()
    assert not stale.exists()
    assert bystander.exists()


def test_a_coffer_opened_through_a_link_shares_the_lock_of_the_file(tmp_path):
    real = tmp_path / "real.coffer"
    link = tmp_path / "link.coffer"
    Coffer.open(real, "w", type="null").close()
    link.symlink_to(real)
    with Coffer.open(link, "a", type="null"):
        with pytest.raises(LockTimeoutError):
            Coffer.open(real, "a", type="null", lock_timeout=0.1)


def test_compacting_through_a_link_keeps_the_link_and_changes_the_file(tmp_path):
    real = tmp_path / "real.coffer"
    link = tmp_path / "link.coffer"
    with Coffer.open(real, "w", type="null") as coffer:
        coffer.write("x", b"1")
    link.symlink_to(real)
    with Coffer.open(link, "a", type="null") as coffer:
        coffer.compact()
        coffer.write("z", b"after the compaction")
    assert link.is_symlink()
    with Coffer.open(real, "r", type="null") as coffer:
        assert coffer.read("z") == b"after the compaction"


def test_an_interrupt_right_after_compactions_rename_loses_no_later_commit(tmp_path, monkeypatch):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a", b"1")
    real = os.replace

    def replace_then_interrupted(src, dst, **kwargs):
        real(src, dst, **kwargs)
        if ".pycoffer-compact" in os.fspath(src):
            raise KeyboardInterrupt  # delivered as the rename returns

    coffer = Coffer.open(path, "a", type="null", auto_flush=True)
    try:
        monkeypatch.setattr(os, "replace", replace_then_interrupted)
        with pytest.raises(KeyboardInterrupt):
            coffer.compact()
        monkeypatch.setattr(os, "replace", real)
        coffer.write("after", b"acknowledged")
    finally:
        coffer.close()
    with Coffer.open(path, "r", type="null") as reopened:
        assert reopened.read("after") == b"acknowledged"
        reopened.verify()


def test_reading_a_member_file_after_its_coffer_closed_says_closed(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a", os.urandom(600_000))
    coffer = Coffer.open(path, "r", type="null")
    with coffer.file("a", "rb") as member:
        member.read(10)
        coffer.close()
        with pytest.raises(ClosedCofferError):
            member.read()


def test_mode_x_losing_the_race_for_its_path_says_the_path_exists(tmp_path):
    path = tmp_path / "c.coffer"
    coffer = Coffer.open(path, "x", type="null")
    coffer.write("a", b"1")
    path.write_bytes(b"someone else's file")  # the path is taken meanwhile
    with pytest.raises(CofferExistsError):
        coffer.close()
    assert path.read_bytes() == b"someone else's file"


def _records(data: bytes, start: int) -> list[tuple[int, int]]:
    offset, found = start, []
    while offset < len(data):
        head = framing.parse_head(data[offset : offset + framing.HEAD_SIZE])
        assert head is not None
        found.append((offset, head.kind))
        offset += head.total
    return found


def test_a_zeroed_page_before_later_synced_commits_is_damage_not_a_crash(tmp_path):
    # Six commits; the page holding a data record's head of the fourth one is
    # zeroed (damage: it was synced before the four commits after it), and a
    # torn data record ends the file, as a crash in a large write leaves.
    path = tmp_path / "c.coffer"
    keys = Coffer.gen_params("store")
    with Coffer.open(path, "w", type="store", auto_flush=True, **keys) as coffer:
        for number in range(6):
            coffer.write(f"m{number}", os.urandom(5000))
    data = bytearray(path.read_bytes())
    with open(path, "rb") as f:
        header, _ = framing.read_header(f.fileno(), len(data))
    data_heads = [offset for offset, kind in _records(bytes(data), header.records_start) if kind == framing.KIND_DATA]
    page = (data_heads[3] + framing.HEAD_SIZE - 1) // 4096 * 4096  # the page holding the head's end
    data[page : page + 4096] = bytes(4096)
    data += framing.frame(framing.KIND_DATA, os.urandom(300))
    path.write_bytes(bytes(data))
    for mode in ("r", "a"):
        with pytest.raises(IntegrityError, match="damaged"):
            Coffer.open(path, mode, type="store", **keys)
    assert path.read_bytes() == bytes(data)  # no writer cut the later commits off


def test_a_crashed_null_coffer_holding_a_coffer_still_opens(tmp_path):
    # A null coffer's records authenticate nothing: a member's bytes (here
    # a whole coffer, stored raw) can hold valid commit records, which must
    # not be taken for proof that the crashed commit's bytes were synced.
    inner = tmp_path / "inner.coffer"
    with Coffer.open(inner, "w", type="null", auto_flush=True) as coffer:
        for number in range(3):
            coffer.write(f"photo{number}.jpg", os.urandom(100_000))
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        coffer.write("notes.txt", b"kept")
        before, start = path.read_bytes(), coffer.stats()["file_size"]
        coffer.write("inner.coffer", inner.read_bytes())  # one small commit: one sync
        after, end = path.read_bytes(), coffer.stats()["file_size"]
    # Power lost in that sync: its first page and its last (the commit
    # record) never reached the disk, the pages between did.
    page = 4096
    first, last = start // page * page, (end - 1) // page * page
    crashed = bytearray(after[:end])
    crashed[first : first + page] = before[first:start].ljust(page, b"\x00")
    crashed[last:] = bytes(len(crashed) - last)
    path.write_bytes(bytes(crashed))
    for mode in ("r", "a"):
        with Coffer.open(path, mode, type="null") as coffer:
            assert [info.name for info in coffer.getmembers()] == ["notes.txt"]


def test_mode_x_through_a_link_to_nothing_finds_the_path_taken(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "c.coffer"
    link.symlink_to(elsewhere / "planted.coffer")
    with pytest.raises(CofferExistsError, match="exists"):
        Coffer.open(link, "x", type="null")  # at once, not at the first commit
    assert os.listdir(elsewhere) == []
    assert sorted(os.listdir(tmp_path)) == ["c.coffer", "elsewhere"]  # no lock file made


def test_a_coffer_whose_name_holds_a_newline_cleans_up_its_own_leftovers(tmp_path):
    path = tmp_path / "two\nlines"
    Coffer.open(path, "w", type="null").close()
    stale = tmp_path / f".{path.name}.0123456789ab.pycoffer-new"
    stale.write_bytes(b"partial")
    Coffer.open(path, "a", type="null").close()
    assert not stale.exists()
