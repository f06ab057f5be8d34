"""What write() and append() take as data, the same at every size."""

from __future__ import annotations

import array

import pytest

from pycoffer_core import Coffer
from pycoffer_core.memberio import CHUNK_SIZE

SIZES = [0, 4, CHUNK_SIZE, CHUNK_SIZE + 4]  # one chunk or less takes a shorter path


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "int array view"])
def test_every_bytes_like_input_is_stored_as_its_bytes(tmp_path, size, kind):
    raw = bytes(range(256)) * (size // 256) + bytes(size % 256)
    data = {
        "bytes": raw,
        "bytearray": bytearray(raw),
        "memoryview": memoryview(raw),
        "int array view": memoryview(array.array("i", raw[: size - size % 4])),
    }[kind]
    expected = bytes(memoryview(data).cast("B"))
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        coffer.write("w", data)
        coffer.append("a", data)
        assert coffer.read("w") == coffer.read("a") == expected
        assert coffer.getmember("w").filesize == len(expected)


@pytest.mark.parametrize("size", SIZES[1:])
def test_a_strided_view_is_refused_at_every_size_and_changes_nothing(tmp_path, size):
    strided = memoryview(bytes(2 * size))[::2]
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        for method in (coffer.write, coffer.append):
            with pytest.raises(TypeError, match="contiguous"):
                method("m", strided)
        assert coffer.getmembers() == []


@pytest.mark.parametrize(
    "sizes",
    [
        [CHUNK_SIZE, CHUNK_SIZE],  # whole chunks: sealed as they are
        [4, CHUNK_SIZE, CHUNK_SIZE, 4],  # whole chunks that don't start a chunk
        [CHUNK_SIZE, 4, CHUNK_SIZE, CHUNK_SIZE - 4, CHUNK_SIZE],
    ],
)
def test_a_member_file_stores_any_run_of_block_sizes_in_order(tmp_path, sizes):
    blocks = [bytes([number]) * size for number, size in enumerate(sizes, 1)]
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        with coffer.file("m", "wb") as member:
            for block in blocks:
                assert member.write(block) == len(block)
        assert coffer.read("m") == b"".join(blocks)
