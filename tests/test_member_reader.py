"""Reading a member by chunks: what ``extract`` writes from, without copies."""

from __future__ import annotations

import os

import pytest

from pycoffer_core import Coffer
from pycoffer_core.memberio import CHUNK_SIZE

SIZE = 2 * CHUNK_SIZE + 1000  # two whole chunks and a short one


@pytest.mark.parametrize("start", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 999, SIZE, SIZE + 5])
def test_iter_chunks_hands_out_the_rest_from_the_position_and_moves_it_to_the_end(tmp_path, start):
    data = os.urandom(SIZE)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        coffer.write("m", data)
        with coffer.file("m", "rb") as member:
            reader = member.raw if hasattr(member, "raw") else member
            reader.seek(start)
            pieces = [bytes(piece) for piece in reader.iter_chunks()]
            assert b"".join(pieces) == data[start:]
            assert all(len(piece) <= CHUNK_SIZE for piece in pieces)
            assert reader.tell() == max(start, SIZE)
            assert reader.read() == b""


def test_extract_writes_every_chunk_of_a_member_in_order(tmp_path):
    data = os.urandom(SIZE)
    with Coffer.open(tmp_path / "c.coffer", "w", type="null") as coffer:
        coffer.write("dir/m", data)
        (written,) = coffer.extract("dir/m", tmp_path / "out")
    assert open(written, "rb").read() == data
    assert sorted(os.listdir(tmp_path / "out" / "dir")) == ["m"]  # no part file left
