"""The commit-latency benchmark runs and reports every figure.

Timings never pass or fail a unit test on a shared machine: this checks that
``benchmarks/commit_latency.py --quick`` works end to end and that its report
holds all the figures, not that the targets hold.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from benchmark_runs import run_quick

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "commit_latency.py"

_NUMBER = r"(\d+(?:\.\d+)?)"
_ROW = re.compile(
    r"^\| (?P<label>[^|]+?) \| (?P<count>[\d,]+) \| "
    + r" \| ".join(f"(?P<{name}>{_NUMBER[1:-1]})" for name in ("median", "p99", "min", "max", "mean"))
    + r" \|$",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], str, Path]:
    return run_quick(SCRIPT, tmp_path_factory.mktemp("bench"), timeout=600)


def test_report_has_every_series_with_consistent_figures(quick_run):
    _, report, _ = quick_run
    rows = {match["label"]: match for match in _ROW.finditer(report)}
    labels = list(rows)
    assert any(label.startswith("bare 2048 B append + fsync") for label in labels), labels
    assert any(label == "coffer of 10 members" for label in labels), labels
    assert any(label.startswith("coffer of 10,000 members") for label in labels), labels
    assert len(rows) == 3, labels
    for label, row in rows.items():
        assert int(row["count"].replace(",", "")) == 300, label
        low, median, p99, high = (float(row[key]) for key in ("min", "median", "p99", "max"))
        assert 0 < low <= median <= p99 <= high, (label, row.group(0))


def test_report_has_ratios_verdicts_and_machine_info(quick_run):
    _, report, _ = quick_run
    for ratio in ("big / small coffer", "small coffer / bare", "big coffer / bare"):
        assert re.search(rf"^\| {re.escape(ratio)} \| {_NUMBER}x \| {_NUMBER}x \|$", report, re.MULTILINE), ratio
    verdicts = re.findall(r"^\| median [^|]+ \| \d+\.\d+x \| < \d\.\dx \| (yes|\*\*no\*\*) \|$", report, re.MULTILINE)
    assert len(verdicts) == 3, report
    assert re.search(r"\*\*Targets: (all hold|MISSED)\*\*", report)
    for key in ("CPU", "OS", "Python", "Libraries", "Type `null`", "Code", "Folder"):
        assert re.search(rf"^- {re.escape(key)}: \S", report, re.MULTILINE), key
    assert "pycoffer-core" in report and "pycoffer-null" in report
    assert "quick run" in report
    # the coffers kept their size: each timed new member was deleted again
    assert "small: 10 → 10 members" in report and "big: 10,000 → 10,000" in report


def test_report_goes_to_stdout_and_temp_files_are_removed(quick_run):
    done, report, work = quick_run
    assert report in done.stdout
    assert sorted(path.name for path in work.iterdir()) == ["report.md"]
