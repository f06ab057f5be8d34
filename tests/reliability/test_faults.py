"""2. I/O faults, for every type: each write, sync, rename and truncate fails in turn.

Every type runs small scenarios closed after the fault (create, write,
append, delete, compact, change passphrase), and a second family keeps using
the coffer after a fault, as a program that catches the error would, which
is where a fault can be silently absorbed:

- a call that raises a plain ``OSError`` failed cleanly: it must have no
  effect, now or at a later commit;
- a call that raises ``CofferBrokenError`` may or may not be durable; the
  object must then refuse further changes;
- every call that returned is an acknowledged commit and must be on disk.

Bounded: each call index fails once, with EIO or ENOSPC alternately;
``PYCOFFER_RELIABILITY_FULL=1`` tries both at every index.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import harness
from pycoffer_core import Coffer, CofferBrokenError, CofferError
from pycoffer_core.container import log

from .conftest import ALL_TYPES

FAULTY = ("pwrite", "write", "fdatasync", "fsync", "replace", "rename", "ftruncate", "link", "open", "unlink")
FULL = os.environ.get("PYCOFFER_RELIABILITY_FULL") == "1"
#: The only calls whose failure the library absorbs: the zeros a writer keeps
#: ahead of its commits are there for speed alone (see ``log.RUNWAY``).
ABSORBED_IN = {"_renew_runway", "_drop_runway"}
PASSWORD = "fault-passphrase"


@pytest.fixture(autouse=True)
def early_syncs(monkeypatch):
    """Start an early sync (``log.EARLY_SYNC_BYTES``) after every 64 KiB of
    data, so the scenarios' larger writes fail in one too."""
    monkeypatch.setattr(log, "EARLY_SYNC_BYTES", 64 * 1024)


class Injector:
    """Counts the calls of the file-system functions; makes one of them fail."""

    def __init__(self, patch: pytest.MonkeyPatch, name: str | None = None, fail_at: int = -1, code: int = errno.EIO):
        self.calls = dict.fromkeys(FAULTY, 0)
        self.fired = False
        self.absorbable = False
        for fn in FAULTY:
            patch.setattr(os, fn, self._wrap(fn, getattr(os, fn), name, fail_at, code))

    def _wrap(self, fn: str, real: Callable[..., Any], name: str | None, fail_at: int, code: int) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            index = self.calls[fn]
            self.calls[fn] += 1
            if fn == name and index == fail_at:
                self.fired = True
                self.absorbable = _called_from(ABSORBED_IN)
                raise OSError(code, f"injected {errno.errorcode[code]} in os.{fn}")
            return real(*args, **kwargs)

        return wrapper


def _called_from(functions: set[str]) -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name in functions:
            return True
        frame = frame.f_back
    return False


def _keys(type_name: str) -> dict[str, Any]:
    return {"password": PASSWORD} if harness.has_keys(type_name) else {}


def _every_fault(counts: dict[str, int]) -> list[tuple[str, int, int]]:
    faults = []
    for name, count in counts.items():
        for index in range(count):
            codes = (errno.EIO, errno.ENOSPC) if FULL else ((errno.EIO, errno.ENOSPC)[index % 2],)
            faults.extend((name, index, code) for code in codes)
    return faults


def _pristine(tmp_path: Path, type_name: str) -> Path:
    pristine = tmp_path / "pristine.coffer"
    with Coffer.open(pristine, "x", type=type_name, **_keys(type_name)) as coffer:
        coffer.write("base", harness.pattern(5000, 1))
        coffer.write("log", b"line 0\n")
        coffer.write("dead", harness.pattern(5000, 2))
        coffer.delete("dead")
    return pristine


def _fresh_copy(tmp_path: Path, pristine: Path | None) -> Path:
    path = tmp_path / "c.coffer"
    for leftover in tmp_path.glob("*c.coffer*"):
        leftover.unlink()
    if pristine is not None:
        shutil.copyfile(pristine, path)
    return path


def _state(path: Path, type_name: str, passwords: tuple[str, ...]) -> dict[str, bytes]:
    """What a writer finds on reopening (a writer repairs an interrupted key-slot change)."""
    last: Exception | None = None
    for password in passwords:
        keys = {"password": password} if harness.has_keys(type_name) else {}
        try:
            with Coffer.open(path, "a", type=type_name, **keys) as coffer:
                coffer.verify()
                return harness.read_state(coffer)
        except CofferError as exc:
            last = exc
    raise AssertionError(f"the coffer does not reopen after the fault: {last!r}")


