"""Shared helpers of the CLI tests (no tests here).

In-process runs go through click's ``CliRunner``, which sees exactly what a
user sees because the group itself turns errors into one line. Real
subprocesses run the installed ``pycoffer`` console script; the test types
reach them through a real entry point, from a throwaway ``.dist-info`` put
on ``PYTHONPATH``:

- ``test-aead`` (``tests/aead_type.py``): keys, AES-GCM on both layers;
- ``test-slow``: no keys, sleeps on every member chunk, so a test can
  interrupt an ``add`` or ``extract`` half-way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pycoffer_core.cli import cli, passphrases
from pycoffer_core.keyslots import INSECURE_FAST_ENV

TESTS = Path(__file__).resolve().parent
PASSPHRASE = "correct horse battery staple"

#: Every variable the CLI reads, cleared so a developer's shell can't leak in.
CLI_ENV = ("PYCOFFER_PASSPHRASE", "PYCOFFER_NEW_PASSPHRASE", "PYCOFFER_KEY_FILE", "PYCOFFER_DEBUG")


def run(*args: object, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Result:
    """``pycoffer ARGS`` in-process; environment variables of the CLI start unset."""
    full_env: dict[str, str | None] = dict.fromkeys(CLI_ENV)
    full_env[INSECURE_FAST_ENV] = "1"
    full_env.update(env or {})
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, env=full_env)


def with_passphrase(passphrase: str = PASSPHRASE, **extra: str) -> dict[str, str]:
    return {"PYCOFFER_PASSPHRASE": passphrase, **extra}


def assert_one_line_error(result: Result, *fragments: str, code: int = 1) -> None:
    """Exit ``code``, no traceback, one ``pycoffer:`` line on stderr naming each fragment."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pycoffer: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend a terminal is there to ask on; CliRunner feeds the answers from ``input``."""
    monkeypatch.setattr(passphrases, "can_prompt", lambda: True)


@pytest.fixture
def null_coffer(tmp_path: Path) -> Path:
    """A null coffer holding ``notes/todo.txt``, ``notes/ideas.md`` and ``readme.txt``."""
    source = tmp_path / "src" / "notes"
    source.mkdir(parents=True)
    (source / "todo.txt").write_bytes(b"buy milk\n")
    (source / "ideas.md").write_bytes(b"# ideas\n" * 100)
    (tmp_path / "src" / "readme.txt").write_bytes(b"read me\n")
    coffer = tmp_path / "vault.coffer"
    assert run("init", coffer, "--type", "null").exit_code == 0
    result = run("add", coffer, source, tmp_path / "src" / "readme.txt")
    assert result.exit_code == 0, result.stderr
    return coffer


@pytest.fixture
def aead_coffer(tmp_path: Path, aead_type: str) -> Path:
    """An encrypted coffer (type test-aead) opened by :data:`PASSPHRASE`, holding ``a.txt``."""
    coffer = tmp_path / "secret.coffer"
    result = run("init", coffer, "--type", aead_type, env=with_passphrase())
    assert result.exit_code == 0, result.stderr
    assert run("put", coffer, "a.txt", input=b"alpha\n", env=with_passphrase()).exit_code == 0
    return coffer


# ------------------------------------------------------------------ subprocesses

_PLUGIN = textwrap.dedent(
    '''
    """Test types for the CLI subprocess tests, loaded through a real entry point."""
    import os
    import time

    from aead_type import AeadPlugin
    from pycoffer_core import CofferType, Layer, PlainLayer, hookimpl

    DELAY = float(os.environ.get("CLI_TEST_SLOW_DELAY", "0.05"))


    class SlowLayer(Layer):
        def seal(self, data, context, *, compressible=True):
            time.sleep(DELAY)
            return bytes(data)

        def open(self, data, context):
            time.sleep(DELAY)
            return bytes(data)


    class SlowType(CofferType):
        name = "test-slow"
        description = "sleeps on every chunk (CLI tests only)"

        def container_layer(self):
            return PlainLayer()

        def member_layer(self):
            return SlowLayer()


    class SlowPlugin:
        @hookimpl
        def pycoffer_types(self):
            return [SlowType]


    aead = AeadPlugin()
    slow = SlowPlugin()
    '''
)


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ``PYTHONPATH`` under which the test types are installed plugins."""
    site = tmp_path_factory.mktemp("cli-site")
    (site / "pycoffer_cli_test_types.py").write_text(_PLUGIN)
    info = site / "pycoffer_cli_test_types-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pycoffer-cli-test-types\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[pycoffer]\naead = pycoffer_cli_test_types:aead\nslow = pycoffer_cli_test_types:slow\n"
    )
    return os.pathsep.join([str(site), str(TESTS)])


def pycoffer_script() -> str:
    """The installed console script, beside the running interpreter."""
    script = Path(sys.executable).parent / "pycoffer"
    found = str(script) if script.exists() else shutil.which("pycoffer")
    if found is None:
        pytest.fail("the pycoffer console script is not installed (run: python3 dev.py setup)")
    return found


def process_env(plugin_path: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLI_ENV}
    env.update({"PYTHONPATH": plugin_path, INSECURE_FAST_ENV: "1", "COLUMNS": "200"})
    env.update(extra)
    return env


def spawn(plugin_path: str, *args: object, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen:
    """Start ``pycoffer ARGS`` as a real process with the test types installed."""
    return subprocess.Popen(
        [pycoffer_script(), *map(str, args)],
        env=env or process_env(plugin_path),
        **kwargs,  # type: ignore[call-overload]
    )


def run_process(
    plugin_path: str, *args: object, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [pycoffer_script(), *map(str, args)],
        input=input,
        capture_output=True,
        env=env or process_env(plugin_path),
        timeout=60,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
