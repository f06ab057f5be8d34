"""Races against add(), staged deterministically: the file system changes
after add() read the tree and before it reads the files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pycoffer_core import extraction


def after_planning(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    """Run ``swap()`` as the race would: once ``add()`` has planned, before it reads."""
    real_plan = extraction.plan_add

    def plan_then_swap(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        swap()
        return plan

    monkeypatch.setattr(extraction, "plan_add", plan_then_swap)


def folder_to_be_swapped_for_a_link(tmp_path: Path) -> tuple[Path, Callable[[], None]]:
    """A tree whose folder ``sub`` holds ``notes.txt``, and the swap that
    moves that folder away and puts a link to a folder outside in its place,
    where another ``notes.txt`` waits."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_bytes(b"secret from elsewhere")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "notes.txt").write_bytes(b"mine")

    def swap() -> None:
        os.rename(tree / "sub", tmp_path / "sub-moved")
        os.symlink(outside, tree / "sub")

    return tree, swap
