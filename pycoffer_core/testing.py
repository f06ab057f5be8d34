"""Conformance tests every coffer type must pass.

A backend's test module subclasses the suite and names its type::

    from pycoffer_core.testing import CofferConformance

    class TestFoo(CofferConformance):
        type_name = "foo"

Encrypting types subclass :class:`EncryptedCofferConformance`, which adds the
checks of secrecy and tamper detection. Override :meth:`make_params` to use
fixed keys. The suite needs ``pytest``.
"""

from __future__ import annotations

import errno
import io
import os
import random
import zlib
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from . import Coffer, CofferType, PlainLayer, hookimpl
from .errors import (
    ClosedCofferError,
    CofferError,
    IntegrityError,
    InvalidNameError,
    LockTimeoutError,
    MemberExistsError,
    MemberNotFoundError,
    UnknownTypeError,
    UnsafePathError,
    WrongKeyError,
    WrongTypeError,
)
from .container.framing import SLOT_COPY_SIZE
from .keyslots import INSECURE_FAST_ENV, KdfLimitError
from .errors import MissingDependencyError
from .memberio import CHUNK_SIZE
from .optional import require
from .plugins import find_type, registered


class _DecoyType(CofferType):
    """A second type, for opening a coffer with the wrong one."""

    name = "conformance-decoy"
    description = "used by pycoffer_core.testing only"

    def container_layer(self) -> PlainLayer:
        return PlainLayer()

    def member_layer(self) -> PlainLayer:
        return PlainLayer()


class _DecoyPlugin:
    @hookimpl
    def pycoffer_types(self) -> list[type[CofferType]]:
        return [_DecoyType]


