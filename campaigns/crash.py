#!/usr/bin/env python3
"""Crash consistency: kill -9 a writer at random moments, check nothing acknowledged is lost.

A child process opens the coffer with auto flush on and loops over writes,
appends, deletes, renames, compactions and (for types with keys) passphrase
changes. Before each operation it appends ``B <n> <op...>`` to a side log,
after the call returns ``D <n>``: a ``D`` line is an acknowledged commit. The
parent kills the child with SIGKILL after a random delay (counted from the
fork, or every other time from the child's first acknowledged op), reopens
the coffer (read-only first, with the lock, so a dead holder's lock must not block it),
verifies it and compares every member with a model rebuilt from the side log:
the coffer must hold exactly the acknowledged operations, plus perhaps the
one in flight. Then a new child carries on from there.

Children are forked from this process, which never writes a coffer itself
(so the campaign does not depend on the fix of REL-5, a pool lost in a fork).

    python campaigns/crash.py --kills 500 --types all        # the long run
    python campaigns/crash.py --kills 5 --types null,store   # a quick look
    python campaigns/crash.py --kills 120 --early-sync-bytes 65536   # early syncs in every large write

Exit status 0 when every check passed; the summary is printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import Coffer, CofferError  # noqa: E402

NAMES = [f"m{i}" for i in range(8)] + [f"dir/sub/n{i}" for i in range(4)]
BIG = 300_000  # more than one chunk (256 KiB): kills land between chunk records
MAX_MEMBER = 1 << 20


def password(n: int) -> str:
    return f"crash-passphrase-{n}"


# ---------------------------------------------------------------- the model


@dataclass
class Model:
    members: dict[str, bytes] = field(default_factory=dict)
    pw: int = 0

    def copy(self) -> Model:
        return Model(dict(self.members), self.pw)

    def apply(self, op: list[str]) -> None:
        kind, n = op[0], int(op[1])
        if kind == "write":
            self.members[op[2]] = harness.pattern(int(op[3]), n)
        elif kind == "append":
            self.members[op[2]] = self.members.get(op[2], b"") + harness.pattern(int(op[3]), n)
        elif kind == "delete":
            del self.members[op[2]]
        elif kind == "rename":
            self.members[op[3]] = self.members.pop(op[2])
        elif kind == "passwd":
            self.pw += 1
        elif kind != "compact":
            raise ValueError(f"unknown op {op!r}")


class SideLog:
    """The side log, read incrementally: the acknowledged model and the op in flight.

    Lines: ``B <n> <op> <args>`` before op ``n``, ``D <n>`` once it returned; the parent
    adds ``R1 <n>`` / ``R0 <n>`` when it finds, after a kill, that the op in flight was
    applied or not.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.model = Model()
        self.begun: dict[int, list[str]] = {}
        self.inflight: list[str] | None = None
        self.next_n = 0
        self.acknowledged = 0
        self.counts: dict[str, int] = {}

    def refresh(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.decode().split("\n"):
            if not line:
                continue
            parts = line.split(" ")
            n = int(parts[1])
            if parts[0] == "B":
                op = [parts[2], parts[1], *parts[3:]]
                self.begun[n] = op
                self.inflight = op
                self.next_n = max(self.next_n, n + 1)
            elif parts[0] in ("D", "R1"):
                op = self.begun.pop(n)
                self.model.apply(op)
                self.acknowledged += 1
                self.counts[op[0]] = self.counts.get(op[0], 0) + 1
                self.inflight = None
            elif parts[0] == "R0":
                self.begun.pop(n)
                self.inflight = None

    def resolve(self, applied: bool) -> None:
        assert self.inflight is not None
        with open(self.path, "a") as out:
            out.write(f"{'R1' if applied else 'R0'} {self.inflight[1]}\n")
        self.refresh()


# ---------------------------------------------------------------- the child


def child_loop(path: Path, side: Path, type_name: str, start: int, model: Model, seed: int, ready: int) -> None:
    """Run ops until killed; write a byte to the pipe ``ready`` once the first op is acknowledged."""
    rng = random.Random(seed * 1_000_003 + start)
    keys: dict[str, Any] = {"password": password(model.pw)} if harness.has_keys(type_name) else {}
    fd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sizes = {name: len(data) for name, data in model.members.items()}
    pw = model.pw
    with Coffer.open(path, "a", type=type_name, auto_flush=True, lock_timeout=30, **keys) as coffer:
        n = start
        while True:
            roll = rng.random()
            existing = sorted(sizes)
            size = BIG if rng.random() < 0.08 else rng.choice([0, 1, 100, 3000, 9000])
            if roll < 0.35 or not existing:
                op = ["write", str(n), rng.choice(NAMES), str(size)]
            elif roll < 0.6:
                name = rng.choice(existing)
                if sizes[name] + size > MAX_MEMBER:
                    op = ["write", str(n), name, str(size)]
                else:
                    op = ["append", str(n), name, str(size)]
            elif roll < 0.78:
                op = ["delete", str(n), rng.choice(existing)]
            elif roll < 0.86:
                free = [name for name in NAMES if name not in sizes]
                op = ["rename", str(n), rng.choice(existing), rng.choice(free or NAMES)]
                if op[2] == op[3]:
                    op = ["compact", str(n)]
            elif roll < 0.95 or not keys:
                op = ["compact", str(n)]
            else:
                op = ["passwd", str(n)]
            os.write(fd, ("B " + " ".join(op[1:2] + op[0:1] + op[2:]) + "\n").encode())
            kind = op[0]
            if kind == "write":
                coffer.write(op[2], harness.pattern(int(op[3]), n))
                sizes[op[2]] = int(op[3])
            elif kind == "append":
                coffer.append(op[2], harness.pattern(int(op[3]), n))
                sizes[op[2]] = sizes.get(op[2], 0) + int(op[3])
            elif kind == "delete":
                coffer.delete(op[2])
                del sizes[op[2]]
            elif kind == "rename":
                coffer.rename(op[2], op[3], replace=True)
                sizes[op[3]] = sizes.pop(op[2])
            elif kind == "compact":
                coffer.compact()
            elif kind == "passwd":
                coffer.change_password(password(pw), password(pw + 1))
                pw += 1
            os.write(fd, f"D {n}\n".encode())
            if n == start:
                os.write(ready, b"1")
            n += 1


# ---------------------------------------------------------------- the parent


class CrashFailure(AssertionError):
    pass


def _open_state(
    path: Path, type_name: str, pw_candidates: list[int], figures: dict[str, Any]
) -> tuple[dict[str, bytes], int]:
    """Open as a reader would, verify, read everything; return the state and the passphrase used."""
    last: Exception | None = None
    for pw in pw_candidates:
        keys = {"password": password(pw)} if harness.has_keys(type_name) else {}
        try:
            # Mode r with the default lock: a killed holder's lock must be free at once.
            with Coffer.open(path, "r", type=type_name, lock_timeout=5, **keys) as coffer:
                state = harness.read_state(coffer)
                try:
                    coffer.verify()
                except CofferError as exc:
                    if "key-slot area differ" not in str(exc):
                        raise
                    slots_differ = True
                else:
                    slots_differ = False
            if slots_differ:
                # A passphrase change was cut between its two key-slot copies: verify()
                # in mode r reports it; opening for writing must repair it.
                figures["slot_copies_left_differing"] += 1
                with Coffer.open(path, "a", type=type_name, lock_timeout=5, **keys) as coffer:
                    coffer.verify()
                    if harness.read_state(coffer) != state:
                        raise CrashFailure("the repairing writer sees other members than the reader")
            return state, pw
        except CofferError as exc:
            last = exc
            if not harness.has_keys(type_name):
                break
    raise CrashFailure(f"coffer does not reopen after a kill: {last!r}")


def run_type(
    type_name: str,
    kills: int,
    workdir: Path,
    *,
    seed: int = 0,
    max_delay: float = 0.25,
    log: Any = None,
) -> dict[str, Any]:
    """``kills`` rounds of fork, run, SIGKILL, check for one type; returns the figures."""
    harness.fast_kdf()
    if type_name == harness.AEAD:
        harness.register_aead()
    path = workdir / f"{type_name}.coffer"
    side = workdir / f"{type_name}.side"
    errors = workdir / f"{type_name}.child-errors"
    rng = random.Random(seed)
    figures = {"type": type_name, "kills": 0, "acknowledged_ops": 0, "in_flight_applied": 0,
               "in_flight_not_applied": 0, "kills_before_first_commit": 0, "slot_copies_left_differing": 0,
               "op_counts": {}}
    log_state = SideLog(side)
    log_state.refresh()
    started = time.monotonic()
    for round_ in range(kills):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: loop until killed
            try:
                os.close(ready_r)
                child_loop(path, side, type_name, log_state.next_n, log_state.model, seed, ready_w)
            except BaseException:
                with open(errors, "a") as out:
                    out.write(traceback.format_exc())
            finally:
                os._exit(3)
        os.close(ready_w)
        if round_ % 2:
            # Every other kill counts from the child's first acknowledged op, so that a
            # loaded machine, slow to start children, still sees commits being killed.
            select.select([ready_r], [], [], 30)
        time.sleep(rng.uniform(0, max_delay))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(ready_r)
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            detail = errors.read_text() if errors.exists() else "no traceback"
            raise CrashFailure(f"{type_name}: the child stopped by itself before the kill:\n{detail}")
        figures["kills"] += 1
        log_state.refresh()
        expected, inflight = log_state.model, log_state.inflight
        candidates = [expected]
        if inflight is not None:
            after = expected.copy()
            after.apply(inflight)
            candidates.append(after)
        if not path.exists():
            if log_state.acknowledged:
                raise CrashFailure(f"{type_name}: coffer missing after {log_state.acknowledged} acknowledged ops")
            figures["kills_before_first_commit"] += 1
            if inflight is not None:
                log_state.resolve(False)
            continue
        pws = sorted({c.pw for c in candidates})
        state, pw = _open_state(path, type_name, pws, figures)
        matches = [c for c in candidates if c.members == state and c.pw == pw]
        if not matches:
            missing = sorted(set(expected.members) - set(state))
            extra = sorted(set(state) - set(expected.members))
            differ = sorted(n for n in state if n in expected.members and state[n] != expected.members[n])
            raise CrashFailure(
                f"{type_name}, kill {round_}: the reopened coffer is not the acknowledged state "
                f"(nor that plus the op in flight {inflight}): missing {missing}, extra {extra}, "
                f"differing {differ}"
            )
        if inflight is not None:
            applied = matches[0] is candidates[1] or len(matches) == 2
            figures["in_flight_applied" if applied else "in_flight_not_applied"] += 1
            log_state.resolve(applied)
        if log and (round_ + 1) % 50 == 0:
            log(f"{type_name}: {round_ + 1}/{kills} kills, {log_state.acknowledged} acknowledged ops")
    figures["acknowledged_ops"] = log_state.acknowledged
    figures["op_counts"] = log_state.counts
    figures["seconds"] = round(time.monotonic() - started, 1)
    figures["final_file_bytes"] = path.stat().st_size if path.exists() else 0
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=500, help="kills per type (default 500)")
    parser.add_argument("--types", default="all", help="all, installed, or a comma-separated list")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--max-delay", type=float, default=0.25, help="longest run before a kill, seconds")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the coffers and side logs here")
    parser.add_argument(
        "--early-sync-bytes", type=int, default=None,
        help="start a bulk write's early sync after this many bytes (default: the library's 4 MiB); "
        "65536 makes every large write of the campaign start one",
    )
    args = parser.parse_args(argv)
    if args.early_sync_bytes is not None:
        from pycoffer_core.container import log as container_log

        container_log.EARLY_SYNC_BYTES = args.early_sync_bytes  # the children are forked: they inherit it
    results = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="pycoffer-crash-") as tmp:
        base = args.workdir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        for type_name in harness.parse_types(args.types):
            workdir = base / type_name
            workdir.mkdir(exist_ok=True)
            try:
                figures = run_type(
                    type_name, args.kills, workdir, seed=args.seed, max_delay=args.max_delay,
                    log=lambda message: print(message, file=sys.stderr, flush=True),
                )
            except CrashFailure as exc:
                ok = False
                figures = {"type": type_name, "failure": str(exc)}
            results.append(figures)
            print(json.dumps(figures), file=sys.stderr, flush=True)
    print(json.dumps({"seed": args.seed, "kills_per_type": args.kills, "ok": ok, "results": results}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
