"""The README's demo command runs its end-to-end session and says it matched."""

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_the_demo_stores_lists_reads_extracts_and_verifies():
    result = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "sample/notes/todo.txt: ['buy milk', 'call the bank']" in result.stdout
    assert "restored tree matches the source: True" in result.stdout
