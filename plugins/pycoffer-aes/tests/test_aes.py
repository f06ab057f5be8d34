"""The aes type: the conformance suite, its key, the pure and fast paths
writing the same bytes, and its frozen vector. Data through the pure path
stays tiny: pyaes runs at about 0.3 MB/s."""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from pathlib import Path

import pytest

from pycoffer_aes import BACKEND_ENV, AesCtrLayer, AesType, backend_name, fast_path_available
from pycoffer_core import ChainLayer, Coffer, IntegrityError, InvalidArgumentError
from pycoffer_core.sealing import MacLayer
from pycoffer_core.testing import EncryptedCofferConformance
from pycoffer_core.vectors import check_vector

TYPE = "aes"
VECTORS = Path(__file__).parent / "vectors"
BACKENDS = ["pyaes", "cryptography"]
needs_fast_path = pytest.mark.skipif(not fast_path_available(), reason="cryptography is not installed")


class TestAesConformance(EncryptedCofferConformance):
    type_name = TYPE

    @pytest.fixture(autouse=True)
    def _fastest_backend(self, monkeypatch):
        # The suite writes megabytes: through pyaes that would take hours.
        monkeypatch.delenv(BACKEND_ENV, raising=False)


@pytest.fixture
def backend(monkeypatch, request):
    """Open coffers through the backend named by the test's parameter."""
    monkeypatch.setenv(BACKEND_ENV, request.param)
    return request.param


def write_tiny(path: Path, keys: dict[str, bytes]) -> None:
    with Coffer.open(path, "w", type=TYPE, **keys) as coffer:
        coffer.write("a.txt", b"tiny")
        coffer.write("d/b", b"")


def read_all(path: Path, keys: dict[str, bytes]) -> dict[str, bytes]:
    with Coffer.open(path, "r", type=TYPE, **keys) as coffer:
        coffer.verify()
        return {info.name: coffer.read(info.name) for info in coffer.getmembers()}


# ------------------------------------------------------------------ keys


def test_gen_params_returns_a_fresh_32_byte_key():
    first, second = Coffer.gen_params(TYPE), Coffer.gen_params(TYPE)
    assert set(first) == {"aes_key"}
    assert isinstance(first["aes_key"], bytes) and len(first["aes_key"]) == 32
    assert first != second


@pytest.mark.parametrize("value", [os.urandom(16), os.urandom(24), os.urandom(33), "k" * 32, None, []])
def test_a_key_of_the_wrong_size_or_kind_raises_invalid_argument_naming_it(tmp_path, value):
    with pytest.raises(InvalidArgumentError, match="aes_key") as caught:
        Coffer.open(tmp_path / "x.coffer", "w", type=TYPE, aes_key=value)
    assert isinstance(caught.value, ValueError)
    assert not (tmp_path / "x.coffer").exists()


# ------------------------------------------------------------------ the two backends


@pytest.mark.parametrize("name", BACKENDS)
def test_each_backend_is_aes_256_ctr(name):
    if name == "cryptography" and not fast_path_available():
        pytest.skip("cryptography is not installed")
    # NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt.
    key = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    counter = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    plain = bytes.fromhex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
    )
    cipher = bytes.fromhex(
        "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
        "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
    )
    layer = AesCtrLayer(key, backend=name, random=lambda size: counter)
    assert layer.seal(plain, b"") == counter + cipher
    assert layer.open(counter + cipher, b"") == plain


@needs_fast_path
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100, 1000])
@pytest.mark.parametrize(
    "iv", [bytes(16), os.urandom(16), b"\xff" * 16, b"\x00" * 8 + b"\xff" * 8], ids=["zero", "random", "wraps", "carries"]
)
def test_both_backends_write_identical_bytes_given_the_same_iv(size, iv):
    key, mac_key, data = os.urandom(32), os.urandom(32), os.urandom(size)
    sealed = {
        name: ChainLayer(AesCtrLayer(key, backend=name, random=lambda _: iv), MacLayer(mac_key)).seal(data, b"ctx")
        for name in BACKENDS
    }
    assert sealed["pyaes"] == sealed["cryptography"]
    for name in BACKENDS:
        assert ChainLayer(AesCtrLayer(key, backend=name), MacLayer(mac_key)).open(sealed["pyaes"], b"ctx") == data


