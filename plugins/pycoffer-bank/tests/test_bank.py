"""The bank type: the conformance suite, its keys, its two layers, its frozen vector."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pycoffer_core import Coffer, IntegrityError, InvalidArgumentError, WrongKeyError
from pycoffer_core.testing import EncryptedCofferConformance
from pycoffer_core.vectors import check_vector

TYPE = "bank"
VECTORS = Path(__file__).parent / "vectors"


class TestBankConformance(EncryptedCofferConformance):
    type_name = TYPE


def test_gen_params_returns_a_fresh_fernet_key_and_32_random_bytes():
    first, second = Coffer.gen_params(TYPE), Coffer.gen_params(TYPE)
    assert set(first) == {"coffer_key", "secure_key"}
    Fernet(first["coffer_key"])
    assert isinstance(first["secure_key"], bytes) and len(first["secure_key"]) == 32
    assert first["coffer_key"] != second["coffer_key"]
    assert first["secure_key"] != second["secure_key"]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("coffer_key", os.urandom(32)),  # a raw key where a Fernet key belongs
        ("coffer_key", b"not a fernet key"),
        ("coffer_key", 12345),
        ("secure_key", os.urandom(31)),
        ("secure_key", os.urandom(33)),
        ("secure_key", "x" * 32),
        ("secure_key", Fernet.generate_key()),  # the keys swapped
    ],
)
def test_a_key_of_the_wrong_size_or_kind_raises_invalid_argument_naming_it(tmp_path, param, value):
    keys = {**Coffer.gen_params(TYPE), param: value}
    with pytest.raises(InvalidArgumentError, match=param) as caught:
        Coffer.open(tmp_path / "x.coffer", "w", type=TYPE, **keys)
    assert isinstance(caught.value, ValueError)
    assert not (tmp_path / "x.coffer").exists()


def test_a_fernet_key_given_as_text_opens_the_same_coffer(tmp_path):
    keys = Coffer.gen_params(TYPE)
    with Coffer.open(tmp_path / "x.coffer", "w", type=TYPE, **keys) as coffer:
        coffer.write("a", b"1")
    text_keys = {**keys, "coffer_key": keys["coffer_key"].decode()}
    with Coffer.open(tmp_path / "x.coffer", "r", type=TYPE, **text_keys) as coffer:
        assert coffer.read("a") == b"1"


def test_the_right_coffer_key_with_a_wrong_secure_key_is_refused_at_open(tmp_path):
    """The coffer_key alone opens the records; the header's key check makes
    a wrong secure_key fail at open too, before a write could store members
    nobody can read."""
    path = tmp_path / "x.coffer"
    keys = Coffer.gen_params(TYPE)
    with Coffer.open(path, "w", type=TYPE, **keys) as coffer:
        coffer.write("a", b"secret")
    before = path.read_bytes()
    wrong = {**keys, "secure_key": os.urandom(32)}
    for mode in ("r", "a"):
        with pytest.raises(WrongKeyError, match="secure_key"):
            Coffer.open(path, mode, type=TYPE, **wrong)
    assert path.read_bytes() == before
    with Coffer.open(path, "r", type=TYPE, **keys) as coffer:
        assert coffer.read("a") == b"secret"


def test_no_canary_and_no_key_reaches_the_file(tmp_path):
    canary = b"BANK-CANARY-0b5e"
    keys = Coffer.gen_params(TYPE)
    path = tmp_path / "x.coffer"
    with Coffer.open(path, "w", type=TYPE, **keys) as coffer:
        coffer.write(canary.decode() + "/name", canary * 10_000)
        coffer.write("small", canary)
    stored = path.read_bytes()
    for secret in (canary, keys["secure_key"], keys["coffer_key"], base64.urlsafe_b64decode(keys["coffer_key"])):
        assert secret not in stored
    # Compressed before it was sealed: 160 KB of repeats stay small.
    assert len(stored) < 20_000


def test_the_frozen_v1_vector_still_reads(tmp_path):
    check_vector(VECTORS, TYPE, tmp_path)


def test_records_are_fernet_tokens_both_ways():
    """The container layer's records are standard Fernet tokens in binary form."""
    from pycoffer_bank import FernetLayer
    from pycoffer_core.sealing import bind, unbind

    key = Fernet.generate_key()
    layer, fernet = FernetLayer(key), Fernet(key)
    for size in (0, 1, 15, 16, 17, 4096, 256 * 1024 + 3):
        data = os.urandom(size)
        record = layer.seal(data, b"ctx")
        assert unbind(fernet.decrypt(base64.urlsafe_b64encode(record)), b"ctx") == data
        token = base64.urlsafe_b64decode(fernet.encrypt(bind(data, b"ctx")))
        assert layer.open(token, b"ctx") == data


@pytest.mark.parametrize("cut", ["empty", "short", "misaligned", "version", "mac", "ciphertext", "other key"])
def test_a_record_that_is_not_a_token_of_this_key_raises_integrity_error(cut):
    from pycoffer_bank import FernetLayer

    layer = FernetLayer(Fernet.generate_key())
    record = bytearray(layer.seal(b"secret" * 10, b"ctx"))
    damaged = {
        "empty": b"",
        "short": bytes(record[:72]),
        "misaligned": bytes(record[:-1]),
        "version": b"\x81" + bytes(record[1:]),
        "mac": bytes(record[:-1]) + bytes([record[-1] ^ 1]),
        "ciphertext": bytes(record[:30]) + bytes([record[30] ^ 1]) + bytes(record[31:]),
        "other key": FernetLayer(Fernet.generate_key()).seal(b"secret" * 10, b"ctx"),
    }[cut]
    with pytest.raises(IntegrityError, match="decryption failed"):
        layer.open(damaged, b"ctx")


@pytest.mark.parametrize("raw_size", [16, 31, 33, 48])
def test_the_fernet_layer_refuses_a_key_that_is_not_32_bytes_as_fernet_does(raw_size):
    from pycoffer_bank import FernetLayer

    key = base64.urlsafe_b64encode(os.urandom(raw_size))
    with pytest.raises(ValueError):
        Fernet(key)
    with pytest.raises(ValueError, match="32 bytes"):
        FernetLayer(key)
