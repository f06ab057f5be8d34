"""Running a benchmark script's quick mode from a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_quick(script: Path, work: Path, timeout: float) -> tuple[subprocess.CompletedProcess[str], str, Path]:
    """Run ``script --quick`` with its files and report in ``work``: the process, the report's text, ``work``.

    Fails the calling test if the script fails or writes no report.
    """
    report = work / "report.md"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--dir", str(work), "--output", str(report)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    assert report.exists(), done.stdout
    return done, report.read_text(encoding="utf-8"), work
