"""Every write, sync, rename and truncate failing in turn, at every call.

After each injected fault the error reaches the caller as an exception, and
the coffer reopens at a committed state (the one before the operation, or the
one after it if the failure came once it was durable) that verifies.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest

from pycoffer_core import Coffer, CofferError

FAULTY = ("pwrite", "fdatasync", "fsync", "replace", "ftruncate", "link", "open", "unlink")
PASSWORD = "fault-injection"


class Injector:
    """Counts calls of the file-system functions; makes call ``fail_at`` of ``name`` fail."""

    def __init__(self, monkeypatch, name: str | None = None, fail_at: int = -1, code: int = errno.EIO):
        self.calls = {fn: 0 for fn in FAULTY}
        self.fired = False
        for fn in FAULTY:
            real = getattr(os, fn)
            monkeypatch.setattr(os, fn, self._wrap(fn, real, name, fail_at, code))

    def _wrap(self, fn, real, name, fail_at, code):
        def wrapper(*args, **kwargs):
            index = self.calls[fn]
            self.calls[fn] += 1
            if fn == name and index == fail_at:
                self.fired = True
                raise OSError(code, f"injected {errno.errorcode[code]} in os.{fn}")
            return real(*args, **kwargs)

        return wrapper


def _create(path: Path) -> None:
    with Coffer.open(path, "x", type="test-aead", password=PASSWORD) as coffer:
        coffer.write("a", b"1" * 3000)


def _write(path: Path) -> None:
    with Coffer.open(path, "a", type="test-aead", password=PASSWORD) as coffer:
        coffer.write("b", b"2" * 300_000)


def _delete(path: Path) -> None:
    with Coffer.open(path, "a", type="test-aead", password=PASSWORD) as coffer:
        coffer.delete("base")


def _compact(path: Path) -> None:
    with Coffer.open(path, "a", type="test-aead", password=PASSWORD) as coffer:
        coffer.compact()


def _change_passphrase(path: Path) -> None:
    with Coffer.open(path, "a", type="test-aead", password=PASSWORD) as coffer:
        coffer.change_password(PASSWORD, PASSWORD + "-new")


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "create": _create,
    "write": _write,
    "delete": _delete,
    "compact": _compact,
    "change passphrase": _change_passphrase,
}


def _state(path: Path) -> dict[str, bytes] | None:
    """What a writer finds on reopening (it repairs an interrupted key-slot change)."""
    if not path.exists():
        return None
    for password in (PASSWORD, PASSWORD + "-new"):
        try:
            with Coffer.open(path, "a", type="test-aead", password=password) as coffer:
                coffer.verify()
                return {i.name: coffer.read(i.name) for i in coffer.getmembers()}
        except CofferError as exc:
            last = exc
    raise AssertionError(f"coffer does not reopen after the fault: {last!r}")


@contextmanager
def _base(tmp_path: Path, scenario: str):
    path = tmp_path / "c.coffer"
    pristine = tmp_path / "pristine.coffer"
    if scenario != "create" and not pristine.exists():
        with Coffer.open(pristine, "x", type="test-aead", password=PASSWORD) as coffer:
            coffer.write("base", b"0" * 5000)
            coffer.write("dead", b"d" * 5000)
            coffer.delete("dead")
    for leftover in tmp_path.glob("*c.coffer*"):
        leftover.unlink()
    if pristine.exists():
        shutil.copyfile(pristine, path)
    yield path


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_io_fault_reaches_the_caller_and_leaves_a_committed_state(
    tmp_path, monkeypatch, aead_type, scenario
):
    monkeypatch.setenv("PYCOFFER_INSECURE_FAST_KDF", "1")
    run = SCENARIOS[scenario]
    with _base(tmp_path, scenario) as path:
        before = _state(path)
    # Count the calls in the same conditions as the faulty runs (no lock file yet).
    with _base(tmp_path, scenario) as path:
        with monkeypatch.context() as patch:
            counter = Injector(patch)
            run(path)
        after = _state(path)
    assert before != after or scenario in ("compact", "change passphrase")
    injected = 0
    for name, count in counter.calls.items():
        for index in range(count):
            for code in (errno.EIO, errno.ENOSPC):
                with _base(tmp_path, scenario) as path:
                    with monkeypatch.context() as patch:
                        injector = Injector(patch, name, index, code)
                        with pytest.raises((OSError, CofferError)):
                            run(path)
                    assert injector.fired
                    assert _state(path) in (before, after), (name, index)
                    injected += 1
    assert injected > 5
