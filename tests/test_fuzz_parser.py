"""Damaged or hostile coffer files give CofferError, never another exception.

A bounded Hypothesis run lives here; longer campaigns: raise
``PYCOFFER_FUZZ_EXAMPLES`` (for example 20000).
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycoffer_core import Coffer, CofferError

EXAMPLES = int(os.environ.get("PYCOFFER_FUZZ_EXAMPLES", "150"))
_PRISTINE: dict[str, bytes] = {}


def pristine(tmp: Path) -> bytes:
    if "null" not in _PRISTINE:
        path = tmp / "seed.coffer"
        with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
            coffer.write("a/b.txt", b"hello world " * 50)
            coffer.write("big", bytes(range(256)) * 1200)
            coffer.append("a/b.txt", b"more")
            coffer.delete("big")
            coffer.write("c", b"")
        _PRISTINE["null"] = path.read_bytes()
    return _PRISTINE["null"]


def exercise(path: Path) -> None:
    """Everything a reader does; only CofferError may come out."""
    try:
        with Coffer.open(path, "r", type="null") as coffer:
            for info in coffer.getmembers():
                coffer.read(info.name)
            coffer.verify()
    except CofferError:
        pass


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 20), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.integers(0, 255)),
    st.tuples(st.just("zero"), st.integers(0, 1 << 20), st.integers(1, 64)),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_coffers_raise_only_coffer_errors(tmp_path, mutations):
    data = bytearray(pristine(tmp_path))
    for kind, position, value in mutations:
        position %= len(data) + 1
        if kind == "flip" and position < len(data):
            data[position] ^= value
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = bytes([value])
        elif kind == "zero":
            data[position : position + value] = bytes(len(data[position : position + value]))
        if not data:
            break
    path = tmp_path / "fuzzed.coffer"
    path.write_bytes(bytes(data))
    exercise(path)


@settings(max_examples=EXAMPLES // 3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=st.binary(max_size=12_000), keep_header=st.booleans())
def test_random_files_raise_only_coffer_errors(tmp_path, noise, keep_header):
    data = pristine(tmp_path)
    path = tmp_path / "noise.coffer"
    path.write_bytes((data[:4200] if keep_header else b"") + noise)
    exercise(path)
