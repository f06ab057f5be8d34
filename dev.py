#!/usr/bin/env python3
"""Set up a development environment and run the demo or the tests.

    python3 dev.py demo     # a real end-to-end session with a coffer
    python3 dev.py test     # the whole test suite (extra arguments go to pytest)

Needs only Python >= 3.10 with pip and venv. Everything is installed into
``.venv`` beside this file: the core and every plugin under ``plugins/``,
editable, with the test tools. Reinstalls only when a pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".pycoffer-installed"


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _projects() -> list[Path]:
    return [ROOT, *sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))]


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for project in _projects():
        digest.update(str(project).encode())
        digest.update((project / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def setup() -> Path:
    """Create ``.venv`` if needed and install the projects into it."""
    if not _python().exists():
        print(f"dev.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _fingerprint()
    if not STAMP.exists() or STAMP.read_text() != fingerprint:
        print("dev.py: installing pycoffer-core, its plugins and the test tools", flush=True)
        args = [str(_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        args += ["-e", f"{ROOT}[test,crypto]"]
        for project in _projects()[1:]:
            args += ["-e", str(project)]
        subprocess.run(args, check=True)
        STAMP.write_text(fingerprint)
    return _python()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "setup"):
        print(__doc__)
        return 2
    python = setup()
    command, rest = argv[0], argv[1:]
    if command == "setup":
        return 0
    if command == "demo":
        return subprocess.run([str(python), str(ROOT / "examples" / "demo.py"), *rest]).returncode
    return subprocess.run([str(python), "-m", "pytest", *rest], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
