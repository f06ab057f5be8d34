"""Passphrase details beyond the conformance suite: calibration and repair."""

from __future__ import annotations

import errno
import os

import pytest

import pycoffer_core
from pycoffer_core import (
    Coffer,
    CofferBrokenError,
    IntegrityError,
    InvalidArgumentError,
    KdfLimitError,
    WrongKeyError,
)
from pycoffer_core.container import framing
from pycoffer_core.keyslots import MEMORY_KIB, MIN_ITERATIONS, KdfParams, KeySlots, new_kdf_params


def test_new_slots_use_memory_hard_calibrated_parameters(monkeypatch):
    monkeypatch.delenv("PYCOFFER_INSECURE_FAST_KDF", raising=False)
    params = new_kdf_params()
    assert params.memory_kib == MEMORY_KIB >= 64 * 1024
    assert params.iterations >= MIN_ITERATIONS
    assert len(params.salt) == 16


def _slots_on_disk(path) -> KeySlots:
    with open(path, "rb") as f:
        fd = f.fileno()
        _, header_len = framing.read_header(fd, os.fstat(fd).st_size)
        return KeySlots.decode(framing.read_slot_area(fd, header_len)[1])


def test_an_interrupted_removal_leaves_no_trace_of_the_slot_once_a_writer_opens(
    tmp_path, monkeypatch, aead_type
):
    monkeypatch.setenv("PYCOFFER_INSECURE_FAST_KDF", "1")
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "x", type=aead_type, password="one") as coffer:
        coffer.add_password("two")
    removed = _slots_on_disk(path).slots[0].sealed
    real = os.pwrite
    calls = []

    def crash_before_second_copy(fd, data, offset):
        calls.append(offset)
        if len(calls) == 2:
            raise OSError(errno.EIO, "power lost")
        return real(fd, data, offset)

    with Coffer.open(path, "a", type=aead_type, password="two") as coffer:
        monkeypatch.setattr(os, "pwrite", crash_before_second_copy)
        with pytest.raises(OSError):
            coffer.remove_password("one")
        monkeypatch.setattr(os, "pwrite", real)
    assert removed in path.read_bytes()  # the second copy still holds it
    with Coffer.open(path, "r", type=aead_type, password="two") as coffer:
        coffer.verify()  # an interrupted change is not damage
    with pytest.raises(WrongKeyError):
        Coffer.open(path, "r", type=aead_type, password="one")
    Coffer.open(path, "a", type=aead_type, password="two").close()
    assert removed not in path.read_bytes()
    with Coffer.open(path, "r", type=aead_type, password="two") as coffer:
        coffer.verify()


# ------------------------------------------------------------ from a review


def _plant_slot_blob(path, blob: bytes) -> None:
    """Write ``blob`` as the key-slot area, as anyone who can write the file can."""
    with open(path, "r+b") as f:
        fd = f.fileno()
        header, header_len = framing.read_header(fd, os.fstat(fd).st_size)
        generation = framing.read_slot_area(fd, header_len)[0] + 1
        copy = framing.encode_slot_copy(generation, blob)
        for index in (0, 1):
            os.pwrite(fd, copy, header_len + index * framing.SLOT_COPY_SIZE)


def test_kdf_parameters_planted_without_a_slot_are_never_reused(tmp_path, monkeypatch, aead_type):
    monkeypatch.setenv("PYCOFFER_INSECURE_FAST_KDF", "1")
    path = tmp_path / "c.coffer"
    keys = Coffer.gen_params(aead_type)
    Coffer.open(path, "x", type=aead_type, **keys).close()
    planted = KdfParams(8, 1, 1, b"A" * 16)
    _plant_slot_blob(path, planted.encode() + bytes([0]))
    with Coffer.open(path, "a", type=aead_type, **keys) as coffer:
        coffer.add_password("new passphrase")
    kdf = _slots_on_disk(path).kdf
    assert kdf is not None and kdf.salt != planted.salt and kdf.memory_kib > planted.memory_kib
    Coffer.open(path, "r", type=aead_type, password="new passphrase").close()


