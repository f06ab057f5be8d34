"""The installed ``pycoffer`` as a real process: environment, terminal, pipes, signals, locks."""

from __future__ import annotations

import fcntl
import hashlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pycoffer_core import Coffer
from test_cli_support import (  # noqa: F401  (fixture)
    PASSPHRASE,
    plugin_path,
    process_env,
    pycoffer_script,
    run_process,
    spawn,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals and signals")


def assert_one_line_failure(done: subprocess.CompletedProcess[bytes], *fragments: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pycoffer: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def shell(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"], env=env, cwd=cwd, capture_output=True, timeout=60
    )


@pytest.fixture
def aead_env(plugin_path) -> dict[str, str]:
    """The environment of a process with the test types installed and the passphrase set."""
    env = process_env(plugin_path, PYCOFFER_PASSPHRASE=PASSPHRASE)
    env["PATH"] = f"{Path(pycoffer_script()).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def vault(tmp_path, plugin_path, aead_env) -> Path:
    coffer = tmp_path / "vault.coffer"
    done = run_process(plugin_path, "init", coffer, "--type", "test-aead", env=aead_env)
    assert done.returncode == 0, done.stderr
    return coffer


# ------------------------------------------------------------------ environment and pipes


def test_types_finds_a_type_installed_through_its_entry_point(plugin_path):
    done = run_process(plugin_path, "types")
    assert done.returncode == 0
    line = next(line for line in done.stdout.decode().splitlines() if line.startswith("test-aead "))
    assert "pycoffer-cli-test-types" in line and "1.0" in line


def test_a_session_with_the_passphrase_in_the_environment(vault, tmp_path, aead_env):
    data = os.urandom(1 << 20)
    (tmp_path / "data.bin").write_bytes(data)
    steps = [
        "cat data.bin | pycoffer put vault.coffer data.bin",
        "mkdir -p dir/sub && echo hello > dir/sub/a.txt && tar c dir | pycoffer put vault.coffer dir.tar",
        "pycoffer verify vault.coffer",
    ]
    for step in steps:
        done = shell(step, aead_env, tmp_path)
        assert done.returncode == 0, (step, done.stderr)
    done = shell("pycoffer cat vault.coffer data.bin | sha256sum", aead_env, tmp_path)
    assert done.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    done = shell("pycoffer cat vault.coffer dir.tar | tar t", aead_env, tmp_path)
    assert "dir/sub/a.txt" in done.stdout.decode().split()
    assert shell("pycoffer ls vault.coffer", aead_env, tmp_path).stdout.decode().split() == ["data.bin", "dir.tar"]


def test_a_reader_that_goes_away_ends_cat_quietly(vault, tmp_path, aead_env):
    shell("head -c 3000000 /dev/zero | pycoffer put vault.coffer zeros", aead_env, tmp_path)
    done = shell("pycoffer cat vault.coffer zeros | head -c 10 | wc -c", aead_env, tmp_path)
    assert done.stdout.strip() == b"10"
    assert done.returncode == 0, done.stderr  # pipefail: a status of 1 would fail the script
    assert b"Traceback" not in done.stderr and b"Exception" not in done.stderr


@pytest.mark.parametrize(
    "case",
    ["wrong passphrase", "missing coffer", "missing member", "missing source", "unknown type", "escape"],
)
def test_errors_are_one_line_with_status_1(case, vault, tmp_path, plugin_path, aead_env):
    if case == "wrong passphrase":
        env = dict(aead_env, PYCOFFER_PASSPHRASE="wrong")
        assert_one_line_failure(run_process(plugin_path, "ls", vault, env=env), "wrong passphrase")
    elif case == "missing coffer":
        assert_one_line_failure(run_process(plugin_path, "ls", tmp_path / "no.coffer", env=aead_env), "no coffer at")
    elif case == "missing member":
        assert_one_line_failure(run_process(plugin_path, "cat", vault, "nope", env=aead_env), "no member 'nope'")
    elif case == "missing source":
        done = run_process(plugin_path, "add", vault, tmp_path / "nothing", env=aead_env)
        assert_one_line_failure(done, "nothing")
    elif case == "unknown type":
        done = run_process(plugin_path, "init", tmp_path / "x.coffer", "--type", "bankk", env=aead_env)
        assert_one_line_failure(done, "pip install pycoffer-bankk")
    else:
        run_process(plugin_path, "put", vault, "notes/a.txt", input=b"a", env=aead_env)
        out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
        out.mkdir()
        elsewhere.mkdir()
        (out / "notes").symlink_to(elsewhere)
        assert_one_line_failure(run_process(plugin_path, "extract", vault, "-C", out, env=aead_env), "symbolic link")
        assert list(elsewhere.iterdir()) == []


def test_a_locked_coffer_names_the_lock_file(tmp_path, plugin_path):
    coffer = tmp_path / "v.coffer"
    Coffer.open(coffer, "x", type="null").close()
    with Coffer.open(coffer, "a", type="null"):
        done = run_process(plugin_path, "--lock-timeout", "0.2", "put", coffer, "x", input=b"x")
    assert_one_line_failure(done, f"{coffer}.lock", "another process")


def test_debug_prints_a_traceback(tmp_path, plugin_path):
    done = run_process(plugin_path, "--debug", "ls", tmp_path / "none.coffer")
    assert done.returncode == 1
    assert b"Traceback" in done.stderr and b"CofferNotFoundError" in done.stderr


# ------------------------------------------------------------------ a real terminal


def _at_prompt(shown: bytes) -> bool:
    """True once the terminal shows a passphrase prompt waiting for input.

    getpass writes the prompt's last blank only after turning echo off (and
    flushing pending input), so typing before it would be lost.
    """
    last_line = shown.rsplit(b"\n", 1)[-1]
    return last_line.endswith(b": ") and (b"assphrase" in last_line or b"Repeat" in last_line)


def _read_prompt(master: int, deadline: float) -> bytes:
    seen = b""
    while not _at_prompt(seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no prompt on the terminal; saw {seen!r}"
        ready, _, _ = select.select([master], [], [], remaining)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            assert chunk, f"terminal closed before a prompt; saw {seen!r}"
            seen += chunk
    return seen


def on_terminal(plugin_path, *args, answers, stdin_data=None):
    """Run pycoffer with a pseudo-terminal as its controlling terminal and stderr.

    stdout (and stdin, when ``stdin_data`` is given) stay pipes, as in
    ``... | pycoffer put``; each answer is typed after the next prompt.
    Returns (status, stdout, everything shown on the terminal).
    """
    import termios

    master, slave = os.openpty()

    def become_terminal_owner() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [pycoffer_script(), *map(str, args)],
        stdin=subprocess.PIPE if stdin_data is not None else slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=process_env(plugin_path, TERM="dumb"),
        preexec_fn=become_terminal_owner,
        pass_fds=(slave,),
    )
    os.close(slave)
    deadline = time.monotonic() + 30
    shown = b""
    try:
        for answer in answers:
            shown += _read_prompt(master, deadline)
            os.write(master, answer.encode() + b"\n")
        out, _ = process.communicate(input=stdin_data, timeout=30)
        status = process.returncode
        while select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return status, out, shown.decode(errors="replace")


def test_passphrases_are_asked_on_the_terminal_without_echo(tmp_path, plugin_path):
    coffer = tmp_path / "t.coffer"
    status, _, shown = on_terminal(plugin_path, "init", coffer, "--type", "test-aead", answers=["tty phrase"] * 2)
    assert status == 0, shown
    assert "New passphrase" in shown and "Repeat it" in shown
    assert "tty phrase" not in shown
    status, out, shown = on_terminal(
        plugin_path, "put", coffer, "piped.txt", answers=["tty phrase"], stdin_data=b"from the pipe"
    )
    assert status == 0, shown
    assert "Passphrase for" in shown and "tty phrase" not in shown
    status, out, shown = on_terminal(plugin_path, "cat", coffer, "piped.txt", answers=["tty phrase"])
    assert (status, out) == (0, b"from the pipe"), shown


def test_a_wrong_passphrase_on_the_terminal_is_asked_again(tmp_path, plugin_path):
    coffer = tmp_path / "t.coffer"
    on_terminal(plugin_path, "init", coffer, "--type", "test-aead", answers=["right"] * 2)
    status, out, shown = on_terminal(plugin_path, "ls", coffer, answers=["wrong", "right"])
    assert status == 0, shown
    assert "try again" in shown


def test_without_a_terminal_the_passphrase_is_not_read_from_stdin(tmp_path, plugin_path):
    coffer = tmp_path / "t.coffer"
    on_terminal(plugin_path, "init", coffer, "--type", "test-aead", answers=["right"] * 2)
    done = subprocess.run(
        [pycoffer_script(), "put", str(coffer), "x"],
        input=b"right\n",
        capture_output=True,
        env=process_env(plugin_path),
        start_new_session=True,  # no controlling terminal
        timeout=30,
    )
    assert_one_line_failure(done, "PYCOFFER_PASSPHRASE")


def test_progress_is_drawn_when_stderr_is_a_terminal(tmp_path, plugin_path):
    coffer = tmp_path / "p.coffer"
    Coffer.open(coffer, "x", type="null").close()
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(4 << 20))
    master, slave = os.openpty()
    env = process_env(plugin_path, TERM="xterm", CLI_TEST_SLOW_DELAY="0")
    done = subprocess.run(
        [pycoffer_script(), "add", str(coffer), str(big)], stderr=slave, capture_output=False, env=env, timeout=30
    )
    os.close(slave)
    shown = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert done.returncode == 0
    assert b"adding" in shown


# ------------------------------------------------------------------ Ctrl-C


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a test runner may start us with SIGINT ignored


def _interrupt_when(process: subprocess.Popen, ready, what: str, signum: int = signal.SIGINT) -> None:
    deadline = time.monotonic() + 20
    while not ready():
        assert process.poll() is None, f"{what} ended before it could be interrupted"
        assert time.monotonic() < deadline, f"{what} never started"
        time.sleep(0.005)
    process.send_signal(signum)


def test_ctrl_c_during_add_leaves_the_coffer_at_its_last_commit(tmp_path, plugin_path):
    coffer = tmp_path / "slow.coffer"
    assert run_process(plugin_path, "init", coffer, "--type", "test-slow").returncode == 0
    assert run_process(plugin_path, "put", coffer, "kept.txt", input=b"kept").returncode == 0
    before = coffer.read_bytes()
    tree = tmp_path / "tree"
    tree.mkdir()
    # Enough chunks that the add, at 50 ms a chunk, is still running well
    # after the first 400 kB are written, however late this test wakes.
    for number in range(24):
        (tree / f"{number}.bin").write_bytes(os.urandom(300_000))
    process = spawn(plugin_path, "add", coffer, tree, stderr=subprocess.PIPE, preexec_fn=_default_sigint)
    _interrupt_when(process, lambda: coffer.stat().st_size > len(before) + 400_000, "add")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    assert coffer.read_bytes() == before
    listing = run_process(plugin_path, "ls", coffer)
    assert listing.stdout.split() == [b"kept.txt"]
    assert run_process(plugin_path, "verify", coffer).returncode == 0


def _partly_written(folder: Path) -> bool:
    for path in folder.iterdir():
        try:
            if path.stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass
    return False


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"])
def test_ctrl_c_or_kill_during_extract_removes_the_partial_file(tmp_path, plugin_path, signum, status):
    coffer = tmp_path / "slow.coffer"
    env = process_env(plugin_path, CLI_TEST_SLOW_DELAY="0")
    assert run_process(plugin_path, "init", coffer, "--type", "test-slow", env=env).returncode == 0
    big = os.urandom(3 << 20)
    assert run_process(plugin_path, "put", coffer, "big.bin", input=big, env=env).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    process = spawn(plugin_path, "extract", coffer, "-C", out, stderr=subprocess.PIPE, preexec_fn=_default_sigint)
    _interrupt_when(process, lambda: _partly_written(out), "extract", signum)
    _, err = process.communicate(timeout=30)
    assert process.returncode == status, err
    assert list(out.iterdir()) == []


def test_a_command_that_loses_its_stdout_part_way_fails(vault, tmp_path, aead_env):
    """Only a command that just prints ends with status 0 when its reader goes
    away; one that stopped part way through its work must not say it worked."""
    tree = tmp_path / "many"
    tree.mkdir()
    for number in range(300):
        (tree / f"f{number:03}.txt").write_bytes(b"x")
    done = shell("pycoffer add -v vault.coffer many | head -1", aead_env, tmp_path)
    assert done.returncode != 0, done.stderr
    listed = shell("pycoffer ls vault.coffer", aead_env, tmp_path).stdout.decode().split()
    assert not any(name.startswith("many/") for name in listed)  # one commit, rolled back
