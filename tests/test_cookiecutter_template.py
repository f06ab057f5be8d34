"""The cookiecutter template makes a third-party coffer type that works.

Generate -> install -> test, as pytest-dev/cookiecutter-pytest-plugin does:
a project is baked, installed with the local core into a fresh venv, its own
tests run there, and the type is opened from outside the project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
import venv
from pathlib import Path

import pytest

if os.environ.get("CI"):  # CI must run it: a missing cookiecutter fails there
    import cookiecutter.main as cookiecutter_main
else:
    cookiecutter_main = pytest.importorskip("cookiecutter.main", reason="needs cookiecutter (the test extra)")

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "cookiecutter-template"


def bake(tmp_path: Path, **answers: str) -> Path:
    """Generate a project without prompting; cookiecutter's state stays in ``tmp_path``."""
    config = tmp_path / "cookiecutter-config.json"  # JSON is valid YAML
    config.write_text(json.dumps({
        "cookiecutters_dir": str(tmp_path / "cookiecutters"),
        "replay_dir": str(tmp_path / "replay"),
    }))
    out = tmp_path / "out"
    project = cookiecutter_main.cookiecutter(
        str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(out), config_file=str(config)
    )
    return Path(project)


def clean_env() -> dict[str, str]:
    """The environment minus what would leak the dev venv into a child process."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYCOFFER_NO_ENTRY_POINTS"}
    return {k: v for k, v in os.environ.items() if k not in drop}


# ---------------------------------------------------------------- generation


def test_a_baked_project_has_the_shape_of_an_in_repo_plugin(tmp_path):
    project = bake(tmp_path, type_name="acme-vault", author="Ada", description="For acme vaults")
    assert project.name == "pycoffer-acme-vault"
    for file in ("pyproject.toml", "README.md", ".gitignore", "pycoffer_acme_vault/__init__.py",
                 "pycoffer_acme_vault/layers.py", "pycoffer_acme_vault/py.typed", "tests/test_acme_vault.py"):
        assert (project / file).is_file(), file
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["name"] == "pycoffer-acme-vault"
    assert meta["description"] == "For acme vaults"
    assert meta["authors"] == [{"name": "Ada"}]
    assert meta["entry-points"]["pycoffer"] == {"acme-vault": "pycoffer_acme_vault"}
    assert any(dep.startswith("pycoffer-core") for dep in meta["dependencies"])


def test_the_module_marks_where_the_transforms_go_and_the_tests_use_the_conformance_suite(tmp_path):
    project = bake(tmp_path, type_name="acme")
    module = (project / "pycoffer_acme/__init__.py").read_text()
    assert "YOUR TRANSFORMS GO HERE" in module
    assert "def container_layer" in module and "def member_layer" in module
    assert "EncryptedCofferConformance" in (project / "tests/test_acme.py").read_text()


def test_answers_with_quotes_and_backslashes_stay_valid_toml_and_python(tmp_path):
    tricky = 'Say "hi" \\ it\'s {fine}'
    project = bake(tmp_path, type_name="quoted", author=tricky, description=tricky)
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["description"] == tricky and meta["authors"] == [{"name": tricky}]
    compile((project / "pycoffer_quoted/__init__.py").read_text(), "__init__.py", "exec")


def test_cookiecutter_asks_four_questions_and_derives_the_distribution_name(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "-o", str(tmp_path), str(TEMPLATE)],
        input="acme\n\nAda Lovelace\nFor acme things\n", capture_output=True, text=True,
        env={**clean_env(), "HOME": str(tmp_path)},  # cookiecutter keeps its replay in ~
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "[4/4]" in result.stdout and "[5/" not in result.stdout
    meta = tomllib.loads((tmp_path / "pycoffer-acme/pyproject.toml").read_text())["project"]
    assert (meta["name"], meta["authors"], meta["description"]) == (
        "pycoffer-acme", [{"name": "Ada Lovelace"}], "For acme things"
    )


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"type_name": "Acme"}, "type_name 'Acme' is not a valid coffer type name"),
        ({"type_name": "my type"}, "is not a valid coffer type name"),
        ({"type_name": "acme-"}, "is not a valid coffer type name"),
        ({"type_name": "bank"}, "already the type of pycoffer-bank"),
        ({"type_name": "acme", "distribution_name": "-acme"}, "not a valid distribution name"),
        ({"type_name": "acme", "distribution_name": "PyCoffer_Core"}, "belongs to the PyCoffer project"),
        ({"type_name": "acme", "distribution_name": "2fa-coffer"}, "not a Python identifier"),
        ({"type_name": "acme", "distribution_name": "json"}, "shadow the standard library"),
        ({"type_name": "acme", "author": " "}, "author must not be empty"),
        ({"type_name": "acme", "description": "two\nlines"}, "description must be one line"),
    ],
)
def test_invalid_answers_are_refused_with_a_clear_message_and_nothing_is_generated(
    tmp_path, capfd, answers, message
):
    from cookiecutter.exceptions import FailedHookException

    with pytest.raises(FailedHookException):
        bake(tmp_path, **answers)
    assert message in capfd.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- generate -> install -> test

TYPE = "acme-vault"


def _pip_install(python: Path, *args: str) -> None:
    """Install into the venv of ``python`` with this interpreter's pip (no pip in the venv)."""
    command = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
               "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=clean_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """A baked project installed with the local core into a fresh venv: (project, python)."""
    import pip

    if tuple(int(part) for part in pip.__version__.split(".")[:2]) < (22, 3):
        pytest.skip("needs pip >= 22.3 (pip --python) in the test environment")
    tmp = tmp_path_factory.mktemp("template")
    project = bake(tmp, type_name=TYPE, author="Ada", description="For acme vaults")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # The local core and the project in one resolution, so pip never looks
    # for pycoffer-core on an index.
    _pip_install(python, str(ROOT), f"{project}[test]")
    return project, python


def test_the_generated_project_passes_its_own_tests(installed):
    project, python = installed
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q"], cwd=project,
        capture_output=True, text=True, env=clean_env(), timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_the_installed_type_opens_from_outside_the_project(installed, tmp_path):
    _, python = installed
    script = textwrap.dedent(
        f"""
        from pycoffer_core import Coffer
        import pycoffer_acme_vault

        keys = Coffer.gen_params({TYPE!r})
        with Coffer.open("vault.coffer", "w", type={TYPE!r}, **keys) as coffer:
            coffer.write("secret.txt", b"CANARY-only-in-the-coffer")
        with Coffer.open("vault.coffer", "r", type={TYPE!r}, **keys) as coffer:
            assert coffer.read("secret.txt") == b"CANARY-only-in-the-coffer"
        assert b"CANARY" not in open("vault.coffer", "rb").read()
        print(Coffer.type_of("vault.coffer"))
        print(",".join(info.name for info in Coffer.types()))
        print(pycoffer_acme_vault.__file__)
        """
    )
    result = subprocess.run(
        [str(python), "-c", script], cwd=tmp_path, capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    type_of, types, module_file = result.stdout.split()
    assert type_of == TYPE
    assert types == TYPE  # only the core and this plugin are installed there
    assert Path(module_file).is_relative_to(python.parent.parent)  # the installed copy, not the source
