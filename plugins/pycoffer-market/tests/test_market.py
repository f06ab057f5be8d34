"""The market type: the conformance suite, its key, visible but tamper-proof
names, and its frozen vector."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycoffer_core import ChainLayer, Coffer, IntegrityError, InvalidArgumentError, ZstdLayer
from pycoffer_core.container import framing
from pycoffer_core.sealing import DIGEST_SIZE, MacLayer, SecretBoxLayer, derive_key
from pycoffer_core.testing import EncryptedCofferConformance
from pycoffer_core.vectors import check_vector
from pycoffer_market import CONTAINER_MAC_PURPOSE, MEMBER_BOX_PURPOSE, MarketType

TYPE = "market"
VECTORS = Path(__file__).parent / "vectors"


class TestMarketConformance(EncryptedCofferConformance):
    type_name = TYPE
    hides_names = False


# ------------------------------------------------------------------ helpers


def records(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """``(offset, kind, body)`` of every record, read as anyone without the key can."""
    data = path.read_bytes()
    with open(path, "rb") as file:
        header, _ = framing.read_header(file.fileno(), len(data))
    offset = header.records_start
    while offset < len(data):
        head = framing.parse_head(data[offset : offset + framing.HEAD_SIZE])
        assert head is not None
        kind, body = framing.unframe(data[offset : offset + head.total], offset)
        yield offset, kind, body
        offset += head.total


def readable_index(body: bytes) -> bytes:
    """A commit record's plaintext: no key needed, only the tag is dropped."""
    return bytes(ZstdLayer().open(body[:-DIGEST_SIZE], b""))


def make(path: Path, keys: dict[str, bytes], members: dict[str, bytes]) -> None:
    with Coffer.open(path, "w", type=TYPE, **keys) as coffer:
        for name, data in members.items():
            coffer.write(name, data)


def read_all(path: Path, keys: dict[str, bytes]) -> dict[str, bytes]:
    with Coffer.open(path, "r", type=TYPE, **keys) as coffer:
        coffer.verify()
        return {info.name: coffer.read(info.name) for info in coffer.getmembers()}


# ------------------------------------------------------------------ keys


def test_gen_params_returns_a_fresh_32_byte_key():
    first, second = Coffer.gen_params(TYPE), Coffer.gen_params(TYPE)
    assert set(first) == {"secure_key"}
    assert isinstance(first["secure_key"], bytes) and len(first["secure_key"]) == 32
    assert first != second


@pytest.mark.parametrize("value", [os.urandom(16), os.urandom(31), os.urandom(64), "k" * 32, None, 3.0])
def test_a_key_of_the_wrong_size_or_kind_raises_invalid_argument_naming_it(tmp_path, value):
    with pytest.raises(InvalidArgumentError, match="secure_key") as caught:
        Coffer.open(tmp_path / "x.coffer", "w", type=TYPE, secure_key=value)
    assert isinstance(caught.value, ValueError)
    assert not (tmp_path / "x.coffer").exists()


def test_the_two_layers_use_distinct_subkeys_derived_as_documented():
    secure_key = os.urandom(32)
    market = MarketType(secure_key=secure_key)
    mac_key = derive_key(secure_key, CONTAINER_MAC_PURPOSE)
    box_key = derive_key(secure_key, MEMBER_BOX_PURPOSE)
    assert len({secure_key, mac_key, box_key}) == 3
    record = market.container_layer().seal(b"index " * 50, b"ctx")
    assert ChainLayer(ZstdLayer(), MacLayer(mac_key)).open(record, b"ctx") == b"index " * 50
    chunk = market.member_layer().seal(b"content " * 50, b"ctx")
    assert ChainLayer(ZstdLayer(), SecretBoxLayer(box_key)).open(chunk, b"ctx") == b"content " * 50
    for wrong in (secure_key, box_key):
        with pytest.raises(IntegrityError):
            ChainLayer(ZstdLayer(), MacLayer(wrong)).open(record, b"ctx")


# ------------------------------------------------------------------ what shows, what doesn't


def test_names_are_readable_without_the_key_but_content_is_not(tmp_path):
    canary = b"MARKET-CONTENT-CANARY-93d1"
    path = tmp_path / "x.coffer"
    make(path, MarketType.gen_params(), {"videos/holiday.mp4": canary * 5000, "readme.txt": canary})
    indexes = b"".join(readable_index(body) for _, kind, body in records(path) if kind != framing.KIND_DATA)
    assert b"videos/holiday.mp4" in indexes
    assert b"readme.txt" in indexes
    assert canary not in path.read_bytes()


