"""1. Crash consistency: a writer killed with SIGKILL at random moments loses no acknowledged commit.

Runs ``campaigns/crash.py`` (the long campaign's own code) in a fresh
interpreter for a few kills per type; ``docs/reliability.md`` has the figures
of the long run (``python campaigns/crash.py --kills 500 --types all``).
"""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import CAMPAIGNS

KILLS = 6


def test_a_writer_killed_at_random_moments_loses_no_acknowledged_commit(type_name, tmp_path):
    result = subprocess.run(
        [sys.executable, str(CAMPAIGNS / "crash.py"), "--kills", str(KILLS), "--types", type_name,
         "--seed", "20261126", "--max-delay", "0.15", "--workdir", str(tmp_path),
         "--early-sync-bytes", "65536"],  # every large write of the campaign starts an early sync
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (figures,) = json.loads(result.stdout)["results"]
    assert figures["kills"] == KILLS
    assert figures["acknowledged_ops"] > 0