@needs_fast_path
def test_both_backends_write_identical_coffer_files(tmp_path, monkeypatch):
    keys = AesType.gen_params()

    def deterministic_file(name: str, attempt: int) -> bytes:
        # Every id, IV and time the coffer draws comes from here.
        counter = itertools.count()
        monkeypatch.setattr(os, "urandom", lambda size: hashlib.shake_256(b"%d" % next(counter)).digest(size))
        monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_000_000_000)
        monkeypatch.setenv(BACKEND_ENV, name)
        path = tmp_path / f"{name}-{attempt}.coffer"
        write_tiny(path, keys)
        return path.read_bytes()

    assert deterministic_file("cryptography", 1) == deterministic_file("cryptography", 2), (
        "the coffer drew randomness or time from elsewhere: this test can no longer pin it"
    )
    assert deterministic_file("pyaes", 1) == deterministic_file("cryptography", 1)


@needs_fast_path
@pytest.mark.parametrize(("writer", "reader"), [("pyaes", "cryptography"), ("cryptography", "pyaes")])
def test_each_backend_reads_the_coffers_of_the_other(tmp_path, monkeypatch, writer, reader):
    keys, path = AesType.gen_params(), tmp_path / "x.coffer"
    monkeypatch.setenv(BACKEND_ENV, writer)
    write_tiny(path, keys)
    monkeypatch.setenv(BACKEND_ENV, reader)
    assert read_all(path, keys) == {"a.txt": b"tiny", "d/b": b""}


def test_the_environment_variable_chooses_the_backend(monkeypatch):
    monkeypatch.setenv(BACKEND_ENV, "pyaes")
    assert backend_name() == "pyaes"
    assert AesType(**AesType.gen_params()).container_layer().first.backend == "pyaes"
    monkeypatch.setenv(BACKEND_ENV, "auto")
    assert backend_name() == ("cryptography" if fast_path_available() else "pyaes")
    monkeypatch.delenv(BACKEND_ENV)
    assert backend_name() == ("cryptography" if fast_path_available() else "pyaes")


def test_an_unknown_backend_name_raises_invalid_argument_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(BACKEND_ENV, "openssl")
    with pytest.raises(InvalidArgumentError, match=BACKEND_ENV):
        Coffer.open(tmp_path / "x.coffer", "w", type=TYPE, **AesType.gen_params())
    assert not (tmp_path / "x.coffer").exists()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_a_wrong_key_raises_integrity_error_on_either_backend(tmp_path, backend):
    if backend == "cryptography" and not fast_path_available():
        pytest.skip("cryptography is not installed")
    path = tmp_path / "x.coffer"
    write_tiny(path, AesType.gen_params())
    with pytest.raises(IntegrityError):
        read_all(path, AesType.gen_params())


# ------------------------------------------------------------------ the layer


def test_no_canary_and_no_key_reaches_the_file(tmp_path):
    canary = b"AES-CANARY-77e0"
    keys = AesType.gen_params()
    path = tmp_path / "x.coffer"
    with Coffer.open(path, "w", type=TYPE, **keys) as coffer:
        coffer.write(canary.decode() + "/name", canary * 10_000)
        coffer.write("small", canary)
    stored = path.read_bytes()
    assert canary not in stored
    assert keys["aes_key"] not in stored


# ------------------------------------------------------------------ the frozen vector


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_the_frozen_v1_vector_still_reads(tmp_path, backend):
    if backend == "cryptography" and not fast_path_available():
        pytest.skip("cryptography is not installed")
    check_vector(VECTORS, TYPE, tmp_path)
