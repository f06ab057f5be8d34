"""Each backend distribution works when installed alone.

For every plugin, a fresh virtual environment gets only pycoffer-core, that
plugin and the test tools, installed from wheels built from this checkout
(not editable), and runs the plugin's own tests: a dependency the plugin
forgot to declare can't hide behind a neighbour's. Installing and then
uninstalling pycoffer-bank makes the type appear and disappear.

Kept fast for CI: every wheel is built once into a temporary wheelhouse
(pip's cache makes the downloads cheap), the environments are made without
pip and filled by this interpreter's pip (``pip --python``) with
``--no-index``, and the plugins' suites run side by side.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10: pip then makes one build environment per project
    tomllib = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ("bank", "store", "market", "aes")
TEST_TOOLS = ("pytest", "hypothesis")
#: What building the core needs from the checkout (see the root pyproject.toml).
CORE_FILES = ("pyproject.toml", "README.md", "pycoffer_core")
#: Never copied: build leftovers could slip stale modules into a wheel.
LEFTOVERS = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".hypothesis")


def pip(*args: str | Path, python: Path | None = None) -> None:
    command: list[str | Path] = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    if python is not None:
        command += ["--python", python]
    result = subprocess.run([*command, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"pip {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")


def clean_env() -> dict[str, str]:
    """This process's environment, minus what would leak the checkout or steer the plugins."""
    return {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONPATH" and not key.startswith("PYCOFFER_")
    }


def new_venv(where: Path) -> Path:
    """A new, empty environment (no pip: this interpreter's pip fills it); its python."""
    venv.EnvBuilder(with_pip=False, clear=True).create(where)
    return where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def make_venv(where: Path, wheelhouse: Path, *requirements: str) -> Path:
    """A new environment holding only ``requirements`` (and their dependencies); its python."""
    python = new_venv(where)
    pip("install", "--quiet", "--no-index", "--find-links", wheelhouse, *requirements, python=python)
    return python


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # cwd is outside the checkout, so nothing but the installed wheels is importable.
    return subprocess.run(
        [str(python), *args], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=900
    )


def copy_sources(into: Path) -> list[Path]:
    """Copies of the core's and the plugins' sources, so no build touches the checkout."""
    core = into / "pycoffer-core"
    core.mkdir()
    for name in CORE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, core / name, ignore=LEFTOVERS)
        else:
            shutil.copy2(source, core / name)
    plugins = [
        shutil.copytree(ROOT / "plugins" / f"pycoffer-{name}", into / f"pycoffer-{name}", ignore=LEFTOVERS)
        for name in PLUGINS
    ]
    return [core, *plugins]


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of the core, the four plugins, their dependencies and the test tools."""
    projects = copy_sources(tmp_path_factory.mktemp("sources"))
    house = tmp_path_factory.mktemp("wheelhouse")
    if tomllib is None:
        pip("wheel", "--quiet", "--no-deps", "--wheel-dir", house, *projects)
    else:
        # One shared build environment instead of pip's one per project: a third of the time.
        builder = new_venv(tmp_path_factory.mktemp("builder"))
        requires = {
            requirement
            for project in projects
            for requirement in tomllib.loads((project / "pyproject.toml").read_text())["build-system"]["requires"]
        }
        pip("install", "--quiet", *sorted(requires), python=builder)
        pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", house, *projects, python=builder)
    # Named by file, the local wheels can't be swapped for a same-named project on PyPI.
    pip("wheel", "--quiet", "--wheel-dir", house, *sorted(house.glob("*.whl")), *TEST_TOOLS)
    return house


def run_plugin_tests_alone(name: str, wheelhouse: Path, where: Path) -> dict[str, object]:
    python = make_venv(where / "venv", wheelhouse, f"pycoffer-{name}", *TEST_TOOLS)
    census = run(
        python,
        "-c",
        "import importlib.metadata as m, json, pycoffer_core\n"
        "print(json.dumps({'dists': sorted(d.metadata['name'] for d in m.distributions()"
        " if d.metadata['name'].startswith('pycoffer')), 'core': pycoffer_core.__file__}))",
        cwd=where,
    )
    tests = shutil.copytree(ROOT / "plugins" / f"pycoffer-{name}" / "tests", where / "tests", ignore=LEFTOVERS)
    suite = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib", str(tests), cwd=where)
    return {"census": census, "suite": suite, "venv": where / "venv"}


@pytest.fixture(scope="module")
def plugin_runs(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future]]:
    """Each plugin's suite in its own environment, as many at once as there are CPUs."""
    workers = max(1, min(len(PLUGINS), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield {
            name: pool.submit(run_plugin_tests_alone, name, wheelhouse, tmp_path_factory.mktemp(name))
            for name in PLUGINS
        }


@pytest.mark.parametrize("name", PLUGINS)
def test_a_plugin_installed_alone_with_the_core_passes_its_own_tests(plugin_runs, name):
    outcome = plugin_runs[name].result()
    census = outcome["census"]
    assert census.returncode == 0, census.stderr
    installed = json.loads(census.stdout)
    assert installed["dists"] == sorted(["pycoffer-core", f"pycoffer-{name}"])
    assert Path(installed["core"]).is_relative_to(outcome["venv"]), "the core must come from the wheel"
    suite = outcome["suite"]
    assert suite.returncode == 0, f"{suite.stdout[-6000:]}\n{suite.stderr[-3000:]}"


PROBE = """
import json, os, sys, tempfile
from pycoffer_core import Coffer, InvalidArgumentError, UnknownTypeError
path = os.path.join(tempfile.mkdtemp(), "probe.coffer")
try:
    Coffer.open(path, "w", type="bank")
except UnknownTypeError as exc:
    print(json.dumps({"unknown": str(exc)}))
    sys.exit()
except InvalidArgumentError:
    pass  # the type exists and wants its keys
keys = Coffer.gen_params("bank")
with Coffer.open(path, "w", type="bank", **keys) as coffer:
    coffer.write("a", b"works")
with Coffer.open(path, "r", type="bank", **keys) as coffer:
    print(json.dumps({"read": coffer.read("a").decode()}))
"""


def test_installing_then_uninstalling_pycoffer_bank_adds_then_removes_the_type(wheelhouse, tmp_path):
    python = make_venv(tmp_path / "venv", wheelhouse, "pycoffer-core")

    def probe() -> dict[str, str]:
        result = run(python, "-c", PROBE, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert "pip install pycoffer-bank" in probe()["unknown"]
    pip("install", "--quiet", "--no-index", "--find-links", wheelhouse, "pycoffer-bank", python=python)
    assert probe() == {"read": "works"}
    pip("uninstall", "--quiet", "--yes", "pycoffer-bank", python=python)
    assert "pip install pycoffer-bank" in probe()["unknown"]