# ---------------------------------------------------------------- closed after the fault

SCENARIOS: dict[str, Callable[[Path, str], None]] = {
    "create": lambda path, t: _run_create(path, t),
    "write": lambda path, t: _run_in(path, t, lambda c: c.write("big", harness.pattern(300_000, 3))),
    "append": lambda path, t: _run_in(path, t, lambda c: c.append("log", b"line 1\n")),
    "delete": lambda path, t: _run_in(path, t, lambda c: c.delete("base")),
    "compact": lambda path, t: _run_in(path, t, lambda c: c.compact()),
    "change passphrase": lambda path, t: _run_in(path, t, lambda c: c.change_password(PASSWORD, PASSWORD + "2")),
}


def _run_create(path: Path, type_name: str) -> None:
    with Coffer.open(path, "x", type=type_name, **_keys(type_name)) as coffer:
        coffer.write("a", b"1" * 3000)


def _run_in(path: Path, type_name: str, change: Callable[[Coffer], None]) -> None:
    with Coffer.open(path, "a", type=type_name, **_keys(type_name)) as coffer:
        change(coffer)


def _cases() -> list[tuple[str, str]]:
    """Every type with every scenario (a type without keys has no passphrase to change)."""
    keyed = {name: name == harness.AEAD or harness.has_keys(name) for name in ALL_TYPES}
    return [(t, sc) for t in ALL_TYPES for sc in SCENARIOS if sc != "change passphrase" or keyed[t]]


@pytest.mark.parametrize(("type_name", "scenario"), _cases())
def test_each_fault_reaches_the_caller_and_leaves_a_committed_state(request, tmp_path, monkeypatch, fast_kdf, type_name, scenario):
    if type_name == harness.AEAD:
        request.getfixturevalue("aead_type")
    run = SCENARIOS[scenario]
    passwords = (PASSWORD, PASSWORD + "2")
    pristine = None if scenario == "create" else _pristine(tmp_path, type_name)
    path = _fresh_copy(tmp_path, pristine)
    before = None if pristine is None else _state(path, type_name, passwords)
    path = _fresh_copy(tmp_path, pristine)  # count in the conditions of the faulty runs (no lock file)
    with monkeypatch.context() as patch:
        counter = Injector(patch)
        run(path, type_name)
    after = _state(path, type_name, passwords)
    faults = _every_fault(counter.calls)
    assert len(faults) > 3
    for name, index, code in faults:
        path = _fresh_copy(tmp_path, pristine)
        with monkeypatch.context() as patch:
            injector = Injector(patch, name, index, code)
            try:
                run(path, type_name)
            except (OSError, CofferError):
                raised = True
            else:
                raised = False
        assert injector.fired
        if not raised:
            # Absorbed: only a runway fault may be, and the change is then done.
            assert injector.absorbable, (name, index, errno.errorcode[code], "fault swallowed")
            assert _state(path, type_name, passwords) == after, (name, index, errno.errorcode[code])
            continue
        if scenario == "create" and not path.exists():
            continue  # nothing was acknowledged, and nothing is there
        assert _state(path, type_name, passwords) in (before, after), (name, index, errno.errorcode[code])


# ---------------------------------------------------------------- carrying on after the fault

STEPS: list[tuple[str, Callable[[Coffer], None], Callable[[dict[str, bytes]], None]]] = [
    ("write new", lambda c: c.write("new", b"n" * 2000), lambda s: s.__setitem__("new", b"n" * 2000)),
    ("append", lambda c: c.append("log", b"line 1\n"), lambda s: s.__setitem__("log", s["log"] + b"line 1\n")),
    ("delete", lambda c: c.delete("base"), lambda s: s.pop("base")),
    ("compact", lambda c: c.compact(), lambda s: None),
    ("write after", lambda c: c.write("after", b"a" * 100), lambda s: s.__setitem__("after", b"a" * 100)),
    ("append again", lambda c: c.append("log", b"line 2\n"), lambda s: s.__setitem__("log", s["log"] + b"line 2\n")),
]


