"""Passphrase details beyond the conformance suite: calibration and repair."""

from __future__ import annotations

import errno
import os

import pytest

from pycoffer_core import Coffer, WrongKeyError
from pycoffer_core.container import framing
from pycoffer_core.keyslots import MEMORY_KIB, MIN_ITERATIONS, KeySlots, new_kdf_params


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
