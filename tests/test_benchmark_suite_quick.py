"""The benchmark suite runs end to end and its report has every section.

Timings never pass or fail a unit test on a shared machine: this runs
``benchmarks/suite.py --quick`` (tiny sizes, a few seconds) and checks the
shape of the report, not whether the targets hold. The peers (pycoffer
0.1.4, pyzipper) are used if their environment was built by an earlier full
run; the quick mode never builds it, and reports them as skipped otherwise.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from benchmark_runs import run_quick

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "suite.py"
TYPES = ("null", "bank", "store", "market", "aes")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], str, Path]:
    return run_quick(SCRIPT, tmp_path_factory.mktemp("suite"), timeout=900)


def test_report_has_every_section(quick_run):
    _, report, _ = quick_run
    for heading in (
        "# PyCoffer benchmarks",
        "## 1. Secrets",
        "### N = 10",
        "### N = 40",
        "## Limits: the primitives on one core",
        "## 2. Archive",
        "## 3. Open the archive's coffer and read one member",
        "## 4. Open it, rewrite one 4 KiB member, close",
        "## 5. Big member",
        "## What limits it",
        "## Machine",
    ):
        assert heading in report, heading
    assert "quick run" in report
    assert re.search(r"\*\*Targets: \d+ hold, \d+ missed", report)


def test_every_type_and_the_local_peers_are_measured(quick_run):
    _, report, _ = quick_run
    installed = [t for t in TYPES if f"PyCoffer {t} |" in report]
    assert installed, report
    for label in ("bare 2 KiB write + fsync", "SQLite blob table + AES-GCM"):
        assert f"| {label} |" in report, label
    # the targets table has one column per type and a verdict in each cell
    header = next(line for line in report.splitlines() if line.startswith("| workload | target | limit |"))
    columns = header.strip("|").split("|")[3:]
    assert [c.strip() for c in columns] == installed
    rows = [line for line in report.splitlines() if line.startswith(("| secrets |", "| archive |", "| big member |"))]
    assert len(rows) >= 12, rows
    for row in rows:
        assert row.count("✓") + row.count("✗") + row.count("not measured") >= 1, row


def test_peers_are_measured_or_reported_skipped(quick_run):
    _, report, _ = quick_run
    if "pycoffer 0.1.4 and pyzipper not available" in report:
        assert "skipped" in report
    else:
        for label in ("pycoffer 0.1.4 bank", "pycoffer 0.1.4 store", "pyzipper (AES-256 zip, deflate)"):
            assert f"| {label} |" in report, label


def test_machine_section_and_clean_up(quick_run):
    done, report, work = quick_run
    for key in ("CPU", "OS", "Python", "Libraries (ours)", "SQLite", "Types", "Code", "Peers", "Folder"):
        assert re.search(rf"^- {re.escape(key)}: \S", report, re.MULTILINE), key
    assert report in done.stdout
    assert sorted(path.name for path in work.iterdir()) == ["report.md"]


def test_every_primitive_is_measured_on_one_thread_on_two_and_in_two_processes(quick_run):
    _, report, _ = quick_run
    section = report.split("The same primitives on two threads", 1)[1].split("\n\n")[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| primitive")]
    steps = {tuple(cell.strip() for cell in row.strip("|").split("|")[:2]) for row in rows}
    assert steps == {
        ("zstd-3", "sources"), ("zstd-3", "random"), ("NaCl secret box", "random"),
        ("Fernet", "random"), ("HMAC-SHA256", "random"), ("AES-256-CTR", "random"),
    }
    for row in rows:
        assert re.search(r"\| [\d,]+ \| [\d,]+ \| \d+\.\d\dx \| [\d,]+ \| [\d,]+ \| \d+\.\d\dx \|$", row), row