def test_random_members_grow_only_by_a_small_overhead(tmp_path):
    data = os.urandom(3 * 256 * 1024 + 100)
    keys = MarketType.gen_params()
    empty, path = tmp_path / "empty.coffer", tmp_path / "x.coffer"
    make(empty, keys, {})
    make(path, keys, {"noise.bin": data})
    # Four chunks: framing, member id, flags, nonce and tags each, plus one index entry.
    assert path.stat().st_size - empty.stat().st_size - len(data) < 1024


def test_compressible_members_are_stored_small(tmp_path):
    text = b"".join(b"market line %d: the same old words again\n" % i for i in range(40_000))
    path = tmp_path / "x.coffer"
    make(path, MarketType.gen_params(), {"log.txt": text})
    assert path.stat().st_size < len(text) / 4


# ------------------------------------------------------------------ tampering without the key


def test_swapping_two_members_data_records_is_detected(tmp_path):
    keys = MarketType.gen_params()
    path = tmp_path / "x.coffer"
    make(path, keys, {"a": os.urandom(1000), "b": os.urandom(1000)})
    data_records = [(offset, body) for offset, kind, body in records(path) if kind == framing.KIND_DATA]
    (first, first_body), (second, second_body) = data_records
    size = len(first_body) + framing.OVERHEAD
    assert len(second_body) + framing.OVERHEAD == size
    raw = bytearray(path.read_bytes())
    raw[first : first + size], raw[second : second + size] = raw[second : second + size], raw[first : first + size]
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError):
        read_all(path, keys)
    with Coffer.open(path, "r", type=TYPE, **keys) as coffer:
        for name in ("a", "b"):
            with pytest.raises(IntegrityError):
                coffer.read(name)


def test_swapping_member_ciphertext_behind_the_member_ids_is_detected(tmp_path):
    keys = MarketType.gen_params()
    path = tmp_path / "x.coffer"
    make(path, keys, {"a": os.urandom(1000), "b": os.urandom(1000)})
    (first, first_body), (second, second_body) = [
        (offset, body) for offset, kind, body in records(path) if kind == framing.KIND_DATA
    ]
    # The member layer's output (the same size for both: random data is stored
    # raw) sits just before the container's tag; the chunk ids before it stay.
    sealed_size = len(MarketType(**keys).member_layer().seal(os.urandom(1000), b""))
    inner = slice(len(first_body) - DIGEST_SIZE - sealed_size, len(first_body) - DIGEST_SIZE)
    swapped_first = bytearray(first_body)
    swapped_second = bytearray(second_body)
    swapped_first[inner], swapped_second[inner] = second_body[inner], first_body[inner]
    raw = bytearray(path.read_bytes())
    # Re-framed with valid checksums: only the key can catch this.
    raw[first : first + len(first_body) + framing.OVERHEAD] = framing.frame(framing.KIND_DATA, bytes(swapped_first))
    raw[second : second + len(second_body) + framing.OVERHEAD] = framing.frame(framing.KIND_DATA, bytes(swapped_second))
    path.write_bytes(bytes(raw))
    with Coffer.open(path, "r", type=TYPE, **keys) as coffer:
        for name in ("a", "b"):
            with pytest.raises(IntegrityError):
                coffer.read(name)
        with pytest.raises(IntegrityError):
            coffer.verify()


def test_renaming_a_member_in_the_index_is_detected(tmp_path):
    keys = MarketType.gen_params()
    path = tmp_path / "x.coffer"
    make(path, keys, {"alpha.txt": b"first", "omega.txt": b"last"})
    offset, kind, body = [record for record in records(path) if record[1] != framing.KIND_DATA][-1]
    index = readable_index(body)
    assert index.count(b"alpha.txt") == 1
    forged = ZstdLayer().seal(index.replace(b"alpha.txt", b"gamma.txt"), b"") + body[-DIGEST_SIZE:]
    path.write_bytes(path.read_bytes()[:offset] + framing.frame(kind, forged))
    with pytest.raises(IntegrityError):
        read_all(path, keys)


def test_a_wrong_key_cannot_even_list_the_members(tmp_path):
    path = tmp_path / "x.coffer"
    make(path, MarketType.gen_params(), {"a": b"1"})
    with pytest.raises(IntegrityError):
        Coffer.open(path, "r", type=TYPE, **MarketType.gen_params())


# ------------------------------------------------------------------ the frozen vector


def test_the_frozen_v1_vector_still_reads(tmp_path):
    check_vector(VECTORS, TYPE, tmp_path)
