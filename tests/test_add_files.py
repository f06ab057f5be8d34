"""add(): a file of any size is stored as its bytes, whichever path stores it
(one chunk or less skips the member writer)."""

from __future__ import annotations

import os
import types

import pytest

from pycoffer_core import Coffer
from pycoffer_core.memberio import CHUNK_SIZE


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5])
def test_a_file_of_any_size_is_added_with_its_bytes_and_mtime(tmp_path, size):
    source = tmp_path / "f.bin"
    data = os.urandom(size)
    source.write_bytes(data)
    os.utime(source, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        assert coffer.add(source) == ["f.bin"]
    with Coffer.open(tmp_path / "c.coffer", "r", type="null") as coffer:
        assert coffer.read("f.bin") == data
        assert coffer.getmember("f.bin").mtime_ns == 1_600_000_000_123_456_789


def test_a_file_that_grew_after_its_size_was_read_is_added_whole(tmp_path, monkeypatch):
    source = tmp_path / "f.bin"
    data = os.urandom(2 * CHUNK_SIZE + 7)
    source.write_bytes(data)
    real_fstat = os.fstat

    def stale_fstat(fd):
        # What fstat said before the file grew: 10 bytes.
        info = real_fstat(fd)
        return types.SimpleNamespace(
            st_size=10, st_mtime_ns=info.st_mtime_ns, st_mode=info.st_mode, st_dev=info.st_dev, st_ino=info.st_ino
        )

    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        monkeypatch.setattr(os, "fstat", stale_fstat)
        coffer.add(source)
        monkeypatch.setattr(os, "fstat", real_fstat)
        assert coffer.read("f.bin") == data
