"""A broken plugin is reported and skipped; the others keep working."""

import subprocess
import sys
import textwrap


def test_a_plugin_that_fails_to_import_is_skipped_with_a_warning_naming_it(tmp_path):
    dist = tmp_path / "pycoffer_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pycoffer-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pycoffer]\nbroken = no_such_module_anywhere\n")
    script = textwrap.dedent(
        """
        from pycoffer_core import Coffer, UnknownTypeError
        print(sorted(t.name for t in Coffer.types()))
        try:
            Coffer.open("x.coffer", "w", type="broken")
        except UnknownTypeError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "'null'" in result.stdout.splitlines()[0]
    assert "pycoffer-broken" in result.stderr and "failed to load" in result.stderr
    assert "plugin pycoffer-broken failed to load" in result.stdout
