#!/usr/bin/env python3
"""The benchmark suite: PyCoffer beside the library it replaces, what a user
would build instead, and the limits of its primitives and of the disk.

Run it from the repository root, with the dev venv (``python3 dev.py setup``)::

    .venv/bin/python benchmarks/suite.py            # full run (~15 min): writes BENCHMARK.md
    .venv/bin/python benchmarks/suite.py --quick    # smoke test of a few seconds

Peers, measured in the same run and interleaved with PyCoffer:

* ``pycoffer==0.1.4`` (types bank, store, market, null) and ``pyzipper``
  (AES-256 zip), in a virtual environment the suite builds under
  ``~/.cache/pycoffer-bench/`` (never a dependency of this project);
* an encrypted blob table in SQLite (stdlib ``sqlite3``, WAL,
  ``synchronous=FULL``, AES-GCM from ``cryptography``, one transaction per
  write);
* the limits: each type's primitives called directly on the same bytes on
  one core, and a bare 2 KiB write + fsync on the same disk.

Every library runs in a worker process (``suite_driver.py``) that times its
own calls, so the pipe never counts. Within a workload, every repeat runs
every series once, in a shuffled order: the noise of a shared machine hits
all of them alike, and only ratios taken inside one run are compared. See
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from commit_latency import code_under_test, cpu_model, filesystem_of, load_average, version_of
from pycoffer_core import Coffer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DRIVER = HERE / "suite_driver.py"
DEFAULT_OUTPUT = REPO / "BENCHMARK.md"
PEERS_HOME = Path(os.environ.get("PYCOFFER_BENCH_HOME", Path.home() / ".cache" / "pycoffer-bench"))
#: The peers' environment: the upstream library as its users install it (its
#: undeclared ``cofferfile`` added by hand) and pyzipper. Pinned, so reruns compare.
PEER_PACKAGES = (
    "pycoffer==0.1.4",
    "cofferfile==0.0.10",
    "naclfile==0.0.6",
    "aesfile==0.0.6",
    "fernetfile==0.1.7",
    "pyzipper==0.4.0",
)
OUR_TYPES = ("null", "bank", "store", "market", "aes")
UPSTREAM_TYPES = ("bank", "store", "market", "null")
TEXT_PACKAGES = ("email", "json", "asyncio", "concurrent", "xml")
READ_MEMBER = "tree/text/json/__init__.py"
UPDATE_MEMBER = "tree/text/json/tool.py"
MiB = 1 << 20
CHUNK = 256 * 1024  # PyCoffer's chunk size, as suite_driver.CHUNK

# Targets, from the issue.
SECRETS_BARE = 2.0
SECRETS_DRIFT = 1.3
SECRETS_UPSTREAM = 50.0
OPEN_UPSTREAM = 1000.0
FLOOR = 1.3
PARALLEL = 1.5
RSS_MB = 100.0


@dataclass
class Plan:
    """Sizes and repeats of one run."""

    secrets_n: tuple[int, ...]
    secrets_cap: float  # seconds of writes after which a slow peer is stopped
    random_files: int
    random_size: int
    text_packages: tuple[str, ...]
    archive_rounds: int
    open_rounds: int
    open_repeats_fast: int
    big_size: int
    bulk_text_size: int
    big_rounds: int
    big_cap: float
    upstream_big_types: tuple[str, ...]
    scaling_chunks: int  # 256 KiB chunks per primitive in the two-thread measurement
    scaling_repeats: int


FULL = Plan(
    secrets_n=(200, 2000, 10_000),
    secrets_cap=30.0,
    random_files=4,
    random_size=5 * MiB,
    text_packages=TEXT_PACKAGES,
    archive_rounds=3,
    open_rounds=5,
    open_repeats_fast=10,
    big_size=1 << 30,
    bulk_text_size=64 * MiB,
    big_rounds=2,
    big_cap=120.0,
    upstream_big_types=("bank", "store"),
    scaling_chunks=64,
    scaling_repeats=5,
)
QUICK = Plan(
    secrets_n=(10, 20, 40),
    secrets_cap=0.5,
    random_files=4,
    random_size=64 * 1024,
    text_packages=("json",),
    archive_rounds=1,
    open_rounds=1,
    open_repeats_fast=3,
    big_size=4 * MiB,
    bulk_text_size=2 * MiB,
    big_rounds=1,
    big_cap=10.0,
    upstream_big_types=("bank",),
    scaling_chunks=4,
    scaling_repeats=1,
)


# ---------------------------------------------------------------- statistics


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])


@dataclass
class Stat:
    count: int
    median: float
    p99: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, samples: list[float]) -> Stat | None:
        if not samples:
            return None
        ordered = sorted(samples)
        return cls(len(ordered), statistics.median(ordered), percentile(ordered, 99), ordered[0], ordered[-1])


def fmt_ms(ns: float | None) -> str:
    return "–" if ns is None else f"{ns / 1e6:,.3f}"


def fmt_s(ns: float | None) -> str:
    return "–" if ns is None else f"{ns / 1e9:,.3f}"


def fmt_x(ratio: float | None) -> str:
    if ratio is None:
        return "–"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    return f"{ratio:.2f}x"


def spread(stat: Stat | None, unit=fmt_ms) -> str:
    return "–" if stat is None else f"{unit(stat.minimum)}–{unit(stat.maximum)}"


# ---------------------------------------------------------------- workers


class Driver:
    """A worker process running ``suite_driver.py`` under some interpreter."""

    def __init__(self, python: str | Path, label: str, env: dict[str, str] | None = None) -> None:
        self.label = label
        self.python = str(python)
        self.proc = subprocess.Popen(
            [self.python, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=str(REPO),
        )
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)

    def call(self, timeout: float | None = None, **request) -> dict | None:
        """The answer, or None if ``timeout`` passed first (the worker is then killed)."""
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        if timeout is not None and not self.selector.select(timeout):
            self.kill()
            return None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.label} worker died during {request['op']}")
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise RuntimeError(f"{self.label}: {request['op']} failed: {answer['error']}\n{answer['trace']}")
        return answer

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()


def peer_python(build: bool, notes: list[str]) -> Path | None:
    """The peers' interpreter, building its venv if asked; None (with a note) if unavailable."""
    venv = PEERS_HOME / "venv-0.1.4"
    python = venv / "bin" / "python"
    stamp = venv / ".packages"
    wanted = "\n".join(PEER_PACKAGES)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not build:
        notes.append(
            f"pycoffer 0.1.4 and pyzipper: skipped, their environment ({venv}) is not built; a full "
            "run (or `--build-peers`) builds it from PyPI."
        )
        return None
    print(f"suite: building the peers' environment in {venv}", file=sys.stderr, flush=True)
    try:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PEER_PACKAGES],
            check=True,
        )
        stamp.write_text(wanted)
    except (OSError, subprocess.CalledProcessError) as exc:
        notes.append(f"pycoffer 0.1.4 and pyzipper: skipped, their environment could not be built ({exc}).")
        return None
    return python


