"""What the reliability tests and the long campaigns share: types, keys, states.

The bounded tests in ``tests/reliability/`` and the long-run drivers beside
this file (``crash.py``, ``fuzz_atheris.py``, ...) use the same code, so a
campaign runs exactly what CI runs, only longer.

The types tested are every installed one (``Coffer.types()``) plus
``test-aead``, the AES-GCM type defined in ``tests/aead_type.py``, so the
core's encrypted paths are exercised even with no backend installed.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

from pycoffer_core import Coffer, CofferError  # noqa: E402
from pycoffer_core.keyslots import INSECURE_FAST_ENV  # noqa: E402
from pycoffer_core.plugins import find_type, get_plugin_manager  # noqa: E402

#: The in-test AES-GCM type (``tests/aead_type.py``).
AEAD = "test-aead"
#: Python run first in a child started with ``python -c``, so it knows ``test-aead``.
CHILD_SETUP = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from aead_type import AeadPlugin
from pycoffer_core.plugins import get_plugin_manager
get_plugin_manager().register(AeadPlugin(), name="reliability-test-aead")
"""


def register_aead() -> None:
    """Make ``test-aead`` available in this process (idempotent)."""
    pm = get_plugin_manager()
    if pm.get_plugin("reliability-test-aead") is not None:
        return
    try:
        find_type(AEAD)
        return  # registered by someone else (the tests' ``aead_type`` fixture): leave it to them
    except CofferError:
        pass
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from aead_type import AeadPlugin

    pm.register(AeadPlugin(), name="reliability-test-aead")


def installed_types() -> list[str]:
    """The types installed through entry points (``test-aead`` aside, even when registered)."""
    return sorted(info.name for info in Coffer.types() if info.name != AEAD)


def all_types() -> list[str]:
    """Every installed type, then ``test-aead``."""
    return [*installed_types(), AEAD]


def parse_types(spec: str) -> list[str]:
    """``all``, ``installed`` or a comma-separated list of type names."""
    if spec == "all":
        return all_types()
    if spec == "installed":
        return installed_types()
    return [name.strip() for name in spec.split(",") if name.strip()]


def type_class(name: str) -> Any:
    """The class of type ``name`` (``test-aead`` must be registered: see :func:`register_aead`)."""
    return find_type(name)


def has_keys(name: str) -> bool:
    return bool(type_class(name).key_params)


def authenticates(name: str) -> bool:
    """Whether the type's container layer detects any change (so tampering must be caught)."""
    cls = type_class(name)
    return cls(**cls.gen_params()).container_layer().authenticates


def hides_content(name: str) -> bool:
    """Whether member content is encrypted (the canary must never reach the disk)."""
    cls = type_class(name)
    keyed = cls(**cls.gen_params())
    return keyed.member_layer().encrypts or keyed.container_layer().encrypts


def hides_names(name: str) -> bool:
    cls = type_class(name)
    return cls(**cls.gen_params()).container_layer().encrypts


def fast_kdf() -> None:
    """Tiny Argon2id parameters: these tests check logic, not the KDF's cost."""
    os.environ[INSECURE_FAST_ENV] = "1"


def pattern(size: int, seed: int) -> bytes:
    """Deterministic content for (size, seed): incompressible, cheap to make again."""
    block = random.Random(seed).randbytes(min(size, 1 << 16))
    return (block * (size // max(1, len(block)) + 1))[:size]


def sealed_types() -> list[str]:
    """The types whose container layer authenticates every byte (tampering must be detected)."""
    register_aead()
    return [name for name in all_types() if authenticates(name)]


def records_start(data: bytes) -> int:
    """Where the first record starts in the bytes of a coffer file."""
    from pycoffer_core.container.framing import SLOT_COPY_SIZE

    return int.from_bytes(data[10:12], "big") + 2 * SLOT_COPY_SIZE


def records(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, length, kind) of each complete record in the bytes of a coffer file."""
    from pycoffer_core.container import framing

    found = []
    offset = records_start(data)
    while offset + framing.HEAD_SIZE <= len(data):
        head = framing.parse_head(data[offset : offset + framing.HEAD_SIZE])
        if head is None or offset + head.total > len(data):
            break
        found.append((offset, head.total, head.kind))
        offset += head.total
    return found


def exercise_file(path: Path, type_name: str, keys: dict[str, Any]) -> None:
    """Everything a reader and a writer do with a file; only CofferError may come out.

    The parser fuzzers (``tests/reliability/test_fuzz.py``, ``fuzz_atheris.py``) call this on
    each mutated file.
    """
    try:
        Coffer.type_of(path)
    except CofferError:
        pass
    try:
        with Coffer.open(path, "r", type=type_name, lock_type="w", **keys) as coffer:
            for info in coffer.getmembers():
                with coffer.file(info.name, "rb") as f:
                    while f.read(1 << 16):
                        pass
            coffer.verify()
    except CofferError:
        pass
    try:
        with Coffer.open(path, "a", type=type_name, lock_type="w", **keys) as coffer:
            coffer.write("new", b"n")
    except CofferError:
        pass


def seed_coffer(path: Path, type_name: str, keys: dict[str, Any]) -> bytes:
    """A small coffer with history (deltas, a dead member, a renamed one): the fuzzers' seed."""
    with Coffer.open(path, "w", type=type_name, auto_flush=True, **keys) as coffer:
        coffer.write("a/b.txt", b"hello world " * 50)
        coffer.write("big", pattern(3000, 7))
        coffer.append("a/b.txt", b"more")
        coffer.delete("big")
        coffer.write("c", b"")
        coffer.rename("c", "d/c")
    return path.read_bytes()


def read_state(coffer: Coffer) -> dict[str, bytes]:
    return {info.name: coffer.read(info.name) for info in coffer.getmembers()}


def snapshot(path: Path, type_name: str, *, mode: str = "r", verify: bool = True, **keys: Any) -> dict[str, bytes]:
    """The members of the coffer at ``path``, after ``verify()``."""
    with Coffer.open(path, mode, type=type_name, **keys) as coffer:
        if verify:
            coffer.verify()
        return read_state(coffer)


__all__ = [
    "AEAD",
    "INSECURE_FAST_ENV",
    "CHILD_SETUP",
    "Coffer",
    "CofferError",
    "all_types",
    "authenticates",
    "exercise_file",
    "fast_kdf",
    "has_keys",
    "hides_content",
    "hides_names",
    "installed_types",
    "parse_types",
    "pattern",
    "read_state",
    "records",
    "records_start",
    "register_aead",
    "sealed_types",
    "seed_coffer",
    "snapshot",
    "type_class",
]
