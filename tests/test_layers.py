"""The core's layers: compression that skips what doesn't pay, and damage detection."""

import os

import pytest

from pycoffer_core import ChainLayer, IntegrityError, PlainLayer, ZstdLayer


def test_zstd_compresses_what_compresses():
    data = b"spam and eggs " * 1000
    sealed = ZstdLayer().seal(data, b"")
    assert len(sealed) < len(data) / 10
    assert ZstdLayer().open(sealed, b"") == data


def test_zstd_stores_incompressible_data_raw():
    data = os.urandom(10_000)
    sealed = ZstdLayer().seal(data, b"")
    assert sealed == b"\x00" + data


def test_zstd_skips_data_it_is_told_is_already_compressed():
    data = b"a" * 10_000
    assert ZstdLayer().seal(data, b"", compressible=False) == b"\x00" + data


def test_zstd_raises_integrity_error_on_damage():
    sealed = bytearray(ZstdLayer().seal(b"hello " * 100, b""))
    sealed[5] ^= 0xFF
    with pytest.raises(IntegrityError):
        ZstdLayer().open(bytes(sealed), b"")
    with pytest.raises(IntegrityError):
        ZstdLayer().open(b"\x07abc", b"")


def test_a_chain_never_compresses_twice():
    chain = ChainLayer(ZstdLayer(), ZstdLayer())
    data = b"abc" * 5000
    sealed = chain.seal(data, b"")
    assert sealed[0] == 0  # the outer layer kept the compressed bytes as they were
    assert chain.open(sealed, b"") == data


def test_plain_layer_is_the_identity():
    assert PlainLayer().open(PlainLayer().seal(b"x", b"c"), b"c") == b"x"


def test_zstd_refuses_to_decompress_past_its_cap(monkeypatch):
    import pycoffer_core.layers as layers

    monkeypatch.setattr(layers, "MAX_DECOMPRESSED", 1000)
    bomb = b"\x01" + __import__("pyzstd").compress(bytes(10_000_000))
    with pytest.raises(IntegrityError, match="cap"):
        ZstdLayer().open(bomb, b"")


def test_zstd_refuses_trailing_bytes_after_the_frame():
    sealed = ZstdLayer().seal(b"abc" * 100, b"")
    with pytest.raises(IntegrityError):
        ZstdLayer().open(sealed + b"junk", b"")


def test_core_layers_open_a_view_of_a_record_without_copying_raw_bytes():
    # A raw (incompressible) chunk comes back as a view of the record read:
    # the bytes a reader extracts are copied once, by the read itself.
    data = os.urandom(10_000)
    record = b"head" + ZstdLayer().seal(data, b"") + b"trail"
    view = memoryview(record)[4:-5]
    for layer in (ZstdLayer(), ChainLayer(PlainLayer(), ZstdLayer())):
        assert layer.accepts_views
        opened = layer.open(view, b"")
        assert isinstance(opened, memoryview) and opened.obj is record
        assert opened == data
    compressed = b"head" + ZstdLayer().seal(b"abc" * 5000, b"") + b"trail"
    assert ZstdLayer().open(memoryview(compressed)[4:-5], b"") == b"abc" * 5000


class _BytesOnlyLayer(PlainLayer):
    """A third-party layer that says nothing of views: it must get bytes."""

    accepts_views = False

    def open(self, data, context):
        assert type(data) is bytes, type(data)
        return data


def test_a_layer_that_does_not_accept_views_is_handed_bytes():
    from pycoffer_core.layers import open_layer

    record = b"head" + ZstdLayer().seal(os.urandom(1000), b"") + b"trail"
    chain = ChainLayer(_BytesOnlyLayer(), ZstdLayer())
    assert bytes(chain.open(memoryview(record)[4:-5], b"")) == record[5:-5]
    assert open_layer(_BytesOnlyLayer(), memoryview(b"xyz"), b"") == b"xyz"


class _OwnWayZstd(ZstdLayer):
    """A third party's layer over one of the core's, opening in its own way."""

    def open(self, data, context):
        assert type(data) is bytes, type(data)
        return super().open(data, context)


def test_a_subclass_that_opens_in_its_own_way_is_handed_bytes():
    assert not _OwnWayZstd.accepts_views
    record = b"head" + ZstdLayer().seal(b"abc" * 100, b"") + b"trail"
    chain = ChainLayer(PlainLayer(), _OwnWayZstd())
    assert chain.open(memoryview(record)[4:-5], b"") == b"abc" * 100


def test_core_layers_given_bytes_return_bytes_of_their_own():
    given = bytearray(b"\x00" + os.urandom(100))
    for layer in (PlainLayer(), ZstdLayer(), ChainLayer(PlainLayer(), ZstdLayer())):
        opened = layer.open(bytes(given), b"")
        assert type(opened) is bytes
    opened = PlainLayer().open(given, b"")
    assert type(opened) is bytes and opened == given
    given[1] ^= 1
    assert opened != given  # a copy, not the caller's buffer
