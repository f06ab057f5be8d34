"""The store type: the conformance suite, its key, its size on disk, its frozen vector."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from pycoffer_core import Coffer, InvalidArgumentError
from pycoffer_core.testing import EncryptedCofferConformance
from pycoffer_core.vectors import check_vector

TYPE = "store"
VECTORS = Path(__file__).parent / "vectors"


class TestStoreConformance(EncryptedCofferConformance):
    type_name = TYPE


def test_gen_params_returns_a_fresh_32_byte_key():
    first, second = Coffer.gen_params(TYPE), Coffer.gen_params(TYPE)
    assert set(first) == {"coffer_key"}
    assert isinstance(first["coffer_key"], bytes) and len(first["coffer_key"]) == 32
    assert first != second


@pytest.mark.parametrize(
    "value", [os.urandom(16), os.urandom(31), os.urandom(33), "k" * 32, None, 7, base64.b64encode(os.urandom(32))]
)
def test_a_key_of_the_wrong_size_or_kind_raises_invalid_argument_naming_it(tmp_path, value):
    with pytest.raises(InvalidArgumentError, match="coffer_key") as caught:
        Coffer.open(tmp_path / "x.coffer", "w", type=TYPE, coffer_key=value)
    assert isinstance(caught.value, ValueError)
    assert not (tmp_path / "x.coffer").exists()


def test_no_canary_and_no_key_reaches_the_file(tmp_path):
    canary = b"STORE-CANARY-51c2"
    keys = Coffer.gen_params(TYPE)
    path = tmp_path / "x.coffer"
    with Coffer.open(path, "w", type=TYPE, **keys) as coffer:
        coffer.write(canary.decode() + "/name", canary * 10_000)
        coffer.write("small", canary)
    stored = path.read_bytes()
    assert canary not in stored
    assert keys["coffer_key"] not in stored


def test_compressible_members_are_stored_small(tmp_path):
    text = b"".join(b"archive line %d: the same old words again\n" % i for i in range(40_000))
    path = tmp_path / "x.coffer"
    with Coffer.open(path, "w", type=TYPE, **Coffer.gen_params(TYPE)) as coffer:
        coffer.write("log.txt", text)
    assert path.stat().st_size < len(text) / 4


def test_random_members_grow_only_by_a_small_overhead(tmp_path):
    data = os.urandom(3 * 256 * 1024 + 100)
    path = tmp_path / "x.coffer"
    empty = tmp_path / "empty.coffer"
    keys = Coffer.gen_params(TYPE)
    Coffer.open(empty, "w", type=TYPE, **keys).close()
    with Coffer.open(path, "w", type=TYPE, **keys) as coffer:
        coffer.write("noise.bin", data)
    # Four chunks: framing, member id, nonce and tag each, plus one index entry.
    assert path.stat().st_size - empty.stat().st_size - len(data) < 1024


def test_the_frozen_v1_vector_still_reads(tmp_path):
    check_vector(VECTORS, TYPE, tmp_path)
