"""Adding and extracting trees when the file system is hostile or odd.

Extraction never writes outside its destination nor over the coffer it
reads; adding reads only the files it planned, never hangs on a special
file, and walks any tree, however deep or looped, to its end or to a clear
error.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pycoffer_core import (
    Coffer,
    CofferNotFoundError,
    InvalidArgumentError,
    UnsafePathError,
)
from pycoffer_core import extraction
from races import after_planning, folder_to_be_swapped_for_a_link

PATIENCE = 30.0


def _coffer_with(path: Path, members: dict[str, bytes]) -> None:
    with Coffer.open(path, "w", type="null") as coffer:
        for name, data in members.items():
            coffer.write(name, data)


# ---------------------------------------------------------------- extracting


def test_a_folder_swapped_for_a_link_during_extraction_leads_nowhere_outside(tmp_path, monkeypatch):
    coffer_path = tmp_path / "c.coffer"
    _coffer_with(coffer_path, {"a/b.txt": b"payload"})
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    (dest / "a").mkdir(parents=True)
    outside.mkdir()
    real_lstat = os.lstat

    def swap_then_lstat(path, *args, **kwargs):
        if os.fspath(path).endswith("b.txt"):  # the folder is walked: now the attacker swaps it
            os.rename(dest / "a", dest / "a-moved")
            os.symlink(outside, dest / "a")
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(extraction.os, "lstat", swap_then_lstat)
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        coffer.extractall(dest)
    assert os.listdir(outside) == []
    assert (dest / "a-moved" / "b.txt").read_bytes() == b"payload"


@pytest.mark.parametrize("own", ["c.coffer", "c.coffer.lock"])
def test_extraction_never_replaces_the_coffer_or_its_lock(tmp_path, own):
    coffer_path = tmp_path / "c.coffer"
    _coffer_with(coffer_path, {own: b"not a coffer", "z.txt": b"z"})
    before = coffer_path.read_bytes()
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        with pytest.raises(UnsafePathError, match="coffer being read"):
            coffer.extract(own, tmp_path)
    assert coffer_path.read_bytes() == before
    assert not list(tmp_path.glob("*.pycoffer-part"))
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        assert coffer.read("z.txt") == b"z"


@pytest.mark.parametrize("name", ["é" * 127, "日" * 85, "😀" * 63])
def test_the_longest_names_in_bytes_extract(tmp_path, name):
    coffer_path = tmp_path / "c.coffer"
    _coffer_with(coffer_path, {f"deep/{name}": b"x"})
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        (written,) = coffer.extractall(tmp_path / "out")
    assert Path(written).read_bytes() == b"x"


# ---------------------------------------------------------------- adding


def _in_thread(call) -> list[BaseException | object]:
    """Run ``call`` on a daemon thread; its outcome, or [] if it hangs."""
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PATIENCE)
    return outcome


def test_adding_a_fifo_raises_instead_of_hanging(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        (outcome,) = _in_thread(lambda: coffer.add(fifo)) or ["hung"]
        assert isinstance(outcome, InvalidArgumentError), outcome
        assert coffer.getmembers() == []


def test_a_fifo_inside_a_tree_is_skipped(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")
    os.mkfifo(tree / "pipe")
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        assert coffer.add(tree) == ["tree/a.txt"]


def test_a_file_swapped_for_a_fifo_after_planning_is_refused_without_hanging(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")

    def swap() -> None:
        (tree / "a.txt").unlink()
        os.mkfifo(tree / "a.txt")

    after_planning(monkeypatch, swap)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        (outcome,) = _in_thread(lambda: coffer.add(tree)) or ["hung"]
        assert isinstance(outcome, UnsafePathError), outcome
        assert coffer.getmembers() == []


def test_a_folder_swapped_for_a_link_after_planning_pulls_nothing_in(tmp_path, monkeypatch):
    tree, swap = folder_to_be_swapped_for_a_link(tmp_path)
    after_planning(monkeypatch, swap)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        with pytest.raises(UnsafePathError, match="replaced"):
            coffer.add(tree)
        assert coffer.getmembers() == []


def test_following_links_through_a_looped_tree_ends(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f.txt").write_bytes(b"f")
    os.symlink("..", tree / "sub" / "up")
    os.symlink(".", tree / "here")
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        added = _in_thread(lambda: coffer.add(tree, follow_symlinks=True))
        assert added == [["tree/sub/f.txt"]]


def test_a_tree_deeper_than_the_recursion_limit_is_added(tmp_path):
    tree = tmp_path / "tree"
    deepest = os.fspath(tree)
    os.mkdir(deepest)
    for _ in range(1100):  # one by one: pathlib's and os's makedirs recurse
        deepest = os.path.join(deepest, "d")
        os.mkdir(deepest)
    Path(deepest, "f.txt").write_bytes(b"deep")
    try:
        with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
            (name,) = coffer.add(tree)
            assert name == "tree/" + "d/" * 1100 + "f.txt"
            assert coffer.read(name) == b"deep"
    finally:
        # Bottom up, here: pytest's clean-up of old temporary folders recurses.
        os.unlink(os.path.join(deepest, "f.txt"))
        while deepest != os.fspath(tree):
            os.rmdir(deepest)
            deepest = os.path.dirname(deepest)


def test_a_folder_that_cannot_be_read_fails_the_add_instead_of_being_left_out(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    (tree / "private").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"a")
    (tree / "private" / "tax.pdf").write_bytes(b"t")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("private"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(extraction.os, "scandir", scandir)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        with pytest.raises(PermissionError):
            coffer.add(tree)
        assert coffer.getmembers() == []


def test_a_link_to_nothing_is_a_missing_source(tmp_path):
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        with pytest.raises(CofferNotFoundError, match="link to nothing"):
            coffer.add(tmp_path / "dangling")


def test_the_current_folder_is_added_under_its_own_name(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")
    monkeypatch.chdir(tree)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        assert coffer.add(".") == ["tree/a.txt"]


def test_a_coffer_whose_name_holds_glob_characters_is_never_added_into_itself(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a")
    with Coffer.open(folder / "backup[1].coffer", "w", type="null") as coffer:
        coffer.write("first", b"1")  # the file being built is in the folder now
        assert coffer.add(folder, "folder") == ["folder/a.txt"]


@pytest.mark.parametrize("mode", ["r", "a", "w", "x"])
def test_opening_a_folder_as_a_coffer_says_so(tmp_path, mode):
    from pycoffer_core import NotACofferError

    (tmp_path / "folder").mkdir()
    with pytest.raises(NotACofferError, match="is a folder"):
        Coffer.open(tmp_path / "folder", mode, type="null")
    assert os.listdir(tmp_path / "folder") == []


def test_members_that_would_be_a_file_and_a_folder_are_refused_before_anything_is_written(tmp_path):
    coffer_path = tmp_path / "c.coffer"
    _coffer_with(coffer_path, {"a": b"file", "a/b": b"inside", "z.txt": b"z"})
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        with pytest.raises(UnsafePathError, match="'a' and 'a/b'"):
            coffer.extractall(tmp_path / "out")
        assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []
        assert coffer.extract("z.txt", tmp_path / "out") == [str(tmp_path / "out" / "z.txt")]


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
def test_extracting_a_tree_leaves_no_descriptor_open_even_when_a_member_fails(tmp_path):
    members = {f"d{folder}/f{number}.txt": b"x" for folder in range(3) for number in range(4)}
    coffer_path = tmp_path / "c.coffer"
    _coffer_with(coffer_path, members)
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        before = _open_descriptors()
        coffer.extractall(tmp_path / "out")
        assert _open_descriptors() == before
        (tmp_path / "again" / "d1" / "f2.txt").mkdir(parents=True)  # a folder where a member goes
        with pytest.raises(IsADirectoryError):
            coffer.extractall(tmp_path / "again")
        assert _open_descriptors() == before
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.txt")) == sorted(members)


def test_members_in_any_order_land_in_their_folders_through_the_kept_ones(tmp_path):
    # Folders keeps the last member's folder and those above it open; members
    # that go down, up and sideways must each land in their own folder.
    names = ["a/b/c/1", "a/b/2", "a/3", "a/b/c/4", "x/5", "a/b/d/6", "7", "a/b/c/8", "a/x/c/9"]
    coffer_path = tmp_path / "c.coffer"
    _coffer_with(coffer_path, {name: name.encode() for name in names})
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        before = _open_descriptors()
        written = coffer.extractall(tmp_path / "out", members=names)
        assert _open_descriptors() == before
    assert written == [str(tmp_path / "out" / name) for name in names]
    for name in names:
        assert (tmp_path / "out" / name).read_bytes() == name.encode()


def _link_where_the_next_folder_goes(dest: Path, outside: Path) -> None:
    os.symlink(outside, dest / "a" / "c")


def _folder_moved_away_and_a_link_left(dest: Path, outside: Path) -> None:
    os.rename(dest / "a", outside / "a")
    os.symlink(outside / "a", dest / "a")


@pytest.mark.parametrize("swap", [_link_where_the_next_folder_goes, _folder_moved_away_and_a_link_left])
def test_a_link_on_the_way_to_the_next_members_folder_is_refused(tmp_path, swap):
    # Between a/b/1 and a/c/2, a link appears on the way to a/c: the next
    # member's folder is walked to from the destination again, and refused.
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    folders = extraction.Folders()
    try:
        extraction.write_member(dest, "a/b/1", _Chunks(b"one"), 0, folders=folders)
        swap(dest, outside)
        with pytest.raises(UnsafePathError, match="symbolic link"):
            extraction.write_member(dest, "a/c/2", _Chunks(b"two"), 0, folders=folders)
    finally:
        folders.close()
    assert [path.name for path in outside.rglob("*") if path.is_file()] in ([], ["1"])


class _Chunks:
    """A member reader as write_member uses one."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def iter_chunks(self, *, read_ahead: bool = False):
        yield self._data


def test_a_member_nested_deeper_than_the_descriptor_limit_extracts(tmp_path):
    # The walk holds two folders open at a time, whatever the depth: here 200
    # levels under a limit of 64 open files.
    resource = pytest.importorskip("resource")
    name = "a/" * 200 + "f.txt"
    coffer_path = tmp_path / "c.coffer"
    _coffer_with(coffer_path, {name: b"deep", "z.txt": b"after"})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with Coffer.open(coffer_path, "r", type="null") as coffer:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        try:
            coffer.extractall(tmp_path / "out")
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert (tmp_path / "out" / name).read_bytes() == b"deep"
    assert (tmp_path / "out" / "z.txt").read_bytes() == b"after"
