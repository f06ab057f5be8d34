#!/usr/bin/env python3
"""Run every long reliability campaign, one after the other, and keep their output.

    nice -n 19 .venv/bin/python campaigns/all.py --out /tmp/reliability-run

runs, in this order (each can be left out with ``--skip NAME``):

=============  ===============================================================
crash          ``crash.py --kills 500 --types all``
concurrency    ``concurrency.py --types all --lock-types rw,w --iterations 100``
faults         the I/O-fault tests with both EIO and ENOSPC at every call index
tampering      the tampering tests on every byte, with XOR 0x01 and 0xFF
model          the state machine, 1000 sequences of up to 50 steps per type
fuzz           the Hypothesis parser fuzzer, 5000 examples per type
plaintext      the canary tests with 64 MiB members
atheris        ``fuzz_atheris.py`` for 30 minutes (if atheris is installed)
=============  ===============================================================

Each step's output goes to ``<out>/<name>.txt``; ``<out>/summary.json`` holds
each step's exit status and duration. ``docs/reliability.md`` quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TESTS = ROOT / "tests" / "reliability"


def steps(args: argparse.Namespace) -> dict[str, tuple[list[str], dict[str, str]]]:
    py = sys.executable
    pytest = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0"]
    return {
        "crash": ([py, str(HERE / "crash.py"), "--kills", str(args.kills), "--types", args.types], {}),
        "concurrency": ([py, str(HERE / "concurrency.py"), "--types", args.types, "--iterations", "100"], {}),
        "faults": ([*pytest, str(TESTS / "test_faults.py")], {"PYCOFFER_RELIABILITY_FULL": "1"}),
        "tampering": ([*pytest, str(TESTS / "test_tampering.py")], {"PYCOFFER_RELIABILITY_FULL": "1"}),
        "model": ([*pytest, str(TESTS / "test_model.py")],
                  {"PYCOFFER_MODEL_EXAMPLES": "1000", "PYCOFFER_MODEL_STEPS": "50", "PYCOFFER_RELIABILITY_RANDOM": "1"}),
        "fuzz": ([*pytest, str(TESTS / "test_fuzz.py")], {"PYCOFFER_FUZZ_EXAMPLES": "5000", "PYCOFFER_RELIABILITY_RANDOM": "1"}),
        "plaintext": ([*pytest, str(TESTS / "test_plaintext.py")], {"PYCOFFER_PLAINTEXT_MB": "64"}),
        "atheris": ([py, str(HERE / "fuzz_atheris.py"), str(Path(args.out) / "atheris-corpus"),
                     f"-max_total_time={args.atheris_seconds}", "-timeout=10", "-rss_limit_mb=4096"], {}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--types", default="all")
    parser.add_argument("--atheris-seconds", type=int, default=1800)
    parser.add_argument("--skip", action="append", default=[])
    parser.add_argument("--only", action="append", default=[])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary_file = args.out / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    for name, (command, extra_env) in steps(args).items():
        if name in args.skip or (args.only and name not in args.only):
            continue
        if name == "atheris":
            try:
                import atheris  # noqa: F401
            except ImportError:
                summary[name] = {"skipped": "atheris is not installed (pip install atheris)"}
                continue
        started = time.monotonic()
        with open(args.out / f"{name}.txt", "w") as out:
            result = subprocess.run(command, cwd=ROOT, env={**os.environ, **extra_env}, stdout=out, stderr=subprocess.STDOUT)
        summary[name] = {"returncode": result.returncode, "seconds": round(time.monotonic() - started, 1),
                         "command": " ".join(command), "env": extra_env}
        summary_file.write_text(json.dumps(summary, indent=2))
        print(f"{name}: exit {result.returncode} in {summary[name]['seconds']} s", flush=True)
    return 0 if all(step.get("returncode", 0) == 0 for step in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
