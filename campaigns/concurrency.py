#!/usr/bin/env python3
"""Concurrency: several processes and threads write and read one coffer.

Writers each run ``--iterations`` read-modify-write transactions: open the
coffer for writing, read ``counter``, write ``counter + 1``, write ``check``
(a digest of the counter) and append one line naming the writer to ``log``,
then close (one commit); every fifth transaction also compacts the file. Readers, in processes and in threads, open and
check, as fast as they can, that what they see is a committed state:
``check`` matches ``counter`` and ``log`` has ``counter`` lines. At the end
``counter`` must equal the number of transactions and ``log`` hold each one
exactly once (no lost update), and every process must have finished within
the time limit (no deadlock). With lock type ``rw`` readers take the lock
too; with ``w`` they read a snapshot beside the writer.

    python campaigns/concurrency.py --types all --lock-types rw,w --writers 4 --iterations 200

Exit status 0 when every check passed; the figures are printed as JSON.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import Coffer  # noqa: E402


def _digest(counter: int) -> bytes:
    return hashlib.sha256(str(counter).encode()).hexdigest().encode()


def transaction(path: Path, type_name: str, keys: dict[str, Any], lock_type: str, label: str) -> None:
    """One commit of three changes; every fifth transaction of a writer also compacts."""
    with Coffer.open(path, "a", type=type_name, auto_flush=False, lock_type=lock_type, lock_timeout=120, **keys) as c:
        counter = int(c.read("counter")) if "counter" in c else 0
        c.write("counter", str(counter + 1).encode())
        c.write("check", _digest(counter + 1))
        c.append("log", f"{label}\n".encode())
        if label.endswith(("0", "5")):
            c.compact()  # readers of lock type w keep reading the file they opened


def observe(path: Path, type_name: str, keys: dict[str, Any], lock_type: str) -> int | None:
    """One reader's look; the counter seen (None before the first commit). Raises on a torn state."""
    if not path.exists():
        return None
    with Coffer.open(path, "r", type=type_name, lock_type=lock_type, lock_timeout=120, **keys) as c:
        if "counter" not in c:
            return None
        counter = int(c.read("counter"))
        check = c.read("check")
        lines = c.read("log").decode().count("\n")
    if check != _digest(counter) or lines != counter:
        raise AssertionError(f"a reader saw a state no commit made: counter {counter}, {lines} log lines")
    return counter


def _keys_arg(keys: dict[str, bytes]) -> str:
    return json.dumps({k: base64.b64encode(v).decode() for k, v in keys.items()})


def _keys_from(arg: str) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in json.loads(arg).items()}


def worker(args: argparse.Namespace) -> int:
    if args.type == harness.AEAD:
        harness.register_aead()
    keys = _keys_from(args.keys)
    path = Path(args.path)
    if args.worker == "writer":
        for i in range(args.iterations):
            transaction(path, args.type, keys, args.lock_type, f"{args.id}:{i}")
        print(json.dumps({"transactions": args.iterations}))
        return 0
    stop = Path(args.stop)
    looks = 0
    highest = -1
    while not stop.exists():
        seen = observe(path, args.type, keys, args.lock_type)
        if seen is not None:
            if seen < highest:
                raise AssertionError(f"a later reader saw an older state ({seen} after {highest})")
            highest = seen
        looks += 1
    print(json.dumps({"looks": looks}))
    return 0


def run(
    type_name: str,
    lock_type: str,
    workdir: Path,
    *,
    writers: int = 3,
    readers: int = 2,
    threads: int = 2,
    iterations: int = 10,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Writers and readers in processes, plus writer and reader threads here; returns the figures."""
    if type_name == harness.AEAD:
        harness.register_aead()
    keys = Coffer.gen_params(type_name)
    path = workdir / f"{type_name}-{lock_type}.coffer"
    stop = workdir / f"{type_name}-{lock_type}.stop"
    base = [sys.executable, __file__, "--type", type_name, "--lock-type", lock_type, "--path", str(path),
            "--keys", _keys_arg(keys), "--stop", str(stop), "--iterations", str(iterations)]
    started = time.monotonic()
    procs = [subprocess.Popen([*base, "--worker", "writer", "--id", f"p{n}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(writers)]
    procs += [subprocess.Popen([*base, "--worker", "reader"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(readers)]
    errors: list[str] = []
    thread_looks = [0]

    def thread_writer(n: int) -> None:
        try:
            for i in range(iterations):
                transaction(path, type_name, keys, lock_type, f"t{n}:{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(f"writer thread {n}: {exc!r}")

    def thread_reader() -> None:
        try:
            while not stop.exists():
                observe(path, type_name, keys, lock_type)
                thread_looks[0] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(f"reader thread: {exc!r}")

    workers = [threading.Thread(target=thread_writer, args=(n,)) for n in range(threads)]
    watchers = [threading.Thread(target=thread_reader) for _ in range(max(1, threads // 2))]
    for t in workers + watchers:
        t.start()
    deadline = started + timeout
    for proc in procs[:writers]:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            errors.append("a writer process did not finish in time: deadlock or starvation")
    for t in workers:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
        if t.is_alive():
            errors.append("a writer thread did not finish in time: deadlock or starvation")
    stop.touch()
    for t in watchers:
        t.join(timeout=30)
    looks = thread_looks[0]
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=max(5.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            errors.append("a process did not stop: deadlock")
        if proc.returncode != 0:
            errors.append(f"process failed ({proc.returncode}): {err[-2000:]}")
        elif out.strip():
            looks += json.loads(out.strip().splitlines()[-1]).get("looks", 0)
    total = (writers + threads) * iterations
    if not errors:
        with Coffer.open(path, "r", type=type_name, lock_type=lock_type, **keys) as c:
            c.verify()
            counter = int(c.read("counter"))
            log = c.read("log").decode().splitlines()
        expected = sorted(f"{w}{n}:{i}" for w, count in (("p", writers), ("t", threads)) for n in range(count) for i in range(iterations))
        if counter != total or sorted(log) != expected:
            errors.append(f"lost or doubled updates: counter {counter}, {len(log)} log lines, {total} transactions")
    return {
        "type": type_name,
        "lock_type": lock_type,
        "writer_processes": writers,
        "writer_threads": threads,
        "reader_processes": readers,
        "transactions": total,
        "reader_looks": looks,
        "seconds": round(time.monotonic() - started, 1),
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--types", default="all")
    parser.add_argument("--lock-types", default="rw,w")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600)
    # worker mode (used by the driver itself)
    parser.add_argument("--worker", choices=["writer", "reader"])
    parser.add_argument("--type")
    parser.add_argument("--lock-type")
    parser.add_argument("--path")
    parser.add_argument("--keys")
    parser.add_argument("--stop")
    parser.add_argument("--id")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    results = []
    with tempfile.TemporaryDirectory(prefix="pycoffer-concurrency-") as tmp:
        for type_name in harness.parse_types(args.types):
            for lock_type in args.lock_types.split(","):
                figures = run(type_name, lock_type, Path(tmp), writers=args.writers, readers=args.readers,
                              threads=args.threads, iterations=args.iterations, timeout=args.timeout)
                print(json.dumps(figures), file=sys.stderr, flush=True)
                results.append(figures)
    ok = all(not r["errors"] for r in results)
    print(json.dumps({"ok": ok, "results": results}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
