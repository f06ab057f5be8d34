#!/usr/bin/env python3
"""Coverage-guided fuzzing of the coffer parser with atheris (libFuzzer for Python).

Each input is one byte choosing the coffer type, then the bytes of a coffer
file. The harness opens it read-only, lists, streams and verifies every
member, then opens it for writing (``harness.exercise_file``). It fails on
any exception that is not a ``CofferError``, and on an input whose run
traces more than ``--memory-mb`` of Python allocations (a file must not make
its reader allocate what it merely claims). libFuzzer's ``-timeout`` catches
hangs.

atheris is not a dependency of the project: install it into the dev venv
for a campaign (``.venv/bin/python -m pip install atheris``), then::

    nice -n 19 .venv/bin/python campaigns/fuzz_atheris.py /tmp/fuzz-corpus \\
        -max_total_time=1800 -timeout=10 -rss_limit_mb=4096

Seeds (a small coffer of each type, made with keys kept beside the corpus
in ``keys.json`` so that a corpus stays valid across runs) are written into
the corpus folder on first use. Failing inputs land as ``crash-*`` files;
replay one with ``python campaigns/fuzz_atheris.py crash-<hash>``.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import tracemalloc
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["pycoffer_core", "pycoffer_bank", "pycoffer_store", "pycoffer_market",
                                         "pycoffer_null", "pycoffer_aes"]):
    import harness
    from pycoffer_core import Coffer

MEMORY_MB = int(os.environ.get("PYCOFFER_FUZZ_MEMORY_MB", "64"))


def _setup(corpus: Path | None) -> tuple[list[str], dict[str, dict[str, bytes]]]:
    harness.register_aead()
    harness.fast_kdf()
    types = harness.all_types()
    keys_file = corpus / "keys.json" if corpus else None
    stored = json.loads(keys_file.read_text()) if keys_file and keys_file.exists() else {}
    keys = {}
    for name in types:
        if name in stored:
            keys[name] = {k: base64.b64decode(v) for k, v in stored[name].items()}
        else:
            keys[name] = Coffer.gen_params(name)
    if corpus is not None:
        corpus.mkdir(parents=True, exist_ok=True)
        keys_file.write_text(json.dumps({n: {k: base64.b64encode(v).decode() for k, v in p.items()} for n, p in keys.items()}))
        with tempfile.TemporaryDirectory() as tmp:
            for index, name in enumerate(types):
                seed = corpus / f"seed-{name}"
                if not seed.exists():
                    seed.write_bytes(bytes([index]) + harness.seed_coffer(Path(tmp) / "s.coffer", name, keys[name]))
    return types, keys


def main() -> None:
    paths = [Path(a) for a in sys.argv[1:] if not a.startswith("-")]
    if not paths:
        corpus: Path | None = Path(tempfile.mkdtemp(prefix="pycoffer-fuzz-corpus-"))
        sys.argv.append(str(corpus))
    elif paths[0].is_file():
        corpus = None  # replaying inputs (crash files)
    else:
        corpus = paths[0]  # made if missing, and seeded
    types, keys = _setup(corpus)
    work = Path(tempfile.mkdtemp(prefix="pycoffer-fuzz-"))
    target = work / "input.coffer"
    bound = MEMORY_MB << 20

    # Traced once for the whole run: starting and stopping tracemalloc for each input
    # leaks about 16 KiB of its own each time (1.7 GiB after 120,000 inputs).
    tracemalloc.start()

    def test_one_input(data: bytes) -> None:
        if not data:
            return
        name = types[data[0] % len(types)]
        body = data[1:]
        target.write_bytes(body)
        for stale in work.glob(".input.coffer.*"):
            stale.unlink()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        harness.exercise_file(target, name, keys[name])
        peak = tracemalloc.get_traced_memory()[1] - before
        if peak > bound + 4 * len(body):
            raise MemoryError(f"{name}: a {len(body)}-byte file made the reader allocate {peak >> 20} MiB")

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