def _carry_on(path: Path, type_name: str) -> list[str]:
    """Run every step with auto flush, catching errors as a program would; each step's outcome."""
    outcomes = []
    coffer = Coffer.open(path, "a", type=type_name, auto_flush=True, **_keys(type_name))
    try:
        for _, step, _ in STEPS:
            try:
                step(coffer)
            except CofferBrokenError:
                outcomes.append("unknown")
            except (OSError, CofferError):
                outcomes.append("failed")
            else:
                outcomes.append("done")
    finally:
        try:
            coffer.close()
        except (OSError, CofferError):
            pass
    return outcomes


def _possible_states(base: dict[str, bytes], outcomes: list[str]) -> list[dict[str, bytes]]:
    unknown = [i for i, outcome in enumerate(outcomes) if outcome == "unknown"]
    states = []
    for applied in itertools.product((False, True), repeat=len(unknown)):
        chosen = {i for i, flag in zip(unknown, applied) if flag}
        state = dict(base)
        for i, (_, _, effect) in enumerate(STEPS):
            if outcomes[i] == "done" or i in chosen:
                try:
                    effect(state)
                except KeyError:
                    break  # a step that could not apply: this combination is impossible
        else:
            states.append(state)
    return states


def test_a_program_that_carries_on_after_a_fault_loses_no_acknowledged_change(tmp_path, monkeypatch, fast_kdf, type_name):
    """A call that returned is durable; one that raised a plain error left no trace."""
    pristine = _pristine(tmp_path, type_name)
    base = _state(_fresh_copy(tmp_path, pristine), type_name, (PASSWORD,))
    path = _fresh_copy(tmp_path, pristine)
    with monkeypatch.context() as patch:
        counter = Injector(patch)
        assert _carry_on(path, type_name) == ["done"] * len(STEPS)
    problems = []
    for name, index, code in _every_fault(counter.calls):
        path = _fresh_copy(tmp_path, pristine)
        with monkeypatch.context() as patch:
            injector = Injector(patch, name, index, code)
            try:
                outcomes = _carry_on(path, type_name)
            except (OSError, CofferError):
                continue  # the open itself failed: nothing was acknowledged
        assert injector.fired
        state = _state(path, type_name, (PASSWORD,))
        if state not in _possible_states(base, outcomes):
            steps = [f"{label}: {outcome}" for (label, _, _), outcome in zip(STEPS, outcomes)]
            problems.append(f"os.{name} call {index} failing ({errno.errorcode[code]}): {steps}; "
                            f"reopened with {sorted(state)} and log {state.get('log')!r}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- what the search above found
# REL-1 (found by the tests below, fixed in 92b6411): when the directory fsync after
# compaction's rename fails, the container keeps writing to the old, unlinked file (log.py
# LogContainer.compact): later commits are lost
# REL-2 (found by the tests below, fixed in 92b6411): a commit that fails with a plain
# OSError (ENOSPC writing the commit record) leaves its changes pending (log.py
# _append/commit, coffer.py _changed): the next commit stores them


def test_changes_acknowledged_after_a_failed_compaction_are_durable(tmp_path, monkeypatch, fast_kdf):
    """Minimal: compaction renamed the new file, then fsync of the folder failed; carry on writing."""
    import pycoffer_core.container.log as log

    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a", b"1")
        coffer.write("dead", b"x" * 1000)
        coffer.delete("dead")
    with Coffer.open(path, "a", type="null", auto_flush=True) as coffer:
        with monkeypatch.context() as patch:
            patch.setattr(log, "fsync_dir", lambda folder: (_ for _ in ()).throw(OSError(errno.EIO, "injected")))
            with pytest.raises(OSError):
                coffer.compact()
        coffer.write("b", b"acknowledged")  # returned: durable, or it should have raised
    assert harness.snapshot(path, "null") == {"a": b"1", "b": b"acknowledged"}


def test_an_append_whose_commit_failed_is_not_committed_later(tmp_path, monkeypatch):
    """Minimal: ENOSPC writing the commit record of an auto-flushed append; the caller retries."""
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("log", b"line 1\n")
    with Coffer.open(path, "a", type="null", auto_flush=True) as coffer:
        with monkeypatch.context() as patch:
            Injector(patch, "pwrite", 1, errno.ENOSPC)  # call 0: the data record; 1: the commit record
            with pytest.raises(OSError):
                coffer.append("log", b"line 2\n")
        coffer.append("log", b"line 2\n")  # the natural retry
    assert harness.snapshot(path, "null") == {"log": b"line 1\nline 2\n"}
