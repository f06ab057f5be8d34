"""pycoffer_core.sealing: the building blocks the encrypting backends share."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given
from hypothesis import strategies as st

from pycoffer_core import IntegrityError, InvalidArgumentError
from pycoffer_core.sealing import MacLayer, SecretBoxLayer, bind, derive_key, raw_key, unbind


def test_derive_key_is_hkdf_expand_sha256():
    key = os.urandom(32)
    expected = HKDFExpand(hashes.SHA256(), 32, b"purpose").derive(key)
    assert derive_key(key, b"purpose") == expected


def test_derived_keys_differ_by_purpose_and_by_key():
    key = os.urandom(32)
    assert derive_key(key, b"a") != derive_key(key, b"b")
    assert derive_key(key, b"a") != derive_key(os.urandom(32), b"a")


@pytest.mark.parametrize("value", [b"x" * 31, b"x" * 33, "x" * 32, None, 32])
def test_raw_key_names_the_parameter_and_never_shows_the_value(value):
    with pytest.raises(InvalidArgumentError, match="my_key") as caught:
        raw_key("my_key", value)
    assert "xxxx" not in str(caught.value)


def test_raw_key_accepts_bytes_like_values():
    assert raw_key("k", bytearray(32)) == bytes(32)
    assert raw_key("k", memoryview(bytes(16)), size=16) == bytes(16)


def test_unbind_refuses_another_context_and_short_input():
    assert unbind(bind(b"data", b"here"), b"here") == b"data"
    with pytest.raises(IntegrityError):
        unbind(bind(b"data", b"here"), b"there")
    with pytest.raises(IntegrityError):
        unbind(b"short", b"here")


@pytest.mark.parametrize("make", [MacLayer, SecretBoxLayer], ids=["mac", "secretbox"])
def test_a_layer_round_trips_and_refuses_other_contexts_keys_and_cuts(make):
    key = os.urandom(32)
    layer = make(key)
    sealed = layer.seal(b"payload" * 20, b"ctx")
    assert layer.open(sealed, b"ctx") == b"payload" * 20
    assert make(key).open(sealed, b"ctx") == b"payload" * 20  # stateless: a new instance opens it
    for context in (b"ctx2", b"", b"ct"):
        with pytest.raises(IntegrityError):
            layer.open(sealed, context)
    with pytest.raises(IntegrityError):
        make(os.urandom(32)).open(sealed, b"ctx")
    for cut in range(len(sealed)):
        with pytest.raises(IntegrityError):
            layer.open(sealed[:cut], b"ctx")


@pytest.mark.parametrize("make", [MacLayer, SecretBoxLayer], ids=["mac", "secretbox"])
def test_flipping_any_bit_of_a_sealed_piece_is_detected(make):
    layer = make(os.urandom(32))
    sealed = layer.seal(b"abc", b"ctx")
    for offset in range(len(sealed)):
        damaged = bytearray(sealed)
        damaged[offset] ^= 0x01
        with pytest.raises(IntegrityError):
            layer.open(bytes(damaged), b"ctx")


def test_the_mac_context_is_length_prefixed_so_context_and_data_cannot_be_resplit():
    layer = MacLayer(os.urandom(32))
    tag = layer.seal(b"cdata", b"ab")[len(b"cdata") :]
    # The same bytes "abcdata", split into context and data elsewhere.
    with pytest.raises(IntegrityError):
        layer.open(b"data" + tag, b"abc")


def test_the_secret_box_hides_its_input_and_the_mac_does_not():
    secret = b"plainly visible text " * 4
    assert secret not in SecretBoxLayer(os.urandom(32)).seal(secret, b"ctx")
    assert MacLayer(os.urandom(32)).seal(secret, b"ctx").startswith(secret)


@given(garbage=st.binary(max_size=120))
def test_layers_given_garbage_raise_integrity_error(garbage):
    for layer in (MacLayer(bytes(32)), SecretBoxLayer(bytes(32))):
        with pytest.raises(IntegrityError):
            layer.open(garbage, b"ctx")


def test_the_secret_box_layer_writes_and_reads_pynacl_secretbox_messages():
    """The layer calls PyNaCl's bindings directly: its bytes must stay ``SecretBox``'s."""
    import nacl.secret

    key, data, context = os.urandom(32), os.urandom(3000), b"pycoffer/data\x00ctx"
    layer, box = SecretBoxLayer(key), nacl.secret.SecretBox(key)
    assert box.decrypt(layer.seal(data, context)) == bind(data, context)
    assert layer.open(bytes(box.encrypt(bind(data, context))), context) == data


def test_the_mac_layer_tag_is_hmac_sha256_of_the_length_prefixed_context_and_data():
    import hashlib
    import hmac
    import struct

    key, data, context = os.urandom(32), os.urandom(3000), b"ctx"
    expected = hmac.new(key, struct.pack(">Q", len(context)) + context + data, hashlib.sha256).digest()
    assert MacLayer(key).seal(data, context) == data + expected


@pytest.mark.parametrize("make", [MacLayer, SecretBoxLayer], ids=["mac", "secretbox"])
def test_a_layer_that_accepts_views_opens_a_view_as_it_opens_bytes(make):
    # The container hands these layers a view of the record it read (no copy).
    layer = make(os.urandom(32))
    assert layer.accepts_views
    sealed = layer.seal(b"payload" * 20, b"ctx")
    framed = b"head" + sealed + b"trail"
    view = memoryview(framed)[4:-5]
    assert bytes(layer.open(view, b"ctx")) == b"payload" * 20
    with pytest.raises(IntegrityError):
        layer.open(view, b"other")
    with pytest.raises(IntegrityError):
        layer.open(view[:-1], b"ctx")


@pytest.mark.parametrize("make", [MacLayer, SecretBoxLayer], ids=["mac", "secretbox"])
def test_a_layer_given_bytes_returns_bytes(make):
    layer = make(os.urandom(32))
    opened = layer.open(layer.seal(b"text", b"ctx"), b"ctx")
    assert type(opened) is bytes and opened.decode() == "text"