def _pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes that compress poorly but not at all randomly."""
    block = bytes((i * 131 + seed * 7 + (i >> 8)) % 251 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


class CofferConformance:
    """The behaviour every coffer type promises; subclass and set ``type_name``."""

    type_name: ClassVar[str]
    #: Python run first in the child processes of the crash and lock tests,
    #: for a type that is not installed through an entry point.
    child_setup: ClassVar[str] = ""

    # ---------------------------------------------------------- helpers

    def make_params(self) -> dict[str, Any]:
        """Keys for a coffer of this type."""
        return Coffer.gen_params(self.type_name)

    @pytest.fixture
    def keys(self) -> dict[str, Any]:
        return self.make_params()

    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "test.coffer"

    def open(self, path: Path, mode: str, keys: dict[str, Any], **kwargs: Any) -> Coffer:
        return Coffer.open(path, mode, type=self.type_name, **keys, **kwargs)

    def make(self, path: Path, keys: dict[str, Any], members: dict[str, bytes]) -> None:
        with self.open(path, "w", keys) as coffer:
            for name, data in members.items():
                coffer.write(name, data)

    def contents(self, path: Path, keys: dict[str, Any], **kwargs: Any) -> dict[str, bytes]:
        with self.open(path, "r", keys, **kwargs) as coffer:
            return {info.name: coffer.read(info.name) for info in coffer.getmembers()}

    # ---------------------------------------------------------- modes

    def test_mode_r_on_missing_file_raises_file_not_found(self, path, keys):
        with pytest.raises(FileNotFoundError):
            self.open(path, "r", keys)
        assert not path.exists()
        assert not Path(f"{path}.lock").exists()

    def test_mode_w_starts_empty_even_when_file_exists(self, path, keys):
        self.make(path, keys, {"old": b"old"})
        with self.open(path, "w", keys) as coffer:
            assert coffer.getmembers() == []
            coffer.write("new", b"new")
        assert self.contents(path, keys) == {"new": b"new"}

    def test_mode_w_then_close_without_changes_leaves_an_empty_coffer(self, path, keys):
        self.make(path, keys, {"old": b"old"})
        self.open(path, "w", keys).close()
        assert self.contents(path, keys) == {}

    def test_mode_a_keeps_content(self, path, keys):
        self.make(path, keys, {"old": b"old"})
        with self.open(path, "a", keys) as coffer:
            coffer.write("new", b"new")
        assert self.contents(path, keys) == {"old": b"old", "new": b"new"}

    def test_mode_a_creates_a_missing_coffer(self, path, keys):
        with self.open(path, "a", keys) as coffer:
            coffer.write("x", b"1")
        assert self.contents(path, keys) == {"x": b"1"}

    def test_mode_x_on_existing_file_raises_file_exists(self, path, keys):
        self.make(path, keys, {"old": b"old"})
        with pytest.raises(FileExistsError):
            self.open(path, "x", keys)
        assert self.contents(path, keys) == {"old": b"old"}

    def test_mode_x_creates_a_new_coffer(self, path, keys):
        with self.open(path, "xb", keys) as coffer:
            coffer.write("x", b"1")
        assert self.contents(path, keys) == {"x": b"1"}

    @pytest.mark.parametrize("mode", ["rb", "wb", "ab"])
    def test_binary_suffix_is_accepted(self, path, keys, mode):
        self.make(path, keys, {})
        self.open(path, mode, keys).close()

    @pytest.mark.parametrize("mode", ["rt", "wt", "U", "rU", "r+", "rw", "q", "", None, 3])
    def test_text_unknown_and_missing_modes_raise_value_error(self, path, keys, mode):
        with pytest.raises(ValueError):
            self.open(path, mode, keys)
        assert not path.exists()

    def test_changes_in_read_mode_raise_unsupported_operation(self, path, keys, tmp_path):
        self.make(path, keys, {"a": b"1"})
        source = tmp_path / "src.txt"
        source.write_bytes(b"s")
        with self.open(path, "r", keys) as coffer:
            for change in (
                lambda: coffer.write("b", b"2"),
                lambda: coffer.append("a", b"2"),
                lambda: coffer.delete("a"),
                lambda: coffer.add(source),
                lambda: coffer.rename("a", "b"),
                lambda: coffer.compact(),
            ):
                with pytest.raises(io.UnsupportedOperation):
                    change()
            with pytest.raises(io.UnsupportedOperation):
                with coffer.file("c", "wb"):
                    pass
        assert self.contents(path, keys) == {"a": b"1"}

    def test_a_closed_coffer_raises_unsupported_operation(self, path, keys):
        coffer = self.open(path, "w", keys)
        coffer.close()
        assert coffer.closed
        with pytest.raises(io.UnsupportedOperation):
            coffer.read("a")
        for prop in ("readable", "writable", "modified"):
            with pytest.raises(io.UnsupportedOperation):
                getattr(coffer, prop)

    def test_close_is_idempotent(self, path, keys):
        coffer = self.open(path, "w", keys)
        coffer.close()
        coffer.close()

    def test_coffer_used_before_open_says_how_to_open_it(self, path, keys):
        coffer = Coffer(path, "w", type=self.type_name, **keys)
        with pytest.raises(ClosedCofferError, match="not open"):
            coffer.write("a", b"1")

    def test_constructor_in_with_opens_and_closes(self, path, keys):
        with Coffer(path, "w", type=self.type_name, **keys) as coffer:
            coffer.write("a", b"1")
        assert coffer.closed
        assert self.contents(path, keys) == {"a": b"1"}

    def test_repr_names_the_class(self, path, keys):
        with self.open(path, "w", keys) as coffer:
            assert repr(coffer).startswith("<Coffer")
            coffer.write("a", b"1")
            assert repr(coffer.getmembers()[0]).startswith("<CofferInfo")

    def test_type_property_names_the_type(self, path, keys):
        with self.open(path, "w", keys) as coffer:
            assert coffer.type == self.type_name

    # ---------------------------------------------------------- members

    @pytest.mark.parametrize(
        "size", [0, 1, 100, 70 * 1024, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 7]
    )
    def test_write_then_read_round_trips_after_reopen(self, path, keys, size):
        data = _pattern(size)
        self.make(path, keys, {"4/file.data": data})
        assert self.contents(path, keys) == {"4/file.data": data}

    def test_append_extends_a_member_and_creates_a_missing_one(self, path, keys):
        with self.open(path, "w", keys) as coffer:
            coffer.append("log", b"one ")
            coffer.flush()
            coffer.append("log", b"two ")
            coffer.append("log", _pattern(CHUNK_SIZE + 5))
        assert self.contents(path, keys) == {"log": b"one two " + _pattern(CHUNK_SIZE + 5)}

    def test_writelines_then_readlines_round_trips(self, path, keys):
        with self.open(path, "w", keys) as coffer:
            coffer.writelines("t.txt", ["alpha", "béta", ""])
            assert coffer.read("t.txt") == "alpha\nbéta\n\n".encode()
            assert coffer.readlines("t.txt") == ["alpha", "béta", ""]

    def test_reading_a_missing_member_raises_file_not_found(self, path, keys):
        with self.open(path, "w", keys) as coffer:
            with pytest.raises(FileNotFoundError):
                coffer.read("nope")
            with pytest.raises(MemberNotFoundError):
                with coffer.file("nope", "rb"):
                    pass

    def test_delete_removes_a_member(self, path, keys):
        self.make(path, keys, {"a": b"1", "b": b"2"})
        with self.open(path, "a", keys) as coffer:
            coffer.delete("a")
            with pytest.raises(FileNotFoundError):
                coffer.read("a")
        assert self.contents(path, keys) == {"b": b"2"}

    def test_deleting_a_missing_member_raises_and_changes_nothing(self, path, keys):
        self.make(path, keys, {"a": b"1"})
        with self.open(path, "a", keys) as coffer:
            with pytest.raises(MemberNotFoundError):
                coffer.delete("b")
        assert self.contents(path, keys) == {"a": b"1"}

    def test_rename_keeps_content_and_refuses_to_clobber(self, path, keys):
        self.make(path, keys, {"a": b"1", "b": b"2"})
        with self.open(path, "a", keys) as coffer:
            with pytest.raises(MemberExistsError):
                coffer.rename("a", "b")
            coffer.rename("a", "c/d")
        assert self.contents(path, keys) == {"b": b"2", "c/d": b"1"}

    def test_leading_slash_is_dropped(self, path, keys):
        with self.open(path, "w", keys) as coffer:
            coffer.write("/abs/x", b"1")
            assert coffer.read("abs/x") == b"1"
            assert [i.name for i in coffer.getmembers()] == ["abs/x"]

    @pytest.mark.parametrize("name", ["../x", "a/../../x", "a/..", "a\x00b", "a\\b", "", "/", "./."])
    def test_names_that_escape_or_hold_forbidden_characters_raise_value_error(self, path, keys, name):
        with self.open(path, "w", keys) as coffer:
            with pytest.raises(InvalidNameError):
                coffer.write(name, b"1")
            assert isinstance(InvalidNameError("x"), ValueError)
            assert coffer.getmembers() == []

    def test_data_first_order_raises_type_error_that_explains(self, path, keys):
        with self.open(path, "w", keys) as coffer:
            with pytest.raises(TypeError, match="name first"):
                coffer.write(b"data", "name")  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                coffer.write("name", "text")  # type: ignore[arg-type]

    def test_getmembers_reports_plain_size_and_mtime(self, path, keys):
        before = time.time()
        with self.open(path, "w", keys) as coffer:
            coffer.write("a", b"x" * 1000)
        with self.open(path, "r", keys) as coffer:
            (info,) = coffer.getmembers()
        assert (info.name, info.filesize) == ("a", 1000)
        assert before - 1 <= info.mtime <= time.time() + 1

    def test_a_member_can_be_written_with_a_given_mtime(self, path, keys):
        stamp = 1_234_567_890_123_456_789
        with self.open(path, "w", keys) as coffer:
            coffer.write("a", b"1", mtime_ns=stamp)
            with coffer.file("b", "wb", mtime_ns=stamp + 1) as f:
                f.write(b"2")
            with pytest.raises(ValueError):
                coffer.write("c", b"3", mtime_ns=1.5)  # type: ignore[arg-type]
        with self.open(path, "r", keys) as coffer:
            assert [i.mtime_ns for i in coffer.getmembers()] == [stamp, stamp + 1]

    def test_file_modes_round_trip(self, path, keys):
        with self.open(path, "w", keys) as coffer:
            with coffer.file("b", "wb") as f:
                f.write(b"abc")
            with coffer.file("b", "ab") as f:
                f.write(b"def")
            with coffer.file("t", "wt") as f:
                f.write("héllo\n")
            with coffer.file("t", "at", encoding="utf-8") as f:
                f.write("world\n")
            with coffer.file("b", "rb") as f:
                assert f.read() == b"abcdef"
            with coffer.file("t", "rt") as f:
                assert f.readlines() == ["héllo\n", "world\n"]

    def test_file_rejects_unknown_modes(self, path, keys):
        with self.open(path, "w", keys) as coffer:
            for mode in ("r+", "xb", "rw", "U"):
                with pytest.raises(ValueError):
                    with coffer.file("a", mode):
                        pass

    def test_file_reading_is_seekable_across_chunks(self, path, keys):
        data = _pattern(3 * CHUNK_SIZE + 11)
        self.make(path, keys, {"big": data})
        with self.open(path, "r", keys) as coffer, coffer.file("big") as f:
            f.seek(CHUNK_SIZE - 3)
            assert f.read(10) == data[CHUNK_SIZE - 3 : CHUNK_SIZE + 7]
            f.seek(-5, io.SEEK_END)
            assert f.read() == data[-5:]
            f.seek(2)
            assert f.read(3) == data[2:5]

    def test_a_file_block_that_raises_leaves_the_member_as_it_was(self, path, keys):
        self.make(path, keys, {"a": b"before"})
        with self.open(path, "a", keys) as coffer:
            with pytest.raises(RuntimeError):
                with coffer.file("a", "wb") as f:
                    f.write(b"half")
                    raise RuntimeError("boom")
            assert coffer.read("a") == b"before"
        assert self.contents(path, keys) == {"a": b"before"}

    def test_calling_the_coffer_inside_a_file_block_does_not_deadlock(self, path, keys):
        self.make(path, keys, {"a": b"1"})
        with self.open(path, "a", keys) as coffer:
            with coffer.file("b", "wb") as f:
                f.write(coffer.read("a"))
                coffer.write("c", b"3")
                f.write(b"2")
                assert [i.name for i in coffer.getmembers()] == ["a", "c"]
            assert coffer.read("b") == b"12"

    def test_threads_sharing_a_coffer_lose_nothing(self, path, keys):
        with self.open(path, "w", keys) as coffer:

            def work(n: int) -> None:
                for i in range(20):
                    coffer.write(f"t{n}/{i}", _pattern(3000, n * 100 + i))
                    assert coffer.read(f"t{n}/{i}") == _pattern(3000, n * 100 + i)

            threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        contents = self.contents(path, keys)
        assert len(contents) == 80
        assert contents["t3/19"] == _pattern(3000, 319)

    def test_many_members_round_trip(self, path, keys):
        members = {f"dir{i % 7}/m{i}": _pattern(i * 13, i) for i in range(600)}
        with self.open(path, "w", keys, auto_flush=True) as coffer:
            for name, data in members.items():
                coffer.write(name, data)
        assert self.contents(path, keys) == members

    # ---------------------------------------------------------- trees

    def test_add_stores_a_file_under_its_base_name_and_keeps_mtime(self, path, keys, tmp_path):
        source = tmp_path / "report.txt"
        source.write_bytes(b"content")
        os.utime(source, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        with self.open(path, "w", keys) as coffer:
            assert coffer.add(source) == ["report.txt"]
        with self.open(path, "r", keys) as coffer:
            (info,) = coffer.getmembers()
            assert (info.name, coffer.read("report.txt")) == ("report.txt", b"content")
            assert info.mtime_ns == 1_600_000_000_000_000_000

    def test_add_stores_a_tree_recursively(self, path, keys, tmp_path):
        tree = tmp_path / "pictures"
        (tree / "2024" / "june").mkdir(parents=True)
        (tree / "a.jpg").write_bytes(b"A")
        (tree / "2024" / "june" / "b.jpg").write_bytes(b"B")
        with self.open(path, "w", keys) as coffer:
            coffer.add(f"{tree}/", "holiday/pictures")
            coffer.add(tree)
        assert self.contents(path, keys) == {
            "holiday/pictures/a.jpg": b"A",
            "holiday/pictures/2024/june/b.jpg": b"B",
            "pictures/a.jpg": b"A",
            "pictures/2024/june/b.jpg": b"B",
        }

    def test_add_without_replace_refuses_an_existing_member_and_changes_nothing(self, path, keys, tmp_path):
        tree = tmp_path / "t"
        tree.mkdir()
        (tree / "new").write_bytes(b"new")
        (tree / "old").write_bytes(b"changed")
        self.make(path, keys, {"t/old": b"old"})
        with self.open(path, "a", keys) as coffer:
            with pytest.raises(FileExistsError, match="t/old"):
                coffer.add(tree, replace=False)
            coffer.add(tree / "old", "t/old")
        assert self.contents(path, keys) == {"t/old": b"changed"}

    def test_add_of_a_missing_source_raises_file_not_found_and_the_coffer_stays_usable(
        self, path, keys, tmp_path
    ):
        with self.open(path, "w", keys) as coffer:
            with pytest.raises(FileNotFoundError):
                coffer.add(tmp_path / "missing")
            coffer.write("a", b"1")
        assert self.contents(path, keys) == {"a": b"1"}

    def test_add_never_feeds_the_coffer_into_itself(self, path, keys, tmp_path):
        (tmp_path / "note.txt").write_bytes(b"n")
        with self.open(path, "w", keys) as coffer:
            assert coffer.add(tmp_path, "new") == ["new/note.txt"]
        with self.open(path, "a", keys) as coffer:
            assert coffer.add(tmp_path, "all") == ["all/note.txt"]
            assert coffer.add(path, "again") == []
        assert self.contents(path, keys) == {"new/note.txt": b"n", "all/note.txt": b"n"}

    def test_add_refuses_a_file_swapped_for_a_link_after_it_was_planned(self, path, keys, tmp_path, monkeypatch):
        from . import extraction

        secret = tmp_path / "secret.txt"
        secret.write_bytes(b"outside")
        tree = tmp_path / "tree"
        tree.mkdir()
        (tree / "plain.txt").write_bytes(b"inside")
        real_plan = extraction.plan_add

        def plan_then_swap(*args, **kwargs):
            plan = real_plan(*args, **kwargs)
            (tree / "plain.txt").unlink()
            (tree / "plain.txt").symlink_to(secret)  # the race: after planning, before reading
            return plan

        monkeypatch.setattr(extraction, "plan_add", plan_then_swap)
        self.make(path, keys, {})
        with self.open(path, "a", keys) as coffer:
            with pytest.raises(UnsafePathError):
                coffer.add(tree)
            assert coffer.getmembers() == []

    def test_add_skips_symlinks_that_leave_the_tree(self, path, keys, tmp_path):
        secret = tmp_path / "secret.txt"
        secret.write_bytes(b"outside")
        tree = tmp_path / "tree"
        tree.mkdir()
        (tree / "inside.txt").write_bytes(b"inside")
        (tree / "link-in").symlink_to(tree / "inside.txt")
        (tree / "link-out").symlink_to(secret)
        with self.open(path, "w", keys) as coffer:
            coffer.add(tree)
        assert self.contents(path, keys) == {"tree/inside.txt": b"inside", "tree/link-in": b"inside"}

    def test_extract_writes_a_member_with_its_folders_and_mtime(self, path, keys, tmp_path):
        with self.open(path, "w", keys) as coffer:
            coffer.write("a/b/c.txt", b"abc")
            mtime = coffer.getmember("a/b/c.txt").mtime_ns
            written = coffer.extract("a/b/c.txt", tmp_path / "out")
        target = tmp_path / "out" / "a" / "b" / "c.txt"
        assert written == [str(target)]
        assert target.read_bytes() == b"abc"
        assert target.stat().st_mtime_ns == mtime

    def test_extract_of_a_folder_prefix_writes_every_member_under_it(self, path, keys, tmp_path):
        self.make(path, keys, {"p/1": b"1", "p/q/2": b"2", "pp/3": b"3"})
        with self.open(path, "r", keys) as coffer:
            coffer.extract("p", tmp_path)
        assert (tmp_path / "p" / "1").read_bytes() == b"1"
        assert (tmp_path / "p" / "q" / "2").read_bytes() == b"2"
        assert not (tmp_path / "pp").exists()

    def test_extract_of_a_missing_member_raises_file_not_found(self, path, keys, tmp_path):
        self.make(path, keys, {"a": b"1"})
        with self.open(path, "r", keys) as coffer:
            with pytest.raises(FileNotFoundError):
                coffer.extract("b", tmp_path)

    def test_extractall_writes_every_member(self, path, keys, tmp_path):
        members = {"x": b"1", "d/y": b"2", "d/e/z": _pattern(CHUNK_SIZE * 2)}
        self.make(path, keys, members)
        with self.open(path, "r", keys) as coffer:
            coffer.extractall(tmp_path / "all")
        for name, data in members.items():
            assert (tmp_path / "all" / name).read_bytes() == data

    def test_extract_never_writes_through_a_symlinked_folder(self, path, keys, tmp_path):
        outside = tmp_path / "outside"
        outside.mkdir()
        dest = tmp_path / "dest"
        dest.mkdir()
        (dest / "d").symlink_to(outside)
        self.make(path, keys, {"d/x": b"1"})
        with self.open(path, "r", keys) as coffer:
            with pytest.raises(UnsafePathError):
                coffer.extract("d/x", dest)
        assert list(outside.iterdir()) == []

    def test_extract_replaces_a_symlink_at_the_target_instead_of_following_it(self, path, keys, tmp_path):
        victim = tmp_path / "victim"
        victim.write_bytes(b"keep")
        dest = tmp_path / "dest"
        dest.mkdir()
        (dest / "x").symlink_to(victim)
        self.make(path, keys, {"x": b"new"})
        with self.open(path, "r", keys) as coffer:
            coffer.extract("x", dest)
        assert victim.read_bytes() == b"keep"
        assert not (dest / "x").is_symlink()
        assert (dest / "x").read_bytes() == b"new"

    # ---------------------------------------------------------- flushing

    def test_modified_tracks_pending_changes(self, path, keys):
        with self.open(path, "w", keys, auto_flush=False) as coffer:
            assert not coffer.modified
            coffer.write("a", b"1")
            assert coffer.modified
            coffer.flush()
            assert not coffer.modified
            coffer.delete("a")
            assert coffer.modified

    def test_auto_flush_makes_each_change_visible_to_a_new_reader(self, path, keys):
        with self.open(path, "w", keys, auto_flush=True, lock_type="w") as coffer:
            coffer.write("a", b"1")
            assert not coffer.modified
            assert self.contents(path, keys, lock_type="w") == {"a": b"1"}
            coffer.delete("a")
            assert self.contents(path, keys, lock_type="w") == {}

    def test_without_auto_flush_changes_reach_the_file_at_flush(self, path, keys):
        self.make(path, keys, {})
        with self.open(path, "a", keys, auto_flush=False, lock_type="w") as coffer:
            coffer.write("a", b"1")
            assert self.contents(path, keys, lock_type="w") == {}
            coffer.flush()
            assert self.contents(path, keys, lock_type="w") == {"a": b"1"}

    def test_auto_flush_defaults_to_the_type_default(self, path, keys):
        expected = next(t.auto_flush for t in Coffer.types() if t.name == self.type_name)
        with self.open(path, "w", keys) as coffer:
            assert coffer.auto_flush is expected

    def test_a_with_block_that_raises_discards_uncommitted_changes(self, path, keys):
        self.make(path, keys, {"a": b"1"})
        with pytest.raises(RuntimeError):
            with self.open(path, "a", keys, auto_flush=False) as coffer:
                coffer.write("b", b"2")
                coffer.delete("a")
                raise RuntimeError("boom")
        assert self.contents(path, keys) == {"a": b"1"}

    def test_a_with_block_in_mode_w_that_raises_keeps_the_old_coffer(self, path, keys):
        self.make(path, keys, {"a": b"1"})
        with pytest.raises(RuntimeError):
            with self.open(path, "w", keys, auto_flush=False):
                raise RuntimeError("boom")
        assert self.contents(path, keys) == {"a": b"1"}

    def test_opening_and_closing_without_changes_leaves_the_file_untouched(self, path, keys):
        self.make(path, keys, {"a": b"1"})
        before = path.read_bytes(), path.stat().st_mtime_ns
        with self.open(path, "a", keys) as coffer:
            coffer.flush()
            coffer.read("a")
        assert (path.read_bytes(), path.stat().st_mtime_ns) == before

    def test_backup_keeps_the_coffer_as_it_was_at_open(self, path, keys):
        self.make(path, keys, {"a": b"original"})
        with self.open(path, "a", keys, backup=".bak", auto_flush=True) as coffer:
            coffer.write("a", b"first")
            coffer.write("a", b"second")
        backup = path.with_name(path.name + ".bak")
        assert self.contents(backup, keys) == {"a": b"original"}
        assert self.contents(path, keys) == {"a": b"second"}

    def test_backup_in_mode_w_keeps_the_replaced_coffer(self, path, keys):
        self.make(path, keys, {"a": b"original"})
        with self.open(path, "w", keys, backup=".bak") as coffer:
            coffer.write("b", b"new")
        assert self.contents(path.with_name(path.name + ".bak"), keys) == {"a": b"original"}

    # ---------------------------------------------------------- locking

    def test_a_second_open_times_out_while_the_first_holds_the_lock(self, path, keys):
        self.make(path, keys, {})
        with self.open(path, "r", keys):
            with pytest.raises(TimeoutError) as caught:
                self.open(path, "r", keys, lock_timeout=0.05)
            assert isinstance(caught.value, LockTimeoutError)
            assert f"{path}.lock" in str(caught.value)

    def test_lock_type_w_lets_readers_in_beside_a_writer_and_shows_them_a_snapshot(self, path, keys):
        self.make(path, keys, {"a": b"1"})
        with self.open(path, "a", keys, lock_type="w", auto_flush=False) as writer:
            with self.open(path, "r", keys, lock_type="w") as reader:
                writer.write("a", b"2" * 100_000)
                writer.write("b", b"3")
                writer.flush()
                writer.compact()
                assert reader.read("a") == b"1"
                assert [i.name for i in reader.getmembers()] == ["a"]
                with self.open(path, "r", keys, lock_type="w") as second:
                    assert second.read("b") == b"3"

    def test_lock_type_w_still_keeps_two_writers_apart(self, path, keys):
        self.make(path, keys, {})
        with self.open(path, "a", keys, lock_type="w"):
            with pytest.raises(LockTimeoutError):
                self.open(path, "a", keys, lock_type="w", lock_timeout=0.05)

    def test_a_reader_never_removes_the_writers_lock_file(self, path, keys):
        self.make(path, keys, {})
        with self.open(path, "a", keys, lock_type="w"):
            self.open(path, "r", keys, lock_type="w").close()
            assert Path(f"{path}.lock").exists()
            with pytest.raises(LockTimeoutError):
                self.open(path, "a", keys, lock_timeout=0.05)

    def _child(self, script: str, path: Path, keys: dict[str, Any]) -> subprocess.Popen:
        preamble = textwrap.dedent(
            f"""
            import sys, time
            from pycoffer_core import Coffer
            keys = {keys!r}
            path = {str(path)!r}
            TYPE = {self.type_name!r}
            """
        ) + textwrap.dedent(self.child_setup)
        return subprocess.Popen(
            [sys.executable, "-c", preamble + textwrap.dedent(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def test_a_lock_held_by_another_process_times_out_then_frees_when_it_exits(self, path, keys):
        self.make(path, keys, {})
        child = self._child(
            """
            with Coffer.open(path, "a", type=TYPE, **keys):
                print("locked", flush=True)
                time.sleep(30)
            """,
            path,
            keys,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "locked"
            with pytest.raises(LockTimeoutError):
                self.open(path, "a", keys, lock_timeout=0.1)
        finally:
            child.kill()
            child.wait()
        with self.open(path, "a", keys, lock_timeout=5) as coffer:
            coffer.write("after", b"1")

    # ---------------------------------------------------------- crash safety

    def test_a_child_killed_during_commits_loses_no_acknowledged_commit(self, path, keys):
        for round_ in range(3):
            child = self._child(
                f"""
                with Coffer.open(path, "a", type=TYPE, auto_flush=True, **keys) as c:
                    i = 0
                    while True:
                        name = "r{round_}/%d" % i
                        c.write(name, (name * 500).encode())
                        if i % 3 == 0:
                            c.append("log", name.encode() + b"\\n")
                        if i % 5 == 4:
                            c.delete("r{round_}/%d" % (i - 4))
                        print(i, flush=True)
                        i += 1
                """,
                path,
                keys,
            )
            assert child.stdout is not None
            first = child.stdout.readline()
            if not first:
                raise AssertionError(child.stderr.read() if child.stderr else "child died")
            time.sleep(0.05 + 0.1 * round_)
            child.kill()
            child.wait()
            # Every line printed before the kill is an acknowledged step.
            acknowledged = int((first + child.stdout.read()).split()[-1])
            with self.open(path, "a", keys) as coffer:
                coffer.verify()
                names = {info.name for info in coffer.getmembers()}
                log = coffer.read("log").decode().split("\n")
                for i in range(acknowledged + 1):
                    name = f"r{round_}/{i}"
                    if i % 3 == 0:
                        assert name in log, name
                    if i % 5 == 0 and i + 4 == acknowledged + 1:
                        continue  # deleted by the step in flight, or not
                    if i % 5 == 0 and i + 4 <= acknowledged:
                        assert name not in names, name
                    else:
                        assert coffer.read(name) == (name * 500).encode(), name

    def test_a_truncated_tail_opens_at_the_last_complete_commit(self, path, keys):
        with self.open(path, "w", keys, auto_flush=True) as coffer:
            coffer.write("a", b"1")
            size_after_first = path.stat().st_size
            coffer.write("b", _pattern(5000))
        full = path.read_bytes()
        for cut in range(size_after_first, len(full), max(1, (len(full) - size_after_first) // 40)):
            path.write_bytes(full[:cut])
            assert self.contents(path, keys) == {"a": b"1"}, cut
        path.write_bytes(full)
        assert set(self.contents(path, keys)) == {"a", "b"}

    def test_zero_bytes_after_power_loss_count_as_an_interrupted_commit(self, path, keys):
        self.make(path, keys, {"a": b"1"})
        size = path.stat().st_size
        with self.open(path, "a", keys) as coffer:
            coffer.write("b", _pattern(3000))
        full = path.read_bytes()
        # The commit's bytes never reached the disk, but the file grew.
        path.write_bytes(full[:size] + bytes(len(full) - size))
        assert self.contents(path, keys) == {"a": b"1"}
        with self.open(path, "a", keys) as coffer:
            coffer.write("c", b"3")
        assert self.contents(path, keys) == {"a": b"1", "c": b"3"}

    def test_a_damaged_last_commit_raises_integrity_error_instead_of_rolling_back(self, path, keys):
        with self.open(path, "w", keys, auto_flush=True) as coffer:
            coffer.write("a", b"1")
            coffer.write("b", b"2")
        data = bytearray(path.read_bytes())
        data[-20] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(IntegrityError):
            self.contents(path, keys)

    def test_an_io_error_during_a_commit_reaches_the_caller_and_loses_nothing_committed(
        self, path, keys, monkeypatch
    ):
        self.make(path, keys, {"a": b"1"})
        with self.open(path, "a", keys, auto_flush=True) as coffer:
            real = os.fdatasync

            def failing(fd: int) -> None:
                raise OSError(errno.EIO, "injected I/O error")

            monkeypatch.setattr(os, "fdatasync", failing)
            with pytest.raises(OSError):
                coffer.write("b", b"2")
            monkeypatch.setattr(os, "fdatasync", real)
            with pytest.raises(CofferError):
                coffer.write("c", b"3")
        assert self.contents(path, keys)["a"] == b"1"

    def test_a_full_disk_while_writing_a_member_raises_and_the_coffer_stays_usable(
        self, path, keys, monkeypatch
    ):
        self.make(path, keys, {"a": b"1"})
        with self.open(path, "a", keys, auto_flush=True) as coffer:
            real = os.pwrite

            def full(fd: int, data: Any, offset: int) -> int:
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(os, "pwrite", full)
            with pytest.raises(OSError):
                coffer.write("big", _pattern(CHUNK_SIZE * 2))
            monkeypatch.setattr(os, "pwrite", real)
            coffer.write("b", b"2")
        assert self.contents(path, keys) == {"a": b"1", "b": b"2"}

    # ---------------------------------------------------------- upkeep and format

    def test_compact_reclaims_dead_space_and_keeps_every_member(self, path, keys):
        with self.open(path, "w", keys, auto_flush=True) as coffer:
            for _ in range(10):
                last = os.urandom(50_000)
                coffer.write("churn", last)
            coffer.write("keep", b"k")
            size_before = path.stat().st_size
            coffer.compact()
            assert path.stat().st_size < size_before / 3
            assert coffer.stats()["dead_bytes"] == 0
            coffer.write("after", b"a")
        assert self.contents(path, keys) == {"churn": last, "keep": b"k", "after": b"a"}

    def test_close_compacts_when_most_of_the_file_is_dead(self, path, keys):
        with self.open(path, "w", keys, auto_flush=True) as coffer:
            for i in range(8):
                coffer.write("churn", os.urandom(400_000))
        assert path.stat().st_size < 1_000_000

    def test_verify_passes_on_an_intact_coffer(self, path, keys):
        self.make(path, keys, {"a": b"1", "big": _pattern(CHUNK_SIZE * 2)})
        with self.open(path, "a", keys) as coffer:
            coffer.delete("a")
            coffer.flush()
            coffer.verify()

    def test_a_commit_writes_only_what_changed(self, path, keys):
        with self.open(path, "w", keys, auto_flush=True) as coffer:
            for i in range(400):
                coffer.write(f"m{i}", _pattern(2048, i))
            growth = []
            for i in range(20):
                size = path.stat().st_size
                coffer.write(f"n{i}", _pattern(2048, 1000 + i))
                growth.append(path.stat().st_size - size)
        # A 2 KiB member costs about 2 KiB plus a small index delta, however
        # many members the coffer holds (a periodic checkpoint aside).
        assert sorted(growth)[len(growth) // 2] < 6 * 1024

    def test_reading_one_member_reads_only_its_chunks(self, path, keys, monkeypatch):
        self.make(path, keys, {"small": b"s" * 100, "big": _pattern(4 * CHUNK_SIZE)})
        with self.open(path, "r", keys) as coffer:
            read = []
            real = os.pread

            def counting(fd: int, size: int, offset: int) -> bytes:
                data = real(fd, size, offset)
                read.append(len(data))
                return data

            monkeypatch.setattr(os, "pread", counting)
            assert coffer.read("small") == b"s" * 100
        assert sum(read) < 4096

    def test_opening_with_an_unknown_type_names_the_distribution_to_install(self, path, keys):
        with pytest.raises(UnknownTypeError, match="pip install pycoffer-nope"):
            Coffer.open(path, "w", type="nope")
        assert isinstance(UnknownTypeError("x"), LookupError)

    def test_opening_with_the_wrong_type_names_the_real_type_and_changes_nothing(self, path, keys):
        self.make(path, keys, {"a": b"1"})
        before = path.read_bytes()
        with registered(_DecoyPlugin()):
            with pytest.raises(WrongTypeError, match=repr(self.type_name)):
                Coffer.open(path, "a", type=_DecoyType.name)
        assert path.read_bytes() == before

    def test_a_file_that_is_not_a_coffer_raises_a_coffer_error(self, path, keys):
        path.write_bytes(b"PK\x03\x04 this is a zip file, not a coffer" * 10)
        with pytest.raises(CofferError):
            self.open(path, "r", keys)
        path.write_bytes(b"")
        with pytest.raises(CofferError):
            self.open(path, "a", keys)
        assert path.read_bytes() == b""


    def test_flipping_any_byte_is_detected(self, path, keys):
        self.make(path, keys, {"a": b"alpha" * 20, "b": b"beta"})
        with self.open(path, "a", keys) as coffer:
            coffer.delete("b")
        pristine = path.read_bytes()
        expected = {"a": b"alpha" * 20}
        for offset in range(len(pristine)):
            damaged = bytearray(pristine)
            damaged[offset] ^= 0x40
            path.write_bytes(bytes(damaged))
            try:
                with self.open(path, "r", keys) as coffer:
                    seen = {i.name: (coffer.read(i.name), i.filesize, i.mtime_ns) for i in coffer.getmembers()}
                    coffer.verify()
            except CofferError:
                continue
            raise AssertionError(f"flipped byte at offset {offset} went unnoticed: {seen!r} vs {expected!r}")


class EncryptedCofferConformance(CofferConformance):
    """Adds the promises of a type whose container layer encrypts."""

    CANARY = b"CANARY-7f3a9c-PLAINTEXT-MUST-NOT-LEAK"
    #: Whether member names are hidden too (False where the container layer
    #: only authenticates, as in ``market``).
    hides_names: ClassVar[bool] = True

    def test_the_canary_never_reaches_the_disk(self, path, keys, tmp_path, monkeypatch):
        temp = tmp_path / "tmp"
        temp.mkdir()
        monkeypatch.setenv("TMPDIR", str(temp))
        payload = (self.CANARY + b" ") * 5000
        with self.open(path, "w", keys, temp_dir=temp) as coffer:
            name = self.CANARY.decode() if self.hides_names else "secret"
            coffer.write("folder/" + name, payload)
            with coffer.file("streamed", "wb") as f:
                for _ in range(3):
                    f.write(payload)
            coffer.flush()
            self._assert_no_canary(path.parent, temp)
        self._assert_no_canary(path.parent, temp)

    def _assert_no_canary(self, *folders: Path) -> None:
        for folder in folders:
            for file in folder.rglob("*"):
                if file.is_file():
                    assert self.CANARY not in file.read_bytes(), file

    def test_a_wrong_key_raises_integrity_error_and_changes_nothing(self, path, keys):
        self.make(path, keys, {"a": b"1"})
        before = path.read_bytes()
        with pytest.raises(IntegrityError):
            self.open(path, "a", self.make_params())
        assert path.read_bytes() == before

    @pytest.mark.parametrize("mode", ["r", "a"])
    def test_each_key_alone_wrong_raises_wrong_key_error_and_changes_nothing(self, path, keys, mode):
        """Every key is checked at open, not only the one sealing the records:
        a wrong member key would otherwise write members nobody can read."""
        self.make(path, keys, {"a": b"1"})
        before = path.read_bytes()
        for name, other in self.make_params().items():
            with pytest.raises(WrongKeyError):
                self.open(path, mode, {**keys, name: other})
            assert path.read_bytes() == before, name

    # ---------------------------------------------------------- layers

    def _authenticating_layers(self, keys: dict[str, Any]) -> list[Any]:
        keyed = find_type(self.type_name)(**keys)
        layers = [keyed.container_layer(), keyed.member_layer()]
        found = [layer for layer in layers if layer.authenticates]
        assert found, "an encrypting type authenticates at least one layer"
        return found

    def test_a_sealed_piece_opens_only_in_its_own_context_and_every_cut_fails(self, keys):
        for layer in self._authenticating_layers(keys):
            sealed = layer.seal(b"some record bytes " * 10, b"context-1")
            assert layer.open(sealed, b"context-1") == b"some record bytes " * 10
            with pytest.raises(IntegrityError):
                layer.open(sealed, b"context-2")
            for cut in range(len(sealed)):
                with pytest.raises(IntegrityError):
                    layer.open(sealed[:cut], b"context-1")

    def test_a_layer_that_accepts_views_opens_views_as_bytes(self, keys):
        """A layer with ``accepts_views`` is handed a view of the record the
        core read: it must open it as it opens the same bytes."""
        keyed = find_type(self.type_name)(**keys)
        for layer in (keyed.container_layer(), keyed.member_layer()):
            if not layer.accepts_views:
                continue
            for data in (b"some record bytes " * 100, random.Random(7).randbytes(3000)):
                sealed = layer.seal(data, b"context-1")
                record = b"head" + sealed + b"trail"
                view = memoryview(record)[4:-5]
                assert bytes(layer.open(view, b"context-1")) == data
                if layer.authenticates:
                    with pytest.raises(IntegrityError):
                        layer.open(view, b"context-2")

    def test_garbage_given_to_a_layer_raises_integrity_error(self, keys):
        rng = random.Random(1234)
        for layer in self._authenticating_layers(keys):
            for size in list(range(0, 80)) + [rng.randrange(80, 600) for _ in range(60)]:
                with pytest.raises(IntegrityError):
                    layer.open(rng.randbytes(size), b"ctx")

    # ---------------------------------------------------------- passphrases

    @pytest.fixture
    def fast_kdf(self, monkeypatch, tmp_path):
        """Tiny Argon2id parameters: the suite tests the logic, not the cost.

        Without the optional ``cryptography`` package, passphrases can't
        work: the fixture checks that they say so, then skips the test.
        """
        monkeypatch.setenv(INSECURE_FAST_ENV, "1")
        try:
            require("cryptography.hazmat.primitives.kdf.argon2", "passphrases")
        except MissingDependencyError:
            with pytest.raises(MissingDependencyError, match=r"pycoffer-core\[crypto\]"):
                Coffer.open(tmp_path / "p.coffer", "w", type=self.type_name, password="pw")
            pytest.skip("passphrases need pycoffer-core[crypto] (checked that they say so)")

    def test_a_passphrase_opens_the_coffer_created_with_it(self, path, fast_kdf):
        with Coffer.open(path, "x", type=self.type_name, password="correct horse") as coffer:
            coffer.write("a", b"1")
            assert len(coffer.key_slots()) == 1
        with Coffer.open(path, "r", type=self.type_name, password="correct horse") as coffer:
            assert coffer.read("a") == b"1"

    def test_a_wrong_passphrase_raises_integrity_error_and_changes_nothing(self, path, fast_kdf):
        with Coffer.open(path, "x", type=self.type_name, password="right") as coffer:
            coffer.write("a", b"1")
        before = path.read_bytes()
        with pytest.raises(WrongKeyError):
            Coffer.open(path, "a", type=self.type_name, password="wrong")
        assert path.read_bytes() == before

    def test_password_and_raw_keys_together_raise_value_error(self, path, keys, fast_kdf):
        with pytest.raises(ValueError):
            Coffer.open(path, "w", type=self.type_name, password="pw", **keys)

    def test_a_raw_key_coffer_can_gain_a_passphrase_and_keeps_its_keys(self, path, keys, fast_kdf):
        self.make(path, keys, {"a": b"1"})
        with self.open(path, "a", keys) as coffer:
            assert coffer.key_slots() == []
            coffer.add_password("added")
        assert self.contents(path, keys) == {"a": b"1"}
        with Coffer.open(path, "r", type=self.type_name, password="added") as coffer:
            assert coffer.read("a") == b"1"

    def test_changing_the_passphrase_rewrites_only_the_key_slots(self, path, fast_kdf):
        with Coffer.open(path, "x", type=self.type_name, password="old") as coffer:
            coffer.write("a", _pattern(CHUNK_SIZE + 10))
        before = path.read_bytes()
        with Coffer.open(path, "a", type=self.type_name, password="old") as coffer:
            coffer.change_password("old", "new")
        after = path.read_bytes()
        assert len(after) == len(before)
        changed = [i for i in range(len(before)) if before[i] != after[i]]
        assert changed and changed[-1] < 2 * SLOT_COPY_SIZE + 512  # header and key slots only
        with pytest.raises(WrongKeyError):
            Coffer.open(path, "r", type=self.type_name, password="old")
        with Coffer.open(path, "r", type=self.type_name, password="new") as coffer:
            assert coffer.read("a") == _pattern(CHUNK_SIZE + 10)

    def test_removing_the_last_passphrase_is_refused(self, path, fast_kdf):
        with Coffer.open(path, "x", type=self.type_name, password="only") as coffer:
            with pytest.raises(ValueError, match="last"):
                coffer.remove_password("only")
        with Coffer.open(path, "r", type=self.type_name, password="only"):
            pass

    def test_a_removed_passphrase_no_longer_opens_the_coffer(self, path, fast_kdf):
        with Coffer.open(path, "x", type=self.type_name, password="one") as coffer:
            coffer.write("a", b"1")
            coffer.add_password("two")
            coffer.remove_password("one")
            assert len(coffer.key_slots()) == 1
        with pytest.raises(WrongKeyError):
            Coffer.open(path, "r", type=self.type_name, password="one")
        with Coffer.open(path, "r", type=self.type_name, password="two") as coffer:
            assert coffer.read("a") == b"1"
            coffer.verify()

    def test_a_forgotten_passphrase_s_slot_can_be_removed_by_index(self, path, fast_kdf):
        with Coffer.open(path, "x", type=self.type_name, password="forgotten") as coffer:
            coffer.add_password("known")
        with Coffer.open(path, "a", type=self.type_name, password="known") as coffer:
            coffer.remove_key_slot(0)
            with pytest.raises(ValueError, match="last"):
                coffer.remove_key_slot(0)
            with pytest.raises(ValueError):
                coffer.remove_key_slot(5)
        with pytest.raises(WrongKeyError):
            Coffer.open(path, "r", type=self.type_name, password="forgotten")
        Coffer.open(path, "r", type=self.type_name, password="known").close()

    def test_kdf_parameters_above_the_cap_are_refused_before_any_work(self, path, fast_kdf):
        with Coffer.open(path, "x", type=self.type_name, password="pw"):
            pass
        data = bytearray(path.read_bytes())
        # The first KDF field (memory in KiB) sits right after the slot copy's
        # generation and length; ask for 4 TiB in both copies, CRC fixed up.
        header_len = _header_size(data)
        for copy in (0, 1):
            base = header_len + copy * SLOT_COPY_SIZE
            generation_and_length = data[base : base + 12]
            length = int.from_bytes(generation_and_length[8:12], "big")
            blob = bytearray(data[base + 12 : base + 12 + length])
            blob[1:5] = (0xFFFFFFFF).to_bytes(4, "big")
            body = bytes(generation_and_length) + bytes(blob)
            data[base : base + len(body) + 4] = body + zlib.crc32(body).to_bytes(4, "big")
        path.write_bytes(bytes(data))
        with pytest.raises(KdfLimitError):
            Coffer.open(path, "r", type=self.type_name, password="pw")

    # ---------------------------------------------------------- sealed files

    def test_crypt_open_round_trips_an_external_file(self, path, keys, tmp_path):
        data = _pattern(2 * CHUNK_SIZE + 3)
        sealed = tmp_path / "sealed.bin"
        with self.open(path, "w", keys) as coffer:
            with coffer.crypt_open(sealed, "wb") as f:
                f.write(data)
            assert self.CANARY not in sealed.read_bytes()
            with coffer.crypt_open(sealed, "rb") as f:
                assert f.read() == data

    def test_crypt_open_detects_truncation_and_tampering(self, path, keys, tmp_path):
        sealed = tmp_path / "sealed.bin"
        with self.open(path, "w", keys) as coffer:
            with coffer.crypt_open(sealed, "wb") as f:
                f.write(_pattern(2 * CHUNK_SIZE + 3))
            pristine = sealed.read_bytes()
            for damaged in (
                pristine[: len(pristine) // 2],
                pristine[:-1],
                pristine + b"x",
                pristine[:100] + bytes([pristine[100] ^ 1]) + pristine[101:],
            ):
                sealed.write_bytes(damaged)
                with pytest.raises(IntegrityError):
                    with coffer.crypt_open(sealed, "rb") as f:
                        f.read()


def _header_size(data: bytes) -> int:
    """Length of the fixed file header (before the key-slot area)."""
    return int.from_bytes(data[10:12], "big")
