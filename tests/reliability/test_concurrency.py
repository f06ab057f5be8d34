"""6. Concurrency: processes and threads on one coffer, both lock types; crashed holders; fork.

The bounded runs call ``campaigns/concurrency.py`` with a few transactions;
the campaign runs every type with many more.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import harness
from pycoffer_core import Coffer, LockTimeoutError
from pycoffer_core.memberio import CHUNK_SIZE

from .conftest import CAMPAIGNS

sys.path.insert(0, str(CAMPAIGNS))
import concurrency  # noqa: E402


@pytest.mark.parametrize("lock_type", ["rw", "w"])
def test_writers_and_readers_in_processes_and_threads_lose_no_update_and_see_only_commits(
    tmp_path, lock_type, aead_type
):
    for type_name in ("null", aead_type):
        figures = concurrency.run(type_name, lock_type, tmp_path, writers=3, readers=2, threads=2, iterations=6, timeout=120)
        assert figures["errors"] == [], figures
        assert figures["reader_looks"] > 0


def _child(script: str, type_name: str, keys: dict) -> subprocess.Popen:
    preamble = harness.CHILD_SETUP + f"\nfrom pycoffer_core import Coffer\nTYPE = {type_name!r}\nkeys = {keys!r}\n"
    return subprocess.Popen([sys.executable, "-c", preamble + textwrap.dedent(script)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("lock_type", ["rw", "w"])
def test_a_holder_killed_with_the_lock_does_not_block_the_next_opener(tmp_path, type_name, lock_type):
    keys = Coffer.gen_params(type_name)
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type=type_name, **keys) as coffer:
        coffer.write("a", b"1")
    child = _child(
        f"""
        import time
        c = Coffer.open({str(path)!r}, "a", type=TYPE, lock_type={lock_type!r}, auto_flush=False, **keys)
        c.write("b", b"2" * 100_000)   # pending, never committed
        print("holding", flush=True)
        time.sleep(60)
        """,
        type_name,
        keys,
    )
    try:
        assert child.stdout.readline().strip() == "holding", child.stderr.read()
        with pytest.raises(LockTimeoutError):
            Coffer.open(path, "a", type=type_name, lock_type=lock_type, lock_timeout=0.05, **keys)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    started = time.monotonic()
    with Coffer.open(path, "a", type=type_name, lock_type=lock_type, lock_timeout=5, **keys) as coffer:
        waited = time.monotonic() - started
        coffer.verify()
        assert harness.read_state(coffer) == {"a": b"1"}
    assert waited < 4.0  # lock_timeout is 5 s: a lock still held would raise instead


# REL-5 (found by the tests below, fixed in 92b6411): the chunk-sealing thread pool
# (memberio.worker_pool) survives fork() without its threads: a forked child
# (multiprocessing's default on Linux) that writes a member of a chunk or more waits forever


def test_a_forked_child_can_write_a_large_member_after_its_parent_did(tmp_path):
    keys = Coffer.gen_params("null")
    with Coffer.open(tmp_path / "parent.coffer", "w", type="null", **keys) as coffer:
        coffer.write("big", harness.pattern(4 * CHUNK_SIZE, 1))  # the parent's pool now has threads
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            with Coffer.open(tmp_path / "child.coffer", "w", type="null", **keys) as coffer:
                coffer.write("big", harness.pattern(4 * CHUNK_SIZE, 2))
        finally:
            os._exit(0)
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child is still blocked after 6 s")
    assert harness.snapshot(tmp_path / "child.coffer", "null") == {"big": harness.pattern(4 * CHUNK_SIZE, 2)}
