"""The documentation builds cleanly, documents every hook, and its examples run.

- The site builds with Sphinx, warnings as errors, as the README says.
- Every hook spec has its own section in ``docs/hooks.md`` (datasette's
  meta-test), and autodoc rendered its docstring there.
- Every ``python`` code block of every page runs (Sybil), in a fresh folder
  per page, blocks of a page sharing one namespace. A block that can't run
  (old APIs, output) is marked with ``<!-- skip: next -->`` or written as
  another language (``text``, ``sh``, ``toml``).
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pycoffer_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SHIPPED_TYPES = ("bank", "store", "market", "aes", "null")
BUILD_COMMAND = "python -m sphinx -W --keep-going docs docs/_build/html"


def _needs(module: str) -> None:
    """Skip without the docs tools, except in CI, where they must be installed."""
    if os.environ.get("CI"):
        importlib.import_module(module)
    else:
        pytest.importorskip(module, reason="needs the docs build tools (docs/requirements.txt)")


for _module in ("sphinx", "myst_parser", "sybil"):
    _needs(_module)


def hook_names() -> list[str]:
    return sorted(
        name for name, value in vars(hookspecs).items() if hasattr(value, f"{hookspecs.PROJECT}_spec")
    )


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The HTML site, built from scratch with warnings as errors."""
    out = tmp_path_factory.mktemp("docs-html")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         "-d", str(out / ".doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, f"the docs build failed or warned:\n{result.stderr}{result.stdout}"
    return out


def test_the_docs_build_with_warnings_as_errors(built):
    assert (built / "index.html").is_file()


def test_every_hook_has_a_section_in_the_hook_reference():
    headings = re.findall(r"^## `(\w+)`$", (DOCS / "hooks.md").read_text(), re.MULTILINE)
    assert hook_names(), "no hook specs found"
    assert sorted(headings) == hook_names()


def test_every_hook_docstring_is_rendered_in_the_hook_reference(built):
    page = (built / "hooks.html").read_text()
    missing = [name for name in hook_names() if f'id="pycoffer_core.hookspecs.{name}"' not in page]
    assert not missing, f"autodoc rendered no docstring for {missing}"


def test_the_api_reference_renders_the_public_api(built):
    import pycoffer_core

    page = (built / "api.html").read_text()
    for name in pycoffer_core.__all__:
        obj = getattr(pycoffer_core, name)
        target = f"{obj.__module__}.{name}" if obj.__module__ == "pycoffer_core.errors" else f"pycoffer_core.{name}"
        assert f'id="{target}"' in page, f"{name} is missing from the API reference"


def test_every_shipped_type_has_a_section_on_the_choosing_page():
    page = (DOCS / "types.md").read_text()
    for name in SHIPPED_TYPES:
        assert f"\n### {name}\n" in page and f"| `{name}` |" in page, name


def test_the_readme_links_the_docs_and_says_how_to_build_them():
    readme = (ROOT / "README.md").read_text()
    assert "## Documentation" in readme
    assert BUILD_COMMAND in readme
    assert BUILD_COMMAND in (DOCS / "index.md").read_text()


# ---------------------------------------------------------------- examples


def _sybil():
    from sybil import Sybil
    from sybil.parsers.markdown import ClearNamespaceParser, PythonCodeBlockParser, SkipParser

    return Sybil(parsers=[PythonCodeBlockParser(), SkipParser(), ClearNamespaceParser()], path=str(DOCS))


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_python_example_on_the_page_runs(page, tmp_path, monkeypatch):
    from pycoffer_core.keyslots import INSECURE_FAST_ENV

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(INSECURE_FAST_ENV, "1")  # the examples show passphrases, not the KDF's cost
    document = _sybil().parse(page)
    for example in document:
        try:
            example.evaluate()
        except Exception as error:
            pytest.fail(f"{page.relative_to(ROOT)}, line {example.line}: {type(error).__name__}: {error}")
