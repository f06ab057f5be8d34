#!/usr/bin/env python3
"""Commit latency: one auto-flushed 2 KiB write, small coffer vs big coffer vs bare fsync.

DESIGN.md promise 3 says the cost of a commit depends on the size of the
change, not on the size of the coffer. This benchmark checks it the way the
core issue asks: it times one auto-flushed ``write()`` of a new 2 KiB member
into a coffer of 10 members and into one of 10,000 members, beside the floor
of any durable commit on the same disk, a bare 2 KiB append + ``fsync`` to a
plain file in the same folder. The three are measured interleaved, round by
round, in one run (the order inside each round is shuffled), so the noise of
a shared machine hits all three alike. Targets:

* the medians of the two coffers differ by less than 1.3x;
* each coffer's median is within 2x of the bare write + fsync.

Each timed write adds a new member, which is then deleted (auto-flushed, not
timed) so that the coffers keep their 10 and 10,000 members for the whole
run. Run it from the repository root::

    .venv/bin/python benchmarks/commit_latency.py            # full run, a few thousand rounds
    .venv/bin/python benchmarks/commit_latency.py --quick    # a few seconds, a smoke test

The report goes to stdout and, for a full run, to
``benchmarks/results/commit_latency.md`` (``--output`` elsewhere; a
``--quick`` run saves only when ``--output`` is given). Timings are never a
pass/fail in the test suite: ``--strict`` makes this script exit 1 when a
target is missed, for whoever wants that.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from pycoffer_core import Coffer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUTPUT = HERE / "results" / "commit_latency.md"

#: Targets from the core issue's "done when".
COFFER_RATIO_TARGET = 1.3
BARE_RATIO_TARGET = 2.0

FULL_ROUNDS, FULL_WARMUP = 5000, 50
QUICK_ROUNDS, QUICK_WARMUP = 300, 10


# ---------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Summary:
    """Latency figures of one series, in nanoseconds."""

    count: int
    median: float
    p99: float
    minimum: int
    maximum: int
    mean: float

    @classmethod
    def of(cls, samples: list[int]) -> Summary:
        ordered = sorted(samples)
        return cls(
            count=len(ordered),
            median=statistics.median(ordered),
            p99=percentile(ordered, 99),
            minimum=ordered[0],
            maximum=ordered[-1],
            mean=statistics.fmean(ordered),
        )


def percentile(ordered: list[int], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])


def ms(ns: float) -> str:
    return f"{ns / 1e6:.3f}"


# ---------------------------------------------------------------- environment


def default_base_dir() -> Path:
    """The system temp dir if it is on the same filesystem as the repository, else the repository."""
    system_tmp = Path(tempfile.gettempdir())
    try:
        if os.stat(system_tmp).st_dev == os.stat(REPO).st_dev:
            return system_tmp
    except OSError:
        pass
    return REPO


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def filesystem_of(path: Path) -> str:
    """Mount point, filesystem type and device holding ``path`` (Linux; else 'unknown')."""
    best: tuple[str, str, str] | None = None
    target = str(path.resolve())
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                device, mount_point, fs_type = fields[0], fields[1], fields[2]
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and (best is None or len(mount_point) > len(best[1])):
                    best = (device, mount_point, fs_type)
    except OSError:
        return "unknown"
    if best is None:
        return "unknown"
    device, mount_point, fs_type = best
    return f"{fs_type} on {device}, mounted at {mount_point}"


def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"


def code_under_test() -> str:
    """Where pycoffer_core was imported from, with its git commit when it is a checkout."""
    import pycoffer_core

    package = Path(pycoffer_core.__file__).resolve().parent

    def git(*command: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(package), *command], capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", str(package)) if commit else ""
    except (OSError, subprocess.SubprocessError):
        commit = changed = ""
    if not commit:
        return f"{package} (not a git checkout)"
    state = "with uncommitted changes in pycoffer_core" if changed else "clean"
    return f"{package}, git commit {commit} ({state})"


def machine_info(coffer_type: str, work_dir: Path) -> list[tuple[str, str]]:
    type_dist = "unknown"
    for info in Coffer.types():
        if info.name == coffer_type:
            type_dist = f"{info.distribution} {info.version}"
    libraries = ", ".join(
        f"{name} {version_of(name)}"
        for name in ("pycoffer-core", "pyzstd", "cryptography", "PyNaCl", "pluggy", "filelock")
    )
    return [
        ("CPU", f"{cpu_model()} ({os.cpu_count()} logical CPUs)"),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"),
        ("Libraries", libraries),
        (f"Type `{coffer_type}`", type_dist),
        ("Code", code_under_test()),
        ("Folder", f"{work_dir} ({filesystem_of(work_dir)})"),
    ]


# ---------------------------------------------------------------- the run


def build_coffer(path: Path, coffer_type: str, params: dict[str, bytes], members: int, size: int) -> Coffer:
    """Fill a coffer quickly (one commit), then reopen it with auto flush on."""
    with Coffer.open(path, "w", type=coffer_type, auto_flush=False, **params) as coffer:
        for number in range(members):
            coffer.write(f"members/{number // 1000:03d}/{number:06d}.bin", os.urandom(size))
    return Coffer.open(path, "a", type=coffer_type, auto_flush=True, **params)


def bare_append(fd: int, payload: bytes) -> tuple[int, int]:
    """One 2 KiB append + fsync: (its duration in ns, bytes appended)."""
    start = time.perf_counter_ns()
    written = os.write(fd, payload)
    os.fsync(fd)
    elapsed = time.perf_counter_ns() - start
    if written != len(payload):
        raise OSError(f"short write: {written} of {len(payload)} bytes")
    return elapsed, written


def coffer_write(coffer: Coffer, name: str, payload: bytes) -> tuple[int, int]:
    """One auto-flushed write of a new member (timed), then its deletion (not timed).

    Returns the write's duration in ns and the bytes its commit added to the
    coffer's records (a write that also writes a full index checkpoint adds
    much more). Measured by the coffer's committed size, not the file's: the
    file runs on in the runway of zeros a writer keeps ahead of its commits.
    The size before is the one this coffer's previous round left, so no
    untimed work on the coffer runs just before the timed write.
    """
    size_before = _committed.get(coffer.name) or coffer.stats()["file_size"]
    start = time.perf_counter_ns()
    coffer.write(name, payload)
    elapsed = time.perf_counter_ns() - start
    appended = coffer.stats()["file_size"] - size_before
    coffer.delete(name)
    _committed[coffer.name] = coffer.stats()["file_size"]
    return elapsed, appended


_committed: dict[str, int] = {}  # coffer file -> its committed size after the last round


def run(args: argparse.Namespace) -> dict:
    params = Coffer.gen_params(args.type)
    base = Path(args.dir).absolute() if args.dir else default_base_dir()
    base.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="pycoffer-bench-", dir=base))
    try:
        build_start = time.perf_counter()
        small = build_coffer(work_dir / "small.coffer", args.type, params, args.small_members, args.member_size)
        big = build_coffer(work_dir / "big.coffer", args.type, params, args.big_members, args.member_size)
        build_seconds = time.perf_counter() - build_start
        stats_before = {"small": small.stats(), "big": big.stats()}
        bare_fd = os.open(work_dir / "bare.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        samples: dict[str, list[int]] = {"bare": [], "small": [], "big": []}
        appended: dict[str, list[int]] = {"bare": [], "small": [], "big": []}
        rng = random.Random(args.seed)
        load_before = load_average()
        try:
            steps = {
                "bare": lambda number, payload: bare_append(bare_fd, payload),
                "small": lambda number, payload: coffer_write(small, f"bench/{number:07d}.bin", payload),
                "big": lambda number, payload: coffer_write(big, f"bench/{number:07d}.bin", payload),
            }
            order = list(steps)
            timed_start = time.perf_counter()
            for number in range(args.warmup + args.rounds):
                rng.shuffle(order)
                for series in order:
                    elapsed, grown = steps[series](number, os.urandom(args.size))
                    if number >= args.warmup:
                        samples[series].append(elapsed)
                        appended[series].append(grown)
            timed_seconds = time.perf_counter() - timed_start
            stats_after = {"small": small.stats(), "big": big.stats()}
        finally:
            os.close(bare_fd)
            small.close()
            big.close()
        load_after = load_average()
        info = machine_info(args.type, work_dir)
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    return {
        "summaries": {series: Summary.of(values) for series, values in samples.items()},
        "samples": samples,
        "appended": appended,
        "stats_before": stats_before,
        "stats_after": stats_after,
        "build_seconds": build_seconds,
        "timed_seconds": timed_seconds,
        "load": (load_before, load_after),
        "machine": info,
        "work_dir": work_dir,
    }


# ---------------------------------------------------------------- the report


def verdicts(summaries: dict[str, Summary]) -> list[tuple[str, float, float, bool]]:
    """(what, measured ratio, target, holds) for each target of the issue."""
    small, big, bare = summaries["small"].median, summaries["big"].median, summaries["bare"].median
    coffers = max(small, big) / min(small, big)
    return [
        ("median big / small coffer (the larger over the smaller)", coffers, COFFER_RATIO_TARGET, coffers < COFFER_RATIO_TARGET),
        ("median small coffer / bare write + fsync", small / bare, BARE_RATIO_TARGET, small / bare < BARE_RATIO_TARGET),
        ("median big coffer / bare write + fsync", big / bare, BARE_RATIO_TARGET, big / bare < BARE_RATIO_TARGET),
    ]


def render(args: argparse.Namespace, result: dict) -> str:
    summaries: dict[str, Summary] = result["summaries"]
    checks = verdicts(summaries)
    all_hold = all(holds for *_, holds in checks)
    before, after = result["stats_before"], result["stats_after"]
    labels = {
        "bare": f"bare {args.size} B append + fsync (plain file)",
        "small": f"coffer of {before['small']['members']:,} members",
        "big": f"coffer of {before['big']['members']:,} members ({before['big']['file_size'] / 1e6:.1f} MB)",
    }
    kind = "quick run (smoke test, figures are rough)" if args.quick else "full run"
    lines = [
        "# Commit latency: one auto-flushed write, small vs big coffer vs bare fsync",
        "",
        f"Generated by `benchmarks/commit_latency.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, "
        f"{kind}: type `{args.type}`, {args.rounds:,} rounds after {args.warmup} warm-up rounds, "
        f"{args.size} B per write.",
        "",
        f"**Targets: {'all hold' if all_hold else 'MISSED'}**",
        "",
        "| target | measured | limit | holds |",
        "|---|---:|---:|:---:|",
    ]
    for what, ratio, limit, holds in checks:
        lines.append(f"| {what} | {ratio:.2f}x | < {limit:.1f}x | {'yes' if holds else '**no**'} |")
    lines += [
        "",
        "Time of one operation, in milliseconds:",
        "",
        "| series | samples | median | p99 | min | max | mean |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for series in ("bare", "small", "big"):
        s = summaries[series]
        lines.append(
            f"| {labels[series]} | {s.count:,} | {ms(s.median)} | {ms(s.p99)} | "
            f"{ms(s.minimum)} | {ms(s.maximum)} | {ms(s.mean)} |"
        )
    bare = summaries["bare"]
    lines += [
        "",
        "Ratios (medians are the targets; p99 for information):",
        "",
        "| ratio | median | p99 |",
        "|---|---:|---:|",
        f"| big / small coffer | {summaries['big'].median / summaries['small'].median:.2f}x | "
        f"{summaries['big'].p99 / summaries['small'].p99:.2f}x |",
        f"| small coffer / bare | {summaries['small'].median / bare.median:.2f}x | "
        f"{summaries['small'].p99 / bare.p99:.2f}x |",
        f"| big coffer / bare | {summaries['big'].median / bare.median:.2f}x | "
        f"{summaries['big'].p99 / bare.p99:.2f}x |",
        "",
        "## Where the slow writes come from",
        "",
        "A commit normally appends the new member's record and a small index delta; every "
        "1,024 commits, or when the deltas outgrow the last full index, it appends a full index "
        "checkpoint instead, whose size grows with the number of members. The slowest writes of "
        "each coffer, with the bytes each added to the coffer's records:",
        "",
        "| series | median bytes appended | writes appending > 64 KiB: count, median time | 5 slowest writes: ms (bytes appended) |",
        "|---|---:|---|---|",
    ]
    for series in ("small", "big"):
        times, grown = result["samples"][series], result["appended"][series]
        large = [elapsed for elapsed, size in zip(times, grown) if size > 64 * 1024]
        large_text = f"{len(large)}, {ms(statistics.median(large))} ms" if large else "0"
        slowest = sorted(zip(times, grown), reverse=True)[:5]
        slowest_text = ", ".join(f"{ms(elapsed)} ({size:,})" for elapsed, size in slowest)
        lines.append(
            f"| {labels[series]} | {statistics.median(grown):,.0f} | {large_text} | {slowest_text} |"
        )
    lines += [
        "",
        "## How it was measured",
        "",
        f"- Both coffers were filled with {args.member_size} B members with auto flush off and one "
        f"commit (build: {result['build_seconds']:.1f} s), then reopened in mode `a` with "
        "`auto_flush=True`.",
        "- Each round runs, in a shuffled order: one `os.write` of "
        f"{args.size} random bytes + `os.fsync` on a plain file opened `O_APPEND`; one "
        "`coffer.write(new_name, data)` into the small coffer; one into the big coffer. Only those "
        "calls are timed (`time.perf_counter_ns`); each new member is then deleted, auto-flushed "
        "and untimed, so the coffers keep their size "
        f"(small: {before['small']['members']:,} → {after['small']['members']:,} members, "
        f"big: {before['big']['members']:,} → {after['big']['members']:,}).",
        "- All three files live in one temporary folder, so the coffers and the bare file share "
        "the disk. The garbage collector stays on, as in real use.",
        f"- Timed phase: {result['timed_seconds']:.1f} s. Load average (1, 5, 15 min) before: "
        f"{result['load'][0]}, after: {result['load'][1]}. The machine is shared: read the ratios, "
        "not the absolute times.",
        "",
        "## Machine",
        "",
    ]
    for key, value in result["machine"]:
        lines.append(f"- {key}: {value}")
    lines.append(f"- Command: `{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`")
    if args.notes and Path(args.notes).exists():
        lines += ["", Path(args.notes).read_text(encoding="utf-8").rstrip()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time one auto-flushed 2 KiB write into a small and a big coffer, beside a bare write + fsync.",
    )
    parser.add_argument("--type", default="null", help="coffer type to measure (default: null); keys come from Coffer.gen_params")
    parser.add_argument("--quick", action="store_true", help=f"a smoke test of a few seconds ({QUICK_ROUNDS} rounds)")
    parser.add_argument("--rounds", type=int, help=f"timed rounds (default {FULL_ROUNDS}, {QUICK_ROUNDS} with --quick)")
    parser.add_argument("--warmup", type=int, help=f"untimed rounds first (default {FULL_WARMUP}, {QUICK_WARMUP} with --quick)")
    parser.add_argument("--size", type=int, default=2048, help="bytes per timed write (default 2048)")
    parser.add_argument("--small-members", type=int, default=10, help="members of the small coffer (default 10)")
    parser.add_argument("--big-members", type=int, default=10_000, help="members of the big coffer (default 10000)")
    parser.add_argument("--member-size", type=int, default=2048, help="bytes per member when filling the coffers (default 2048)")
    parser.add_argument("--dir", help="folder for the temporary files (default: the system temp dir when it is on the repository's filesystem)")
    parser.add_argument("--output", help=f"where to save the report (default: {DEFAULT_OUTPUT.relative_to(REPO)} for a full run; a --quick run saves only with --output)")
    parser.add_argument(
        "--notes",
        default=str(HERE / "results" / "commit_latency_findings.md"),
        help="a Markdown file appended to the report (findings, profiles); default: %(default)s",
    )
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the per-round order shuffle")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else FULL_ROUNDS
    if args.warmup is None:
        args.warmup = QUICK_WARMUP if args.quick else FULL_WARMUP
    for name in ("rounds", "size", "small_members", "big_members"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.member_size < 0:
        parser.error("--warmup and --member-size must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    report = render(args, result)
    print(report, end="")
    output = Path(args.output) if args.output else (None if args.quick else DEFAULT_OUTPUT)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report, encoding="utf-8")
        print(f"\nReport saved to {output}")
    else:
        print("\nQuick run: report not saved (pass --output to save it).")
    if args.keep:
        print(f"Temporary files kept in {result['work_dir']}")
    missed = not all(holds for *_, holds in verdicts(result["summaries"]))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