# ---------------------------------------------------------------- series


@dataclass
class Series:
    key: str  # backend spec for the driver: ours:bank, upstream:bank, pyzipper, sqlite, bare
    label: str
    driver: Driver
    params: dict[str, str] = field(default_factory=dict)
    capped: bool = False

    @property
    def ours(self) -> bool:
        return self.key.startswith("ours:")


def label_of(key: str) -> str:
    kind, _, type_name = key.partition(":")
    return {
        "ours": f"PyCoffer {type_name}",
        "upstream": f"pycoffer 0.1.4 {type_name}",
        "pyzipper": "pyzipper (AES-256 zip, deflate)",
        "sqlite": "SQLite blob table + AES-GCM",
        "bare": "bare 2 KiB write + fsync",
    }[kind]


def order_key(key: str) -> tuple[int, int]:
    """Ours first (in OUR_TYPES order), then pyzipper, SQLite, pycoffer 0.1.4."""
    kind, _, type_name = key.partition(":")
    rank = {"bare": 0, "ours": 1, "sqlite": 2, "pyzipper": 3, "upstream": 4}[kind]
    types = OUR_TYPES if kind == "ours" else UPSTREAM_TYPES
    return rank, types.index(type_name) if type_name in types else 0


def make_series(key: str, driver: Driver, capped: bool = False) -> Series:
    params = driver.call(op="gen_params", backend=key)["params"]
    return Series(key, label_of(key), driver, params, capped)


# ---------------------------------------------------------------- workload 1: secrets


