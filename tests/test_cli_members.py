"""pycoffer init, ls, add, extract, cat, put, rm, mv: members in and out, in-process."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from pycoffer_core import Coffer
from pycoffer_core.cli import progress
from pycoffer_core.memberio import CHUNK_SIZE
from races import after_planning, folder_to_be_swapped_for_a_link
from test_cli_support import assert_one_line_error, null_coffer, run  # noqa: F401  (fixture)


def names_in(coffer: Path) -> list[str]:
    result = run("ls", coffer)
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def content(coffer: Path, member: str) -> bytes:
    result = run("cat", coffer, member)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


# ------------------------------------------------------------------ init


def test_init_creates_an_empty_coffer_of_the_type(tmp_path):
    coffer = tmp_path / "v.coffer"
    result = run("init", coffer, "--type", "null")
    assert result.exit_code == 0, result.stderr
    assert Coffer.type_of(coffer) == "null"
    assert names_in(coffer) == []


def test_init_refuses_to_overwrite_an_existing_coffer(null_coffer):
    before = null_coffer.read_bytes()
    assert_one_line_error(run("init", null_coffer, "--type", "null"), str(null_coffer), "exists")
    assert null_coffer.read_bytes() == before


def test_init_of_an_unknown_type_names_the_distribution_to_install(tmp_path):
    result = run("init", tmp_path / "v.coffer", "--type", "nosuchtype")
    assert_one_line_error(result, "nosuchtype", "pip install pycoffer-nosuchtype")
    assert not (tmp_path / "v.coffer").exists()


def test_init_in_a_missing_folder_says_so(tmp_path):
    assert_one_line_error(run("init", tmp_path / "nowhere" / "v.coffer", "--type", "null"), "does not exist")


def test_init_needs_a_type(tmp_path):
    result = run("init", tmp_path / "v.coffer")
    assert result.exit_code == 2
    assert "--type" in result.stderr


# ------------------------------------------------------------------ ls


def test_ls_lists_member_names_sorted_one_a_line(null_coffer):
    assert names_in(null_coffer) == ["notes/ideas.md", "notes/todo.txt", "readme.txt"]


def test_ls_long_shows_plain_size_and_mtime(null_coffer, tmp_path):
    result = run("ls", null_coffer, "--long")
    line = next(line for line in result.stdout.splitlines() if line.endswith("notes/todo.txt"))
    size, day, time, name = line.split()
    assert int(size) == 9
    assert len(day) == 10 and day[4] == "-" and len(time) == 8


def test_ls_json_gives_name_size_and_the_source_mtime(null_coffer, tmp_path):
    listing = json.loads(run("ls", null_coffer, "--json").stdout)
    todo = next(item for item in listing if item["name"] == "notes/todo.txt")
    assert todo["size"] == 9
    assert todo["mtime_ns"] == (tmp_path / "src" / "notes" / "todo.txt").stat().st_mtime_ns
    assert todo["mtime"].endswith("Z")


def test_ls_prefix_lists_a_folder(null_coffer):
    assert run("ls", null_coffer, "notes").stdout.splitlines() == ["notes/ideas.md", "notes/todo.txt"]


def test_ls_prefix_that_matches_nothing_is_an_error(null_coffer):
    assert_one_line_error(run("ls", null_coffer, "photos"), "photos")


def test_ls_of_a_missing_coffer_says_there_is_none(tmp_path):
    assert_one_line_error(run("ls", tmp_path / "missing.coffer"), "no coffer at", "missing.coffer")


def test_ls_of_a_file_that_is_not_a_coffer_says_so(tmp_path):
    other = tmp_path / "photo.jpg"
    other.write_bytes(b"\xff\xd8\xff" + bytes(500))
    assert_one_line_error(run("ls", other), "not a coffer")


# ------------------------------------------------------------------ add


def test_add_stores_a_tree_under_its_base_name_and_prints_names_with_verbose(tmp_path):
    coffer = tmp_path / "v.coffer"
    run("init", coffer, "--type", "null")
    tree = tmp_path / "photos"
    (tree / "2024").mkdir(parents=True)
    (tree / "2024" / "cat.raw").write_bytes(b"meow" * 1000)
    result = run("add", coffer, tree, "-v")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["photos/2024/cat.raw"]
    assert content(coffer, "photos/2024/cat.raw") == b"meow" * 1000


def test_add_as_gives_a_single_source_another_name(null_coffer, tmp_path):
    source = tmp_path / "scan.pdf"
    source.write_bytes(b"%PDF")
    assert run("add", null_coffer, source, "--as", "taxes/2023/scan.pdf").exit_code == 0
    assert content(null_coffer, "taxes/2023/scan.pdf") == b"%PDF"


def test_add_as_with_several_sources_is_a_usage_error(null_coffer, tmp_path):
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    result = run("add", null_coffer, tmp_path / "a", tmp_path / "b", "--as", "x")
    assert result.exit_code == 2
    assert "--as" in result.stderr


def test_add_refuses_an_existing_member_and_changes_nothing(null_coffer, tmp_path):
    new = tmp_path / "new.txt"
    new.write_bytes(b"new")
    changed = tmp_path / "readme.txt"
    changed.write_bytes(b"changed")
    before = null_coffer.read_bytes()
    result = run("add", null_coffer, new, changed)
    assert_one_line_error(result, "readme.txt", "--replace")
    assert null_coffer.read_bytes() == before


def test_add_replace_overwrites_members(null_coffer, tmp_path):
    changed = tmp_path / "readme.txt"
    changed.write_bytes(b"changed")
    assert run("add", null_coffer, changed, "--replace").exit_code == 0
    assert content(null_coffer, "readme.txt") == b"changed"


def test_add_of_a_missing_source_names_it_and_adds_nothing(null_coffer, tmp_path):
    good = tmp_path / "good.txt"
    good.write_bytes(b"good")
    result = run("add", null_coffer, good, tmp_path / "missing.txt")
    assert_one_line_error(result, "missing.txt")
    assert "good.txt" not in names_in(null_coffer)


def test_add_of_a_folder_holding_the_coffer_leaves_the_coffer_out(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "diary.txt").write_bytes(b"dear diary")
    coffer = folder / "v.coffer"
    run("init", coffer, "--type", "null")
    result = run("add", coffer, folder)
    assert result.exit_code == 0, result.stderr
    assert names_in(coffer) == ["home/diary.txt"]
    assert "coffer itself" in result.stderr


def test_add_to_a_missing_coffer_does_not_create_one(tmp_path):
    source = tmp_path / "a.txt"
    source.write_bytes(b"a")
    assert_one_line_error(run("add", tmp_path / "v.coffer", source), "no coffer at")
    assert not (tmp_path / "v.coffer").exists()


def test_ctrl_c_during_add_leaves_the_coffer_at_its_last_commit(null_coffer, tmp_path, monkeypatch):
    tree = tmp_path / "many"
    tree.mkdir()
    for number in range(5):
        (tree / f"{number}.txt").write_bytes(b"x" * 100_000)
    before = null_coffer.read_bytes()
    real_add = Coffer._add_planned
    calls = []

    def interrupted_add(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(Coffer, "_add_planned", interrupted_add)
    result = run("add", null_coffer, tree)
    assert result.exit_code == 130
    assert "interrupted" in result.stderr
    monkeypatch.undo()
    assert null_coffer.read_bytes() == before
    assert names_in(null_coffer) == ["notes/ideas.md", "notes/todo.txt", "readme.txt"]


# ------------------------------------------------------------------ extract


def test_extract_writes_every_member_with_its_mtime(null_coffer, tmp_path):
    out = tmp_path / "out"
    result = run("extract", null_coffer, "-C", out)
    assert result.exit_code == 0, result.stderr
    assert (out / "notes" / "todo.txt").read_bytes() == b"buy milk\n"
    assert (out / "readme.txt").read_bytes() == b"read me\n"
    source = tmp_path / "src" / "notes" / "todo.txt"
    assert (out / "notes" / "todo.txt").stat().st_mtime_ns == source.stat().st_mtime_ns


def test_extract_named_members_and_folders_only(null_coffer, tmp_path):
    out = tmp_path / "out"
    result = run("extract", null_coffer, "notes", "-C", out, "-v")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["ideas.md", "todo.txt"]
    assert len(result.stdout.splitlines()) == 2


def test_extract_of_a_missing_member_writes_nothing(null_coffer, tmp_path):
    out = tmp_path / "out"
    assert_one_line_error(run("extract", null_coffer, "readme.txt", "nope", "-C", out), "nope")
    assert not out.exists() or not any(out.iterdir())


def test_extract_refuses_to_write_through_a_symlink_out_of_the_destination(null_coffer, tmp_path):
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "notes").symlink_to(elsewhere)
    result = run("extract", null_coffer, "notes/todo.txt", "-C", out)
    assert_one_line_error(result, "symbolic link")
    assert list(elsewhere.iterdir()) == []


def test_extract_over_a_folder_of_the_same_name_is_one_line(null_coffer, tmp_path):
    out = tmp_path / "out"
    (out / "readme.txt").mkdir(parents=True)
    assert_one_line_error(run("extract", null_coffer, "readme.txt", "-C", out), "is a folder")
    assert "unexpected" not in run("extract", null_coffer, "readme.txt", "-C", out).stderr


def test_ctrl_c_during_extract_leaves_no_partial_file(tmp_path, monkeypatch):
    coffer = tmp_path / "v.coffer"
    run("init", coffer, "--type", "null")
    assert run("put", coffer, "big.bin", input=os.urandom(3 << 20)).exit_code == 0
    real_iter_chunks = progress.CountingMemberReader.iter_chunks
    handed_out = []

    def interrupted_iter_chunks(self, *, read_ahead=False):
        for chunk in real_iter_chunks(self, read_ahead=read_ahead):
            handed_out.append(len(chunk))
            if len(handed_out) == 2:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(progress.CountingMemberReader, "iter_chunks", interrupted_iter_chunks)
    out = tmp_path / "out"
    result = run("extract", coffer, "-C", out)
    assert result.exit_code == 130
    assert len(handed_out) == 2  # the interrupt came with the file half-written
    assert list(out.iterdir()) == []


def test_extract_counts_every_byte_it_writes_on_the_bar(tmp_path):
    # The CLI writes each chunk as it is opened (read ahead), and counts it.
    data = os.urandom(3 * CHUNK_SIZE + 5)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        coffer.write("big.bin", data)
        advanced = []

        class Bar:
            def advance(self, count):
                advanced.append(count)

        with coffer.file("big.bin", "rb") as stream:
            reader = progress.CountingMemberReader(stream.raw, Bar())
            assert b"".join(map(bytes, reader.iter_chunks(read_ahead=True))) == data
    assert sum(advanced) == len(data)


# ------------------------------------------------------------------ cat and put


def test_cat_writes_members_to_stdout_as_bytes(null_coffer):
    result = run("cat", null_coffer, "notes/todo.txt", "readme.txt")
    assert result.stdout_bytes == b"buy milk\nread me\n"


def test_cat_of_a_missing_member_says_so(null_coffer):
    assert_one_line_error(run("cat", null_coffer, "nope.txt"), "no member 'nope.txt'")


def test_cat_of_a_name_that_escapes_is_refused(null_coffer):
    assert_one_line_error(run("cat", null_coffer, "../etc/passwd"), "..")


def test_put_stores_stdin_and_cat_gives_it_back(null_coffer):
    data = bytes(range(256)) * 1000
    assert run("put", null_coffer, "dir.tar", input=data).exit_code == 0
    assert content(null_coffer, "dir.tar") == data


def test_put_refuses_an_existing_member_unless_replace(null_coffer):
    assert_one_line_error(run("put", null_coffer, "readme.txt", input=b"new"), "--replace")
    assert content(null_coffer, "readme.txt") == b"read me\n"
    assert run("put", null_coffer, "readme.txt", "--replace", input=b"new").exit_code == 0
    assert content(null_coffer, "readme.txt") == b"new"


class _InterruptedStdin(io.RawIOBase):
    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.calls += 1
        if self.calls > 2:
            raise KeyboardInterrupt
        buffer[:1000] = b"y" * 1000
        return 1000


def test_ctrl_c_during_put_stores_nothing(null_coffer):
    before = null_coffer.read_bytes()
    result = run("put", null_coffer, "half.bin", input=io.BufferedReader(_InterruptedStdin()))
    assert result.exit_code == 130
    assert null_coffer.read_bytes() == before


# ------------------------------------------------------------------ rm and mv


def test_rm_removes_members(null_coffer):
    assert run("rm", null_coffer, "readme.txt", "notes/todo.txt").exit_code == 0
    assert names_in(null_coffer) == ["notes/ideas.md"]


def test_rm_of_a_folder_needs_recursive(null_coffer):
    assert_one_line_error(run("rm", null_coffer, "notes"), "--recursive")
    assert len(names_in(null_coffer)) == 3
    assert run("rm", null_coffer, "notes", "--recursive").exit_code == 0
    assert names_in(null_coffer) == ["readme.txt"]


def test_rm_with_a_missing_member_removes_nothing(null_coffer):
    assert_one_line_error(run("rm", null_coffer, "readme.txt", "nope"), "nope")
    assert "readme.txt" in names_in(null_coffer)


def test_mv_renames_a_member_keeping_its_content(null_coffer):
    assert run("mv", null_coffer, "readme.txt", "docs/README").exit_code == 0
    assert content(null_coffer, "docs/README") == b"read me\n"
    assert "readme.txt" not in names_in(null_coffer)


def test_mv_renames_a_folder(null_coffer):
    assert run("mv", null_coffer, "notes", "archive/notes").exit_code == 0
    assert names_in(null_coffer) == ["archive/notes/ideas.md", "archive/notes/todo.txt", "readme.txt"]


def test_mv_refuses_to_overwrite_unless_replace(null_coffer):
    assert_one_line_error(run("mv", null_coffer, "readme.txt", "notes/todo.txt"), "--replace")
    assert run("mv", null_coffer, "readme.txt", "notes/todo.txt", "--replace").exit_code == 0
    assert content(null_coffer, "notes/todo.txt") == b"read me\n"


def test_mv_of_a_missing_member_says_so(null_coffer):
    assert_one_line_error(run("mv", null_coffer, "nope", "other"), "nope")


@pytest.mark.parametrize("command", [["rm", "x"], ["mv", "x", "y"], ["put", "x"], ["cat", "x"], ["extract"]])
def test_every_command_on_a_missing_coffer_says_there_is_none(tmp_path, command):
    assert_one_line_error(run(command[0], tmp_path / "none.coffer", *command[1:], input=b""), "no coffer at")


def test_names_that_are_not_printable_are_listed_escaped_on_one_line(tmp_path):
    path = tmp_path / "odd.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("evil\nname", b"1")
        coffer.write("bell\x1b[31m", b"2")
    result = run("ls", path)
    assert result.stdout.splitlines() == ["bell\\x1b[31m", "evil\\nname"]


def test_add_refuses_a_folder_swapped_for_a_link_after_it_was_planned(null_coffer, tmp_path, monkeypatch):
    """The CLI reads each file as its own plan found it: a folder swapped for
    a link meanwhile can't pull in a file from elsewhere."""
    tree, swap = folder_to_be_swapped_for_a_link(tmp_path)
    before = null_coffer.read_bytes()
    after_planning(monkeypatch, swap)
    result = run("add", null_coffer, tree)
    assert result.exit_code == 1
    assert "replaced while the tree was added" in result.stderr
    assert null_coffer.read_bytes() == before