def test_a_slot_is_not_added_under_kdf_parameters_weaker_than_new_slots_get(tmp_path, monkeypatch, aead_type):
    # A file whose shared parameters were weakened (its slots then open no
    # more) must not lend them to a new passphrase.
    monkeypatch.setenv("PYCOFFER_INSECURE_FAST_KDF", "1")
    path = tmp_path / "c.coffer"
    keys = Coffer.gen_params(aead_type)
    with Coffer.open(path, "x", type=aead_type, **keys) as coffer:
        coffer.add_password("first")
    monkeypatch.delenv("PYCOFFER_INSECURE_FAST_KDF")
    before = path.read_bytes()
    with Coffer.open(path, "a", type=aead_type, **keys) as coffer:
        with pytest.raises(IntegrityError, match="weaker"):
            coffer.add_password("second")
    assert path.read_bytes() == before


def test_a_new_slot_wraps_the_keys_in_use_even_if_the_caller_wipes_its_own(tmp_path, monkeypatch, aead_type):
    monkeypatch.setenv("PYCOFFER_INSECURE_FAST_KDF", "1")
    path = tmp_path / "c.coffer"
    keys = {name: bytearray(value) for name, value in Coffer.gen_params(aead_type).items()}
    with Coffer.open(path, "x", type=aead_type, **keys) as coffer:
        coffer.write("a", b"content")
        for value in keys.values():
            value[:] = bytes(len(value))  # wiped once the coffer is open
        coffer.add_password("passphrase")
    with Coffer.open(path, "r", type=aead_type, password="passphrase") as coffer:
        assert coffer.read("a") == b"content"


def test_a_bank_key_given_as_text_can_be_wrapped_in_a_slot(tmp_path, monkeypatch):
    monkeypatch.setenv("PYCOFFER_INSECURE_FAST_KDF", "1")
    path = tmp_path / "c.coffer"
    keys = Coffer.gen_params("bank")
    as_text = {**keys, "coffer_key": keys["coffer_key"].decode("ascii")}
    with Coffer.open(path, "x", type="bank", **as_text) as coffer:
        coffer.write("a", b"content")
        coffer.add_password("passphrase")
    with Coffer.open(path, "r", type="bank", password="passphrase") as coffer:
        assert coffer.read("a") == b"content"


def test_an_interrupt_between_the_slot_copies_refuses_further_changes(tmp_path, monkeypatch, aead_type):
    monkeypatch.setenv("PYCOFFER_INSECURE_FAST_KDF", "1")
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "x", type=aead_type, password="old") as coffer:
        coffer.write("a", b"content")
    real, calls = os.pwrite, []

    def interrupted_after_first_copy(fd, data, offset):
        calls.append(offset)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(fd, data, offset)

    with Coffer.open(path, "a", type=aead_type, password="old") as coffer:
        monkeypatch.setattr(os, "pwrite", interrupted_after_first_copy)
        with pytest.raises(KeyboardInterrupt):
            coffer.change_password("old", "new")
        monkeypatch.setattr(os, "pwrite", real)
        with pytest.raises(CofferBrokenError):
            coffer.write("b", b"more")
    with Coffer.open(path, "r", type=aead_type, password="new") as coffer:  # the first copy is newer
        assert coffer.read("a") == b"content"


def test_a_passphrase_utf8_cannot_encode_is_refused_without_being_shown(tmp_path, monkeypatch, aead_type):
    monkeypatch.setenv("PYCOFFER_INSECURE_FAST_KDF", "1")
    secret = "hunter\udce92"
    with pytest.raises(InvalidArgumentError) as raised:
        Coffer.open(tmp_path / "c.coffer", "x", type=aead_type, password=secret)
    assert "hunter" not in str(raised.value) and raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    assert not (tmp_path / "c.coffer").exists()


def test_a_hostile_kdf_request_is_a_documented_integrity_error():
    assert issubclass(KdfLimitError, IntegrityError)
    assert pycoffer_core.KdfLimitError is KdfLimitError


def test_the_backup_keeps_the_passphrases_of_the_coffer_as_it_was_at_open(tmp_path, monkeypatch, aead_type):
    monkeypatch.setenv("PYCOFFER_INSECURE_FAST_KDF", "1")
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "x", type=aead_type, password="old") as coffer:
        coffer.write("a", b"content")
    with Coffer.open(path, "a", type=aead_type, password="old", backup=".bak") as coffer:
        coffer.change_password("old", "new")
        coffer.write("b", b"more")
    with Coffer.open(f"{path}.bak", "r", type=aead_type, password="old") as backup:
        assert [info.name for info in backup.getmembers()] == ["a"]
    with pytest.raises(WrongKeyError):
        Coffer.open(f"{path}.bak", "r", type=aead_type, password="new")