def run_secrets(plan: Plan, work: Path, all_series: list[Series], rng: random.Random) -> dict:
    results: dict[int, dict[str, dict]] = {}
    stopped: dict[str, tuple[int, int]] = {}  # key -> (N, writes done) where it hit the cap
    for n in plan.secrets_n:
        folder = work / f"secrets-{n}"
        folder.mkdir()
        active: list[tuple[Series, str]] = []
        per: dict[str, dict] = {}
        for series in all_series:
            if series.key in stopped:
                at_n, done = stopped[series.key]
                per[series.key] = {"skipped": f"not run: stopped at N = {at_n:,} after {done:,} writes"}
                continue
            path = folder / series.key.replace(":", "-")
            handle = series.driver.call(op="secrets_open", backend=series.key, path=str(path), params=series.params)
            active.append((series, handle["handle"]))
            per[series.key] = {"samples": [], "total": 0, "stopped": None, "path": path}
        print(f"suite: secrets N={n:,}: {len(active)} series", file=sys.stderr, flush=True)
        started = time.perf_counter()
        for number in range(n):
            rng.shuffle(active)
            for series, handle in list(active):
                answer = series.driver.call(
                    op="secrets_write", backend=series.key, handle=handle, name=f"secrets/{number:06d}", size=2048
                )
                entry = per[series.key]
                entry["samples"].append(answer["ns"])
                entry["total"] += answer["ns"]
                if series.capped and entry["total"] > plan.secrets_cap * 1e9:
                    entry["stopped"] = number + 1
                    stopped[series.key] = (n, number + 1)
                    series.driver.call(op="secrets_close", backend=series.key, handle=handle)
                    active.remove((series, handle))
        for series, handle in active:
            series.driver.call(op="secrets_close", backend=series.key, handle=handle)
        for key, entry in per.items():
            if "samples" not in entry:
                continue
            samples = entry["samples"]
            tenth = max(1, len(samples) // 10)
            entry["stat"] = Stat.of(samples)
            entry["first"] = statistics.median(samples[:tenth])
            entry["last"] = statistics.median(samples[-tenth:])
            entry["drift"] = entry["last"] / entry["first"]
            entry["file_size"] = sum(
                p.stat().st_size for p in folder.glob(f"{entry['path'].name}*") if p.is_file()
            )
            del entry["samples"], entry["path"]
        entry_seconds = time.perf_counter() - started
        results[n] = {"series": per, "seconds": entry_seconds}
        shutil.rmtree(folder, ignore_errors=True)
    return results


# ---------------------------------------------------------------- the tree


def build_tree(plan: Plan, work: Path) -> tuple[Path, list[Path], list[Path]]:
    """work/tree/text/<package> (stdlib sources, no bytecode) and work/tree/random/*.bin."""
    root = work / "tree"
    stdlib = Path(json.__file__).resolve().parent.parent
    for package in plan.text_packages:
        shutil.copytree(stdlib / package, root / "text" / package, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "random").mkdir(parents=True)
    for number in range(plan.random_files):
        (root / "random" / f"random-{number}.bin").write_bytes(os.urandom(plan.random_size))
    files = sorted(p for p in root.rglob("*") if p.is_file())
    text = [p for p in files if "text" in p.relative_to(root).parts[:1]]
    rand = [p for p in files if p not in text]
    return root, text, rand


def tree_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def primitive_costs(driver: Driver, types: list[str], files: list[Path]) -> dict:
    return driver.call(op="primitives", types=types, files=[str(p) for p in files])["result"]


def sum_costs(costs: dict, kind: str) -> int:
    return sum(costs[kind].values())


# ---------------------------------------------------------------- workloads 2-4: archive


def run_archive(plan, work, ours_driver, series_list, types, rng, tree, text_files, random_files):
    coffers = work / "archives"
    coffers.mkdir()
    out = work / "extracted"
    runs: dict[str, dict[str, list]] = {s.key: {"add": [], "extract": [], "size": [], "add_cpu": [], "extract_cpu": []} for s in series_list}
    text_runs: dict[str, dict[str, list]] = {s.key: {"add": [], "add_cpu": []} for s in series_list if s.ours}
    prims: list[dict] = []
    disk: dict[str, list[int]] = {}
    kept: dict[str, Path] = {}
    for number in range(plan.archive_rounds):
        print(f"suite: archive round {number + 1}/{plan.archive_rounds}", file=sys.stderr, flush=True)
        steps = [("series", s) for s in series_list] + [("primitives", None)]
        rng.shuffle(steps)
        for kind, series in steps:
            if kind == "primitives":
                prims.append({
                    "text": primitive_costs(ours_driver, types, text_files),
                    "random": primitive_costs(ours_driver, types, random_files),
                })
                continue
            path = coffers / f"{series.key.replace(':', '-')}-{number}.coffer"
            added = series.driver.call(
                op="add_tree", backend=series.key, path=str(path), params=series.params, args=[str(tree), "tree"]
            )
            dest = out / series.key.replace(":", "-")
            extracted = series.driver.call(
                op="extract_all", backend=series.key, path=str(path), params=series.params, args=[str(dest)]
            )
            runs[series.key]["add"].append(added["ns"])
            runs[series.key]["add_cpu"].append(added["cpu_ns"])
            runs[series.key]["extract"].append(extracted["ns"])
            runs[series.key]["extract_cpu"].append(extracted["cpu_ns"])
            runs[series.key]["size"].append(added["size"])
            shutil.rmtree(dest, ignore_errors=True)
            if series.key in kept:
                kept[series.key].unlink(missing_ok=True)
            kept[series.key] = path
            if series.ours:
                # the compressible part alone: does it use both cores?
                text_path = coffers / f"text-{series.key.replace(':', '-')}.coffer"
                text_added = series.driver.call(
                    op="add_tree", backend=series.key, path=str(text_path), params=series.params,
                    args=[str(tree / "text"), "text"],
                )
                text_runs[series.key]["add"].append(text_added["ns"])
                text_runs[series.key]["add_cpu"].append(text_added["cpu_ns"])
                text_runs[series.key].setdefault("write", []).append(
                    ours_driver.call(op="disk_write", path=str(coffers / "floor.bin"), size=text_added["size"])["ns"]
                )
                text_path.unlink(missing_ok=True)
                # the disk's floor for this add: the same number of bytes, written and synced
                disk.setdefault(series.key, []).append(
                    ours_driver.call(op="disk_write", path=str(coffers / "floor.bin"), size=added["size"])["ns"]
                )
                # and for this extract: the same files written, right after it, in the same state of the page cache
                disk.setdefault(f"{series.key}:copy", []).append(
                    ours_driver.call(op="copy_tree", src=str(tree), dest=str(out / "floor"))["ns"]
                )
                shutil.rmtree(out / "floor", ignore_errors=True)
    return {"runs": runs, "text_runs": text_runs, "prims": prims, "disk": disk, "kept": kept}


def run_open_update(plan, series_list, kept, rng) -> dict:
    reads: dict[str, list[int]] = {s.key: [] for s in series_list if s.key in kept}
    updates: dict[str, list[int]] = {s.key: [] for s in series_list if s.key in kept}
    for number in range(plan.open_rounds):
        print(f"suite: open/update round {number + 1}/{plan.open_rounds}", file=sys.stderr, flush=True)
        steps = [(op, s) for s in series_list if s.key in kept for op in ("read", "update")]
        rng.shuffle(steps)
        for op, series in steps:
            repeats = plan.open_repeats_fast if series.key.startswith(("ours:",)) or (
                op == "read" and series.key == "pyzipper"
            ) else 1
            for _ in range(repeats):
                if op == "read":
                    answer = series.driver.call(
                        op="read_one", backend=series.key, path=str(kept[series.key]), params=series.params,
                        args=[READ_MEMBER],
                    )
                    reads[series.key].append(answer["ns"])
                else:
                    answer = series.driver.call(
                        op="update_one", backend=series.key, path=str(kept[series.key]), params=series.params,
                        member=UPDATE_MEMBER, size=4096,
                    )
                    updates[series.key].append(answer["ns"])
    return {"read": reads, "update": updates}


# ---------------------------------------------------------------- workload 5: big member


def build_big(plan: Plan, work: Path, text_files: list[Path]) -> tuple[Path, Path]:
    """A file of ``big_size`` bytes: 1 MiB blocks, text (stdlib sources) and random in turn;
    and a wholly compressible one of ``bulk_text_size`` bytes."""
    corpus = b"".join(p.read_bytes() for p in text_files)
    while len(corpus) < 4 * MiB:
        corpus += corpus
    folder = work / "big"
    folder.mkdir()
    big = folder / "big.bin"
    with open(big, "wb") as out:
        written, block, offset = 0, 0, 0
        while written < plan.big_size:
            size = min(MiB, plan.big_size - written)
            if block % 2:
                data = os.urandom(size)
            else:
                if offset + size > len(corpus):
                    offset = 0
                data = corpus[offset : offset + size]
                offset += size
            out.write(data)
            written += size
            block += 1
    bulk = folder / "bulk-text.bin"
    with open(bulk, "wb") as out:
        written = 0
        while written < plan.bulk_text_size:
            size = min(len(corpus), plan.bulk_text_size - written)
            out.write(corpus[:size])
            written += size
    return big, bulk


def fresh_op(python, key, cap, env, **request) -> dict:
    """One operation in a fresh worker: its time and the worker's peak RSS (before and after)."""
    driver = Driver(python, key, env)
    try:
        driver.call(op="gen_params", backend=key)  # imports the library
        base = driver.call(op="peak_rss")["kib"]
        answer = driver.call(timeout=cap, backend=key, **request)
        if answer is None:
            return {"stopped": cap}
        answer["rss_kib"] = driver.call(op="peak_rss")["kib"]
        answer["rss_base_kib"] = base
        return answer
    finally:
        driver.close()


def run_big(plan, work, ours_driver, series_list, types, rng, big, bulk, env) -> dict:
    runs: dict[str, dict[str, list]] = {}
    prims: list[dict] = []
    disk: dict[str, list[int]] = {}
    bulk_runs: dict[str, list[dict]] = {}
    folder = big.parent
    for number in range(plan.big_rounds):
        print(f"suite: big member round {number + 1}/{plan.big_rounds}", file=sys.stderr, flush=True)
        steps = [("series", s) for s in series_list
                 if s.ours or s.key == "pyzipper" or (number == 0 and s.key.split(":")[-1] in plan.upstream_big_types)]
        steps += [("primitives", None)]
        rng.shuffle(steps)
        for kind, series in steps:
            if kind == "primitives":
                prims.append({
                    "big": primitive_costs(ours_driver, types, [big]),
                    "bulk": primitive_costs(ours_driver, types, [bulk]),
                })
                continue
            entry = runs.setdefault(series.key, {"add": [], "extract": []})
            path = folder / f"{series.key.replace(':', '-')}.coffer"
            dest = folder / "out"
            python = series.driver.python
            added = fresh_op(python, series.key, plan.big_cap, env, op="add_file", path=str(path),
                             params=series.params, args=[str(big), "big.bin"])
            entry["add"].append(added)
            if "stopped" not in added:
                extracted = fresh_op(python, series.key, plan.big_cap, env, op="extract_one", path=str(path),
                                     params=series.params, args=["big.bin", str(dest)])
                entry["extract"].append(extracted)
                if series.ours:
                    disk.setdefault(series.key, []).append(
                        ours_driver.call(op="disk_write", path=str(folder / "floor.bin"), size=added["size"])["ns"]
                    )
                    # the extract's floor, right after it, in the same state of the page cache
                    disk.setdefault(f"{series.key}:plain", []).append(
                        ours_driver.call(op="disk_write", path=str(folder / "floor.bin"), size=plan.big_size)["ns"]
                    )
            shutil.rmtree(dest, ignore_errors=True)
            path.unlink(missing_ok=True)
            for leftover in folder.glob(f".{path.name}*"):
                leftover.unlink(missing_ok=True)
            if series.ours:
                bulk_path = folder / f"bulk-{series.key.replace(':', '-')}.coffer"
                answer = series.driver.call(op="add_file", backend=series.key, path=str(bulk_path),
                                            params=series.params, args=[str(bulk), "bulk.bin"])
                answer["write_ns"] = ours_driver.call(op="disk_write", path=str(folder / "floor.bin"),
                                                      size=answer["size"])["ns"]
                bulk_runs.setdefault(series.key, []).append(answer)
                bulk_path.unlink(missing_ok=True)
    return {"runs": runs, "prims": prims, "disk": disk, "bulk": bulk_runs}


# ---------------------------------------------------------------- verdicts


@dataclass
class Check:
    group: str
    what: str
    limit: str
    cells: dict[str, tuple[float | None, bool | None, str]]  # type -> (value, holds, text)


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def analyse(plan: Plan, types: list[str], data: dict) -> dict:
    """Every derived figure, and the checks."""
    derived: dict = {}
    checks: list[Check] = []

    # secrets
    secrets = data["secrets"]
    ns = plan.secrets_n
    per_type_bare, per_type_sql, drift, vs_up = {}, {}, {}, {}
    for t in types:
        key = f"ours:{t}"
        ratios_bare, ratios_sql = [], []
        for n in ns:
            series = secrets[n]["series"]
            mine = series[key]["stat"].median
            ratios_bare.append(mine / series["bare"]["stat"].median)
            if "sqlite" in series and series["sqlite"].get("stat"):
                ratios_sql.append(mine / series["sqlite"]["stat"].median)
        worst_bare = max(ratios_bare)
        per_type_bare[t] = (worst_bare, worst_bare <= SECRETS_BARE, f"{fmt_x(worst_bare)}")
        if ratios_sql:
            worst_sql = max(ratios_sql)
            per_type_sql[t] = (worst_sql, worst_sql <= 1.0, fmt_x(worst_sql))
        d = secrets[ns[-1]]["series"][key]["drift"]
        drift[t] = (d, d <= SECRETS_DRIFT, fmt_x(d))
        up = secrets[ns[0]]["series"].get("upstream:bank")
        if up and up.get("stat"):
            r = up["stat"].median / secrets[ns[0]]["series"][key]["stat"].median
            vs_up[t] = (r, r >= SECRETS_UPSTREAM, fmt_x(r))
        else:
            vs_up[t] = (None, None, "not measured")
    checks += [
        Check("secrets", "per-write median / bare write + fsync (worst N)", f"≤ {SECRETS_BARE:.0f}x", per_type_bare),
        Check("secrets", "per-write median / SQLite peer (worst N)", "≤ 1.00x", per_type_sql),
        Check("secrets", f"last 10% / first 10% of writes, N = {ns[-1]:,}", f"≤ {SECRETS_DRIFT}x", drift),
        Check("secrets", f"pycoffer 0.1.4 bank / ours, per-write median, N = {ns[0]:,}", f"≥ {SECRETS_UPSTREAM:.0f}x", vs_up),
    ]

    # open + read one, update one
    for op, title in (("read", "open + read one member"), ("update", "open + rewrite one 4 KiB member + close")):
        samples = data["open_update"][op]
        stats = {key: Stat.of(values) for key, values in samples.items()}
        derived[op] = stats
        vs_up_cells, vs_zip_cells = {}, {}
        for t in types:
            mine = stats.get(f"ours:{t}")
            ups = [stats[k].median for k in ("upstream:bank", "upstream:store") if stats.get(k)]
            if mine and ups:
                r = min(ups) / mine.median
                vs_up_cells[t] = (r, r >= OPEN_UPSTREAM, fmt_x(r))
            else:
                vs_up_cells[t] = (None, None, "not measured")
            z = stats.get("pyzipper")
            if mine and z:
                r = mine.median / z.median
                vs_zip_cells[t] = (r, r <= 1.0, fmt_x(r))
            else:
                vs_zip_cells[t] = (None, None, "not measured")
        checks += [
            Check(title, "pycoffer 0.1.4 bank and store / ours (the smaller), median", f"≥ {OPEN_UPSTREAM:,.0f}x", vs_up_cells),
            Check(title, "ours / pyzipper" + (" (a full rewrite: a zip can't replace a member)" if op == "update" else ""),
                  "≤ 1.00x", vs_zip_cells),
        ]

    # archive
    archive = data["archive"]
    arch: dict = {"add": {}, "extract": {}, "size": {}, "floors": {}, "prims": {}, "text": {}}
    for key, run in archive["runs"].items():
        arch["add"][key] = Stat.of(run["add"])
        arch["extract"][key] = Stat.of(run["extract"])
        arch["size"][key] = med(run["size"])
        arch.setdefault("cpu", {})[key] = (
            med([c / w for c, w in zip(run["add_cpu"], run["add"])]),
            med([c / w for c, w in zip(run["extract_cpu"], run["extract"])]),
        )
    floor_add, floor_extract, parallel = {}, {}, {}
    for t in types:
        key = f"ours:{t}"
        seal = med([sum_costs(p["text"][t], "seal") + sum_costs(p["random"][t], "seal") for p in archive["prims"]])
        opened = med([sum_costs(p["text"][t], "open") + sum_costs(p["random"][t], "open") for p in archive["prims"]])
        write = med(archive["disk"].get(key, []))
        copy = med(archive["disk"].get(f"{key}:copy", []))
        arch["floors"][t] = {"seal": seal, "open": opened, "write": write, "copy": copy}
        arch["prims"][t] = archive["prims"]
        a = arch["add"][key].median / (seal + write)
        e = arch["extract"][key].median / (opened + copy)
        floor_add[t] = (a, a <= FLOOR, fmt_x(a))
        floor_extract[t] = (e, e <= FLOOR, fmt_x(e))
        text_seal = med([sum_costs(p["text"][t], "seal") for p in archive["prims"]])
        text_write = med(archive["text_runs"][key]["write"])
        text_add = med(archive["text_runs"][key]["add"])
        text_cpu = med([c / w for c, w in zip(archive["text_runs"][key]["add_cpu"], archive["text_runs"][key]["add"])])
        r = (text_seal + text_write) / text_add
        arch["text"][t] = {"seal": text_seal, "write": text_write, "add": text_add, "cpu": text_cpu}
        parallel[t] = (r, r >= PARALLEL, f"{fmt_x(r)} (CPU/wall {text_cpu:.2f})")
    zip_add = arch["add"].get("pyzipper")
    zip_extract = arch["extract"].get("pyzipper")
    vs_zip = {}
    for t in types:
        key = f"ours:{t}"
        if zip_add and zip_extract:
            ra = arch["add"][key].median / zip_add.median
            re_ = arch["extract"][key].median / zip_extract.median
            worst = max(ra, re_)
            vs_zip[t] = (worst, worst <= 1.0, f"{fmt_x(ra)} / {fmt_x(re_)}")
        else:
            vs_zip[t] = (None, None, "not measured")
    derived["archive"] = arch
    checks += [
        Check("archive", "add / (primitives on one core + writing as many bytes + fsync)", f"≤ {FLOOR}x", floor_add),
        Check("archive", "extract / (primitives on one core + writing the plain files)", f"≤ {FLOOR}x", floor_extract),
        Check("archive", "ours / pyzipper, add / extract", "≤ 1.00x", vs_zip),
        Check("archive", "compressible part (stdlib sources): one thread's floor (primitives + write + fsync) / our add",
              f"≥ {PARALLEL}x", parallel),
    ]

    # big member
    bigd = data["big"]
    big: dict = {"add": {}, "extract": {}, "rss": {}, "floors": {}, "stopped": {}, "bulk": {}}
    for key, run in bigd["runs"].items():
        adds = [r for r in run["add"] if "ns" in r]
        exts = [r for r in run["extract"] if "ns" in r]
        big["add"][key] = Stat.of([r["ns"] for r in adds])
        big["extract"][key] = Stat.of([r["ns"] for r in exts])
        big["stopped"][key] = [r["stopped"] for r in run["add"] + run["extract"] if "stopped" in r]
        rss = [r["rss_kib"] for r in adds + exts]
        base = [r["rss_base_kib"] for r in adds + exts]
        big["rss"][key] = (max(rss) / 1024 if rss else None, min(base) / 1024 if base else None)
        big.setdefault("size", {})[key] = med([r["size"] for r in adds])
        big.setdefault("cpu", {})[key] = (
            med([r["cpu_ns"] / r["ns"] for r in adds]), med([r["cpu_ns"] / r["ns"] for r in exts])
        )
    b_add, b_ext, b_zip, b_rss, b_par = {}, {}, {}, {}, {}
    for t in types:
        key = f"ours:{t}"
        seal = med([sum_costs(p["big"][t], "seal") for p in bigd["prims"]])
        opened = med([sum_costs(p["big"][t], "open") for p in bigd["prims"]])
        write = med(bigd["disk"].get(key, []))
        plain = med(bigd["disk"].get(f"{key}:plain", []))
        big["floors"][t] = {"seal": seal, "open": opened, "write": write, "plain": plain}
        add_s, ext_s = big["add"].get(key), big["extract"].get(key)
        if add_s and write is not None:
            r = add_s.median / (seal + write)
            b_add[t] = (r, r <= FLOOR, fmt_x(r))
        else:
            b_add[t] = (None, False, "stopped")
        if ext_s:
            r = ext_s.median / (opened + plain)
            b_ext[t] = (r, r <= FLOOR, fmt_x(r))
        else:
            b_ext[t] = (None, False, "stopped")
        z_add, z_ext = big["add"].get("pyzipper"), big["extract"].get("pyzipper")
        if add_s and ext_s and z_add and z_ext:
            ra, re_ = add_s.median / z_add.median, ext_s.median / z_ext.median
            b_zip[t] = (max(ra, re_), max(ra, re_) <= 1.0, f"{fmt_x(ra)} / {fmt_x(re_)}")
        else:
            b_zip[t] = (None, None, "not measured")
        peak = big["rss"].get(key, (None, None))[0]
        b_rss[t] = (peak, peak is not None and peak <= RSS_MB, "–" if peak is None else f"{peak:,.0f} MB")
        bulk_seal = med([sum_costs(p["bulk"][t], "seal") for p in bigd["prims"]])
        bulk_write = med([r["write_ns"] for r in bigd["bulk"].get(key, [])])
        bulk_add = med([r["ns"] for r in bigd["bulk"].get(key, [])])
        bulk_cpu = med([r["cpu_ns"] / r["ns"] for r in bigd["bulk"].get(key, [])])
        r = (bulk_seal + bulk_write) / bulk_add
        big["bulk"][t] = {"seal": bulk_seal, "write": bulk_write, "add": bulk_add, "cpu": bulk_cpu}
        b_par[t] = (r, r >= PARALLEL, f"{fmt_x(r)} (CPU/wall {bulk_cpu:.2f})")
    derived["big"] = big
    size_text = f"{plan.big_size / MiB:,.0f} MiB"
    checks += [
        Check("big member", f"add {size_text} / (primitives on one core + writing as many bytes + fsync)", f"≤ {FLOOR}x", b_add),
        Check("big member", f"extract {size_text} / (primitives on one core + writing {size_text})", f"≤ {FLOOR}x", b_ext),
        Check("big member", "ours / pyzipper, add / extract", "≤ 1.00x", b_zip),
        Check("big member", "peak RSS of the worker, add or extract", f"≤ {RSS_MB:.0f} MB", b_rss),
        Check("big member", f"compressible member ({plan.bulk_text_size / MiB:,.0f} MiB of sources): one thread's floor / our add",
              f"≥ {PARALLEL}x", b_par),
    ]
    derived["checks"] = checks
    return derived


# ---------------------------------------------------------------- report


def two_core_table(intro: str, types: list[str], adds: dict) -> list[str]:
    """One add per type beside one thread's floor (primitives + write + fsync): do both cores work?"""
    lines = [
        "",
        intro,
        "",
        "| type | our add, s | primitives on one core, s | writing as many bytes + fsync, s | floor / ours (≥ 1.5: both cores at work) | CPU/wall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for t in types:
        x = adds[t]
        lines.append(f"| {t} | {fmt_s(x['add'])} | {fmt_s(x['seal'])} | {fmt_s(x['write'])} | "
                     f"{fmt_x((x['seal'] + x['write']) / x['add'])} | {x['cpu']:.2f} |")
    return lines


def render(args, plan: Plan, types: list[str], data: dict, derived: dict, notes: list[str]) -> str:
    checks: list[Check] = derived["checks"]
    misses = sum(1 for c in checks for v in c.cells.values() if v[1] is False)
    unmeasured = sum(1 for c in checks for v in c.cells.values() if v[1] is None)
    kind = "quick run (smoke test: tiny sizes, figures are rough)" if args.quick else "full run"
    lines = [
        "# PyCoffer benchmarks",
        "",
        f"Generated by `benchmarks/suite.py` on {data.get('finished') or datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, {kind}, "
        f"in {data['seconds'] / 60:.1f} min. Every figure below was measured in this one run, the series of "
        "each workload interleaved (every repeat runs each series once, in a shuffled order), so read the "
        "ratios: absolute times depend on a shared, noisy machine. Rerun with "
        "`.venv/bin/python benchmarks/suite.py` (see `benchmarks/README.md`).",
        "",
        f"**Targets: {len(checks) * len(types) - misses - unmeasured} hold, {misses} missed"
        + (f", {unmeasured} not measured" if unmeasured else "") + "** (per type; the causes of the misses are in "
        "[What limits it](#what-limits-it)).",
        "",
        "| workload | target | limit | " + " | ".join(types) + " |",
        "|---|---|---:|" + "---:|" * len(types),
    ]
    for check in checks:
        cells = []
        for t in types:
            value, holds, text = check.cells.get(t, (None, None, "–"))
            mark = "" if holds is None else (" ✓" if holds else " **✗**")
            cells.append(f"{text}{mark}")
        lines.append(f"| {check.group} | {check.what} | {check.limit} | " + " | ".join(cells) + " |")
    if notes:
        lines += ["", "Notes on this run:", ""] + [f"- {note}" for note in notes]

    # secrets
    lines += [
        "",
        "## 1. Secrets: 2 KiB members written one by one, each durable before the next",
        "",
        "Each series writes N new 2 KiB random members one at a time; PyCoffer with `auto_flush=True` "
        "(each `write()` is durable when it returns). Peers: pycoffer 0.1.4 with `auto_flush=True` (it rewrites "
        "the whole coffer per write, without fsync); pyzipper opening the zip in `a` mode, `writestr`, close "
        "(rewriting the central directory) and fsync per write; SQLite in WAL mode with `synchronous=FULL`, one "
        "transaction per write, each value sealed with AES-GCM (the name as associated data); and the floor, a "
        f"bare 2 KiB append + fsync to a plain file. A peer whose writes add up to more than {plan.secrets_cap:.0f} s "
        "is stopped and shows how far it got. Times of one write in milliseconds; *drift* is the median of the "
        "last 10% of writes over that of the first 10% (the target), and *drift / bare's* divides it by the bare "
        "series' own drift, which cancels a change of the machine's load during the run (for information).",
    ]
    for n in plan.secrets_n:
        block = data["secrets"][n]
        series = block["series"]
        bare = series["bare"]["stat"].median
        lines += [
            "",
            f"### N = {n:,} ({block['seconds']:.0f} s)",
            "",
            "| series | writes | median | p99 | min–max | drift | drift / bare's | median / bare | file size |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        bare_drift = series["bare"]["drift"]
        for key, entry in series.items():
            if "skipped" in entry:
                lines.append(f"| {label_of(key)} | {entry['skipped']} | | | | | | | |")
                continue
            s = entry["stat"]
            done = f"{s.count:,}" + (f" of {n:,} (stopped at the cap)" if entry["stopped"] else "")
            lines.append(
                f"| {label_of(key)} | {done} | {fmt_ms(s.median)} | {fmt_ms(s.p99)} | {spread(s)} | "
                f"{fmt_x(entry['drift'])} | {fmt_x(entry['drift'] / bare_drift)} | {fmt_x(s.median / bare)} | "
                f"{entry['file_size'] / 1e6:,.2f} MB |"
            )

    # limits: primitives
    arch = derived["archive"]
    text_bytes, random_bytes = data["tree"]["text_bytes"], data["tree"]["random_bytes"]
    lines += [
        "",
        "## Limits: the primitives on one core, on the same bytes",
        "",
        "Each type's primitives called directly (pyzstd, PyNaCl, cryptography's AES (CBC for bank's Fernet tokens, CTR for aes), hmac, "
        "and zlib's CRC-32 of every record's body, which a reader checks only where nothing authenticates the record: "
        "for null), on the "
        "256 KiB chunks PyCoffer would seal, in the order its layers apply them (zstd output that does not save "
        "1/32 is passed on raw, as PyCoffer does), one core. Throughput in MB/s of input to each primitive "
        "(median of the repeats), for the archive tree's stdlib sources and random files, and for the big "
        "member; then each type's total time, the floor the targets use.",
        "",
        "| type | primitive | sources: seal | sources: open | random: seal | random: open | big member: seal | big member: open |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    big_prims = data["big"]["prims"]
    for t in types:
        first = arch["prims"][t][0]["text"][t]
        for step in first["seal"]:
            cells = []
            for source, prims in (("text", arch["prims"][t]), ("random", arch["prims"][t]), ("big", big_prims)):
                for kind in ("seal", "open"):
                    if step not in prims[0][source][t][kind]:
                        cells.append("–")  # not done on this side (a reader skips an authenticated record's CRC)
                        continue
                    rates = [p[source][t]["bytes_in"][step] / (p[source][t][kind][step] / 1e9) / 1e6 for p in prims]
                    cells.append(f"{med(rates):,.0f}")
            lines.append(f"| {t} | {step} | " + " | ".join(cells) + " |")
    if "scaling" in data:  # absent from runs saved before it was measured
        lines += [
            "",
            f"The same primitives on two threads: each seals {data['scaling'][0]['bytes'] // CHUNK} chunks of "
            "256 KiB on one thread, then the same chunks split between two threads that each seal theirs in a "
            "loop (best of the repeats). This is what two cores can give each primitive in one Python process: "
            "a primitive gains only while it releases the GIL. Then the same chunks sealed in one forked process, "
            "and the same halves at once in two, which share no GIL: what the machine's two vCPUs give the "
            "primitive at all (a forked process is compared with a forked process: a child doesn't run at "
            "the rate of its parent).",
            "",
            "| primitive | input | one thread, MB/s | two threads, MB/s | speedup | one process, MB/s | two processes, MB/s | speedup |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for entry in data["scaling"]:
            one = entry["bytes"] / (entry["one_ns"] / 1e9) / 1e6
            two = entry["bytes"] / (entry["two_ns"] / 1e9) / 1e6
            cells = [entry["step"], entry["input"], f"{one:,.0f}", f"{two:,.0f}", fmt_x(two / one), "–", "–", "–"]
            if "two_processes_ns" in entry:  # absent from runs saved before it was measured
                one_process = entry["bytes"] / (entry["one_process_ns"] / 1e9) / 1e6
                two_processes = entry["bytes"] / (entry["two_processes_ns"] / 1e9) / 1e6
                cells[5:] = [f"{one_process:,.0f}", f"{two_processes:,.0f}", fmt_x(two_processes / one_process)]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Floors (seconds): primitives on one core, and the disk writing the same bytes. Each write floor is "
        "measured right after the add or extract it is compared with (median of the pairs), so both meet the "
        "page cache in the same state.",
        "",
        "| type | archive: seal | archive: write + fsync | archive: open | archive: write plain files | big: seal | big: write + fsync | big: open | big: write plain |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    bigd = derived["big"]
    for t in types:
        f, g = arch["floors"][t], bigd["floors"][t]
        lines.append(
            f"| {t} | {fmt_s(f['seal'])} | {fmt_s(f['write'])} | {fmt_s(f['open'])} | {fmt_s(f['copy'])} | "
            f"{fmt_s(g['seal'])} | {fmt_s(g['write'])} | {fmt_s(g['open'])} | {fmt_s(g['plain'])} |"
        )

    # archive
    lines += [
        "",
        "## 2. Archive: add a tree, close, extract it all",
        "",
        f"The tree: the standard library's {', '.join(f'`{p}`' for p in plan.text_packages)} packages (sources, "
        f"no bytecode: {len(data['tree']['text'])} files, {text_bytes / 1e6:,.2f} MB) and {plan.random_files} files "
        f"of {plan.random_size / MiB:g} MiB of random bytes ({random_bytes / 1e6:,.2f} MB). Add is open `w` + "
        "`add(tree)` + close; extract is open `r` + `extractall` + close. Each type with its default "
        f"`auto_flush`; {plan.archive_rounds} interleaved repeats; median (min–max), seconds. CPU/wall: the "
        "worker's CPU time over wall time (above 1: more than one core busy). Ratio: plain size / archive size.",
        "",
        "| series | add | add min–max | extract | extract min–max | CPU/wall add, extract | size | ratio | add / floor | extract / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    plain_total = text_bytes + random_bytes
    for key in arch["add"]:
        a, e = arch["add"][key], arch["extract"][key]
        cpu_a, cpu_e = arch["cpu"][key]
        fa = fe = "–"
        if key.startswith("ours:"):
            t = key.split(":")[1]
            f = arch["floors"][t]
            fa = fmt_x(a.median / (f["seal"] + f["write"]))
            fe = fmt_x(e.median / (f["open"] + f["copy"]))
        lines.append(
            f"| {label_of(key)} | {fmt_s(a.median)} | {spread(a, fmt_s)} | {fmt_s(e.median)} | {spread(e, fmt_s)} | "
            f"{cpu_a:.2f}, {cpu_e:.2f} | {arch['size'][key] / 1e6:,.2f} MB | {plain_total / arch['size'][key]:.2f} | {fa} | {fe} |"
        )
    lines += two_core_table(
        "The compressible part alone (the stdlib sources, one `add`), beside what one thread could do: its "
        "primitives on one core plus writing as many bytes and fsync:",
        types, arch["text"],
    )

    # open/update
    for op, title in (("read", "## 3. Open the archive's coffer and read one member"),
                      ("update", "## 4. Open it, rewrite one 4 KiB member, close")):
        stats = derived[op]
        member = READ_MEMBER if op == "read" else UPDATE_MEMBER
        lines += ["", title, ""]
        if op == "read":
            lines.append(f"Member `{member}`; open `r`, `read`, close. Milliseconds.")
        else:
            lines.append(
                f"Member `{member}` replaced by 4,096 bytes; open `a`, `write`, close (PyCoffer: one commit; "
                "pycoffer 0.1.4: unpack everything, rewrite everything). A zip can't replace a member in place: "
                "for pyzipper this is what it takes, reading every member and writing a new archive, renamed "
                "over the old one. Milliseconds."
            )
        ours = [stats[f"ours:{t}"].median for t in types if stats.get(f"ours:{t}")]
        lines += [
            "",
            "| series | samples | median | p99 | min–max | median / our slowest type |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for key, s in stats.items():
            if s is None:
                continue
            lines.append(
                f"| {label_of(key)} | {s.count} | {fmt_ms(s.median)} | {fmt_ms(s.p99)} | {spread(s)} | "
                f"{fmt_x(s.median / max(ours)) if ours else '–'} |"
            )

    # big
    lines += [
        "",
        f"## 5. Big member: add and extract one {plan.big_size / MiB:,.0f} MiB file",
        "",
        "The file alternates 1 MiB blocks of stdlib sources and of random bytes (half compressible). Each add "
        "(open `w`, `add`, close) and each extract (open `r`, `extract`, close) runs in a fresh worker process, "
        "whose peak RSS (`ru_maxrss`) is reported beside its RSS once the library is imported. "
        f"{plan.big_rounds} interleaved repeats for PyCoffer and pyzipper; pycoffer 0.1.4 "
        f"({', '.join(plan.upstream_big_types)}) once, stopped after {plan.big_cap:.0f} s. Throughput in MB/s "
        "of plain data, median (min–max).",
        "",
        "| series | add MB/s | add min–max | extract MB/s | extract min–max | CPU/wall add, extract | size | peak RSS (base) | add / floor | extract / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    size = plan.big_size

    def rate(ns):
        return f"{size / (ns / 1e9) / 1e6:,.0f}"

    for key in sorted(bigd["add"], key=order_key):
        a, e = bigd["add"][key], bigd["extract"][key]
        stopped = bigd["stopped"][key]
        if a is None:
            lines.append(f"| {label_of(key)} | stopped after {stopped[0]:.0f} s | | | | | | | | |")
            continue
        cpu_a, cpu_e = bigd["cpu"][key]
        peak, base = bigd["rss"][key]
        fa = fe = "–"
        if key.startswith("ours:"):
            f = bigd["floors"][key.split(":")[1]]
            fa = fmt_x(a.median / (f["seal"] + f["write"]))
            if e:
                fe = fmt_x(e.median / (f["open"] + f["plain"]))
        ext = (rate(e.median), f"{rate(e.maximum)}–{rate(e.minimum)}") if e else (f"stopped after {plan.big_cap:.0f} s", "")
        cpu_text = f"{cpu_a:.2f}, " + (f"{cpu_e:.2f}" if cpu_e is not None else "–")
        lines.append(
            f"| {label_of(key)} | {rate(a.median)} | {rate(a.maximum)}–{rate(a.minimum)} | {ext[0]} | {ext[1]} | "
            f"{cpu_text} | {bigd['size'][key] / 1e6:,.0f} MB | {peak:,.0f} MB ({base:,.0f}) | {fa} | {fe} |"
        )
    lines += two_core_table(
        f"A wholly compressible member ({plan.bulk_text_size / MiB:,.0f} MiB of stdlib sources, one `add` in the "
        "long-lived worker), beside what one thread could do (primitives on one core + write + fsync):",
        types, bigd["bulk"],
    )

    # what limits it
    lines += ["", "## What limits it", ""]
    if args.notes and Path(args.notes).exists():
        lines.append(Path(args.notes).read_text(encoding="utf-8").strip())
    else:
        lines.append("(No findings file was given: pass `--notes FILE`.)")

    # machine
    lines += ["", "## Machine", ""]
    for key, value in data["machine"]:
        lines.append(f"- {key}: {value}")
    lines.append(f"- Command: `{data.get('command') or ' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`")
    if args.from_data:
        lines.append(
            f"- Report written on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from the run's saved "
            f"measurements (`{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`), to add the findings"
        )
    return "\n".join(lines) + "\n"


def machine(work: Path, types: list[str], peers: dict | None, load: tuple[str, str], code_at_start: str) -> list[tuple[str, str]]:
    type_dists = ", ".join(f"{i.name}: {i.distribution} {i.version}" for i in Coffer.types() if i.name in types)
    libraries = ", ".join(
        f"{name} {version_of(name)}" for name in ("pycoffer-core", "pyzstd", "cryptography", "PyNaCl", "pyaes")
    )
    rows = [
        ("CPU", f"{cpu_model()} ({os.cpu_count()} logical CPUs)"),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"),
        ("Libraries (ours)", libraries),
        ("SQLite", __import__("sqlite3").sqlite_version),
        ("Types", type_dists),
        ("Code", code_at_start if code_under_test() == code_at_start
         else f"{code_at_start} at the start; {code_under_test()} at the end (workers started later, for the big "
              "member, imported the newer code)"),
    ]
    if peers:
        versions = ", ".join(f"{k} {v}" for k, v in peers["versions"].items())
        rows.append(("Peers", f"Python {peers['python']} ({peers['executable']}): {versions}"))
    else:
        rows.append(("Peers", "pycoffer 0.1.4 and pyzipper not available in this run"))
    rows += [
        ("Folder", f"{work} ({filesystem_of(work)})"),
        ("Load average (1, 5, 15 min)", f"before: {load[0]}, after: {load[1]}"),
    ]
    return rows


# ---------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description="PyCoffer beside pycoffer 0.1.4, pyzipper, SQLite and its limits.")
    parser.add_argument("--quick", action="store_true", help="a smoke test of a few seconds (tiny sizes)")
    parser.add_argument("--output", help=f"where to write the report (default {DEFAULT_OUTPUT.name} for a full run; "
                        "a --quick run only prints it unless given)")
    parser.add_argument("--dir", help="folder for the temporary files (default: the system temp dir)")
    parser.add_argument("--types", help=f"comma-separated types of ours (default: {','.join(OUR_TYPES)})")
    parser.add_argument("--build-peers", action="store_true", help="build the peers' venv in a --quick run too")
    parser.add_argument("--no-peers", action="store_true", help="leave out pycoffer 0.1.4 and pyzipper")
    parser.add_argument("--notes", default=str(HERE / "results" / "suite_findings.md"),
                        help="Markdown for the report's 'What limits it' section")
    parser.add_argument("--seed", type=int, default=20241126)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--save-data", help="also pickle the raw measurements to this file")
    parser.add_argument("--from-data", help="render the report again from a --save-data file (e.g. with new --notes), measuring nothing")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_data:
        import pickle

        with open(args.from_data, "rb") as saved:
            kept = pickle.load(saved)
        args.quick = kept["quick"]
        plan, types, data, notes = kept["plan"], kept["types"], kept["data"], kept["notes"]
        return finish(args, plan, types, data, notes)
    plan = QUICK if args.quick else FULL
    installed = [i.name for i in Coffer.types()]
    types = [t for t in (args.types.split(",") if args.types else OUR_TYPES) if t in installed]
    notes: list[str] = []
    missing = [t for t in (args.types.split(",") if args.types else OUR_TYPES) if t not in installed]
    if missing:
        notes.append(f"types not installed, left out: {', '.join(missing)}")
    base = Path(args.dir).absolute() if args.dir else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pycoffer-suite-", dir=base))
    env = {"PYCOFFER_BENCH_TMP": str(work / "tmp")}
    (work / "tmp").mkdir()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    load_before = load_average()
    code_at_start = code_under_test()
    drivers: list[Driver] = []
    try:
        peer_py = None if args.no_peers else peer_python(args.build_peers or not args.quick, notes)
        ours = Driver(sys.executable, "ours", env)
        drivers.append(ours)
        peer = None
        peer_info = None
        if peer_py is not None:
            peer = Driver(peer_py, "peers", env)
            drivers.append(peer)
            peer_info = peer.call(op="hello", distributions=[p.split("==")[0] for p in PEER_PACKAGES])
        ours_series = [make_series(f"ours:{t}", ours) for t in types]
        upstream_series = [make_series(f"upstream:{t}", peer, capped=True) for t in UPSTREAM_TYPES] if peer else []
        zip_series = [make_series("pyzipper", peer, capped=True)] if peer else []
        secrets_series = [make_series("bare", ours), *ours_series, make_series("sqlite", ours), *zip_series, *upstream_series]
        data: dict = {}
        data["secrets"] = run_secrets(plan, work, secrets_series, rng)
        tree, text_files, random_files = build_tree(plan, work)
        data["tree"] = {"text": text_files, "text_bytes": tree_bytes(text_files), "random_bytes": tree_bytes(random_files)}
        data["scaling"] = ours.call(
            op="scaling", files=[str(p) for p in text_files], chunks=plan.scaling_chunks, repeats=plan.scaling_repeats
        )["result"]
        archive_series = [*ours_series, *zip_series, *upstream_series]
        data["archive"] = run_archive(plan, work, ours, archive_series, types, rng, tree, text_files, random_files)
        data["open_update"] = run_open_update(plan, archive_series, data["archive"]["kept"], rng)
        shutil.rmtree(work / "archives", ignore_errors=True)
        big, bulk = build_big(plan, work, text_files)
        data["big"] = run_big(plan, work, ours, archive_series, types, rng, big, bulk, env)
        data["seconds"] = time.perf_counter() - started
        data["machine"] = machine(work, types, peer_info, (load_before, load_average()), code_at_start)
        data["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        data["finished"] = datetime.now(timezone.utc)
    finally:
        for driver in drivers:
            driver.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.save_data:
        import pickle

        with open(args.save_data, "wb") as saved:
            pickle.dump({"quick": args.quick, "plan": plan, "types": types, "data": data, "notes": notes}, saved)
    return finish(args, plan, types, data, notes)


def finish(args, plan: Plan, types: list[str], data: dict, notes: list[str]) -> int:
    derived = analyse(plan, types, data)
    report = render(args, plan, types, data, derived, notes)
    print(report, end="")
    output = Path(args.output) if args.output else (None if args.quick else DEFAULT_OUTPUT)
    if output is not None:
        output.write_text(report, encoding="utf-8")
        print(f"\nReport written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
