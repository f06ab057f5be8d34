#!/usr/bin/env python3
"""The worker that ``benchmarks/suite.py`` drives: one process, one library.

It runs under two interpreters: the dev venv (for PyCoffer itself, the
SQLite peer, the bare write + fsync and the primitives) and the peers'
venv that the suite builds under ``~/.cache/pycoffer-bench`` (for
``pycoffer==0.1.4`` and ``pyzipper``). So it needs only the standard library
at import time; each backend imports its library when first used.

Protocol: one JSON request per line on stdin, one JSON answer per line on
the original stdout (anything a library prints goes to stderr instead).
Every timed figure is measured here, around the library call only, with
``time.perf_counter_ns``: the pipe's cost is never part of a figure. Data
to write is generated before the clock starts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from pathlib import Path

CHUNK = 256 * 1024  # PyCoffer's chunk size (pycoffer_core.memberio.CHUNK_SIZE)
ZIP_PASSWORD = b"correct horse battery staple"


def now() -> int:
    return time.perf_counter_ns()


def unhex(params: dict[str, str]) -> dict[str, bytes]:
    return {key: bytes.fromhex(value) for key, value in params.items()}


def fsync_path(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tree_files(root: str) -> list[tuple[str, str]]:
    """(path, relative POSIX name) of every regular file under ``root``, sorted."""
    found = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(folder, name)
            found.append((path, Path(path).relative_to(root).as_posix()))
    return found


# ---------------------------------------------------------------- backends


class Ours:
    """PyCoffer (this repository), one type."""

    def __init__(self, type_name: str) -> None:
        from pycoffer_core import Coffer

        self.Coffer = Coffer
        self.type = type_name

    def gen_params(self) -> dict[str, bytes]:
        return self.Coffer.gen_params(self.type)

    def open(self, path: str, mode: str, params: dict[str, bytes], auto_flush: bool | None = None):
        return self.Coffer.open(path, mode, type=self.type, auto_flush=auto_flush, **params)

    # secrets
    def secrets_open(self, path, params):
        return self.open(path, "w", params, auto_flush=True)

    def secrets_write(self, handle, name, data):
        handle.write(name, data)

    def secrets_close(self, handle):
        handle.close()

    # archive
    def add_tree(self, path, params, src, arcname):
        with self.open(path, "w", params) as coffer:
            coffer.add(src, arcname)

    def extract_all(self, path, params, dest):
        with self.open(path, "r", params) as coffer:
            coffer.extractall(dest)

    def read_one(self, path, params, member):
        with self.open(path, "r", params) as coffer:
            return len(coffer.read(member))

    def update_one(self, path, params, member, data):
        with self.open(path, "a", params) as coffer:
            coffer.write(member, data)

    def add_file(self, path, params, src, arcname):
        with self.open(path, "w", params) as coffer:
            coffer.add(src, arcname)

    def extract_one(self, path, params, member, dest):
        with self.open(path, "r", params) as coffer:
            coffer.extract(member, dest)


class Upstream:
    """pycoffer 0.1.4 (PyPI), one of its types; data-first ``write(data, arcname)``."""

    def __init__(self, type_name: str) -> None:
        import importlib

        module = importlib.import_module(f"pycoffer.coffers.{type_name}")
        self.cls = getattr(module, f"Coffer{type_name.capitalize()}")
        self.type = type_name

    def gen_params(self):
        return self.cls.gen_params()

    def open(self, path, mode, params, **kwargs):
        return self.cls(path, mode=mode, **params, **kwargs).open()

    def secrets_open(self, path, params):
        return self.open(path, "wb", params, auto_flush=True)

    def secrets_write(self, handle, name, data):
        handle.write(data, name)

    def secrets_close(self, handle):
        handle.close()

    def add_tree(self, path, params, src, arcname):
        coffer = self.open(path, "wb", params)
        coffer.add(src.rstrip("/"), arcname)
        coffer.close()

    def extract_all(self, path, params, dest):
        coffer = self.open(path, "rb", params)
        coffer.extractall(dest)
        coffer.close()

    def read_one(self, path, params, member):
        coffer = self.open(path, "rb", params)
        size = len(coffer.read(member))
        coffer.close()
        return size

    def update_one(self, path, params, member, data):
        coffer = self.open(path, "ab", params)
        coffer.write(data, member)
        coffer.close()

    def add_file(self, path, params, src, arcname):
        coffer = self.open(path, "wb", params)
        coffer.add(src, arcname)
        coffer.close()

    def extract_one(self, path, params, member, dest):
        coffer = self.open(path, "rb", params)
        coffer.extract(member, dest)
        coffer.close()


class Zipper:
    """pyzipper: a WinZip AES-256 zip, deflate-compressed (pyzipper's usual use)."""

    def __init__(self, type_name: str = "") -> None:
        import pyzipper

        self.z = pyzipper

    def gen_params(self):
        return {}

    def zip(self, path, mode):
        archive = self.z.AESZipFile(
            path, mode, compression=self.z.ZIP_DEFLATED, encryption=self.z.WZ_AES
        )
        archive.setpassword(ZIP_PASSWORD)
        return archive

    def secrets_open(self, path, params):
        # A zip has no durable single-entry write: append, close (which
        # rewrites the central directory), fsync, for every secret.
        self.zip(path, "w").close()
        return path

    def secrets_write(self, path, name, data):
        with self.zip(path, "a") as archive:
            archive.writestr(name, data)
        fsync_path(path)

    def secrets_close(self, path):
        pass

    def add_tree(self, path, params, src, arcname):
        with self.zip(path, "w") as archive:
            for file_path, name in tree_files(src):
                archive.write(file_path, f"{arcname}/{name}")

    def extract_all(self, path, params, dest):
        with self.zip(path, "r") as archive:
            archive.extractall(dest)

    def read_one(self, path, params, member):
        with self.zip(path, "r") as archive:
            return len(archive.read(member))

    def update_one(self, path, params, member, data):
        # A zip can't replace a member in place: rewrite every member into a
        # new archive (each decrypted, inflated, deflated, encrypted again).
        tmp = f"{path}.rewrite"
        with self.zip(path, "r") as old, self.zip(tmp, "w") as new:
            for info in old.infolist():
                content = data if info.filename == member else old.read(info.filename)
                new.writestr(info.filename, content)
        os.replace(tmp, path)

    def add_file(self, path, params, src, arcname):
        with self.zip(path, "w") as archive:
            archive.write(src, arcname)

    def extract_one(self, path, params, member, dest):
        with self.zip(path, "r") as archive:
            archive.extract(member, dest)


class Sqlite:
    """A blob table in SQLite (WAL, synchronous=FULL), each value sealed with AES-GCM."""

    def __init__(self, type_name: str = "") -> None:
        import sqlite3

        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.sqlite3 = sqlite3
        self.AESGCM = AESGCM

    def gen_params(self):
        return {"key": self.AESGCM.generate_key(bit_length=256)}

    def secrets_open(self, path, params):
        conn = self.sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, nonce BLOB, data BLOB)")
        return conn, self.AESGCM(params["key"])

    def secrets_write(self, handle, name, data):
        conn, aead = handle
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, data, name.encode())
        conn.execute("BEGIN")
        conn.execute("INSERT OR REPLACE INTO secrets VALUES (?, ?, ?)", (name, nonce, sealed))
        conn.execute("COMMIT")

    def secrets_close(self, handle):
        handle[0].close()


class Bare:
    """The floor of a durable write: append the bytes to a plain file, fsync."""

    def __init__(self, type_name: str = "") -> None:
        pass

    def gen_params(self):
        return {}

    def secrets_open(self, path, params):
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def secrets_write(self, fd, name, data):
        os.write(fd, data)
        os.fsync(fd)

    def secrets_close(self, fd):
        os.close(fd)


BACKENDS = {"ours": Ours, "upstream": Upstream, "pyzipper": Zipper, "sqlite": Sqlite, "bare": Bare}
_instances: dict[str, object] = {}


def backend(spec: str):
    if spec not in _instances:
        kind, _, type_name = spec.partition(":")
        _instances[spec] = BACKENDS[kind](type_name)
    return _instances[spec]


# ---------------------------------------------------------------- primitives


class Chain:
    """The primitives one PyCoffer type applies to a chunk, called directly.

    ``seal`` and ``open`` return the output and add each step's time to
    ``times``: this is what the type's layers cost on one core, without the
    container's framing, index or I/O.
    """

    def __init__(self, type_name: str) -> None:
        import nacl.secret
        import pyzstd
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self.type = type_name
        self.padding = padding
        self.zstd = pyzstd
        self.compressor = pyzstd.ZstdCompressor(3)
        self.box = nacl.secret.SecretBox(os.urandom(32))
        self.fernet_keys = (os.urandom(16), os.urandom(16))  # signing, encryption
        self.aes_key = os.urandom(32)
        self.mac_key = os.urandom(32)
        self.Cipher, self.algorithms, self.modes = Cipher, algorithms, modes
        # Every record the format writes ends in a CRC-32 of its body; a
        # reader checks it where nothing else authenticates the record (null,
        # whose only integrity check it is).
        self.steps = {
            "null": ["zstd-3", "CRC-32"],
            "bank": ["zstd-3", "NaCl secret box", "Fernet", "CRC-32"],
            "store": ["zstd-3", "NaCl secret box", "CRC-32"],
            "market": ["zstd-3", "NaCl secret box", "HMAC-SHA256", "CRC-32"],
            "aes": ["zstd-3", "AES-256-CTR", "HMAC-SHA256", "CRC-32"],
        }[type_name]
        self.opened_unchecked = {"CRC-32"} if type_name != "null" else set()

    def _step(self, step: str, data: bytes, seal: bool, state: dict) -> bytes:
        if step == "zstd-3":
            if seal:
                packed = self.compressor.compress(data, self.zstd.ZstdCompressor.FLUSH_FRAME)
                if len(packed) <= len(data) * (1 - 1 / 32):  # PyCoffer keeps raw what doesn't shrink
                    return b"\x01" + packed
                return b"\x00" + data
            return self.zstd.decompress(data[1:]) if data[:1] == b"\x01" else data[1:]
        if step == "NaCl secret box":
            return bytes(self.box.encrypt(data)) if seal else self.box.decrypt(data)
        if step == "Fernet":
            # A binary Fernet token, as bank's layer builds it: AES-128-CBC
            # with PKCS#7 padding, then HMAC-SHA256 over the whole token.
            signing, encryption = self.fernet_keys
            if seal:
                iv = os.urandom(16)
                padder = self.padding.PKCS7(128).padder()
                padded = padder.update(data) + padder.finalize()
                enc = self.Cipher(self.algorithms.AES(encryption), self.modes.CBC(iv)).encryptor()
                token = b"\x80" + bytes(8) + iv + enc.update(padded) + enc.finalize()
                return token + hmac.new(signing, token, hashlib.sha256).digest()
            body = data[:-32]
            if not hmac.compare_digest(data[-32:], hmac.new(signing, body, hashlib.sha256).digest()):
                raise ValueError("MAC")
            dec = self.Cipher(self.algorithms.AES(encryption), self.modes.CBC(body[9:25])).decryptor()
            padded = dec.update(body[25:]) + dec.finalize()
            unpadder = self.padding.PKCS7(128).unpadder()
            return unpadder.update(padded) + unpadder.finalize()
        if step == "HMAC-SHA256":
            if seal:
                return data + hmac.new(self.mac_key, data, hashlib.sha256).digest()
            body = data[:-32]
            if not hmac.compare_digest(data[-32:], hmac.new(self.mac_key, body, hashlib.sha256).digest()):
                raise ValueError("MAC")
            return body
        if step == "AES-256-CTR":
            if seal:
                iv = os.urandom(16)
                enc = self.Cipher(self.algorithms.AES(self.aes_key), self.modes.CTR(iv)).encryptor()
                return iv + enc.update(data) + enc.finalize()
            dec = self.Cipher(self.algorithms.AES(self.aes_key), self.modes.CTR(data[:16])).decryptor()
            return dec.update(data[16:]) + dec.finalize()
        if step == "CRC-32":
            zlib.crc32(data)  # the writer stores it, a reader compares it: the cost is the sum
            return data
        raise ValueError(step)

    def run(self, chunk: bytes, seal_times: dict, open_times: dict, sizes: dict) -> None:
        data = chunk
        for step in self.steps:
            sizes[step] = sizes.get(step, 0) + len(data)
            start = now()
            data = self._step(step, data, True, {})
            seal_times[step] = seal_times.get(step, 0) + now() - start
        for step in reversed(self.steps):
            if step in self.opened_unchecked:
                continue  # the layers authenticate the record: a reader skips its CRC
            start = now()
            data = self._step(step, data, False, {})
            open_times[step] = open_times.get(step, 0) + now() - start
        if data != chunk:
            raise AssertionError(f"{self.type}: the primitive chain does not round-trip")


def primitives(types: list[str], files: list[str]) -> dict:
    """Time each type's primitive chain on the chunks of ``files`` (one core)."""
    chains = {name: Chain(name) for name in types}
    result = {name: {"seal": {}, "open": {}, "bytes_in": {}} for name in types}
    plain = 0
    for path in files:
        with open(path, "rb") as source:
            while True:
                chunk = source.read(CHUNK)
                if not chunk:
                    break
                plain += len(chunk)
                for name, chain in chains.items():
                    entry = result[name]
                    chain.run(chunk, entry["seal"], entry["open"], entry["bytes_in"])
    for entry in result.values():
        entry["plain"] = plain
    return result


def disk_write(path: str, size: int, block: int = 1 << 20) -> int:
    """Write ``size`` random bytes in 1 MiB blocks and fsync (the data is made first)."""
    blocks = os.urandom(min(size, block)) if size else b""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = now()
        left = size
        while left > 0:
            left -= os.write(fd, blocks[: min(left, len(blocks))])
        os.fsync(fd)
        return now() - start
    finally:
        os.close(fd)


def copy_tree(src: str, dest: str) -> int:
    """Write every file of ``src`` under ``dest`` (contents read first): the floor of an extract."""
    contents = [(name, Path(path).read_bytes()) for path, name in tree_files(src)]
    start = now()
    for name, data in contents:
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as out:
            out.write(data)
    return now() - start


#: What ``scaling`` measures: each primitive PyCoffer's types use, on the chunks it would meet.
SCALING_STEPS = [
    ("zstd-3", "sources"),
    ("zstd-3", "random"),
    ("NaCl secret box", "random"),
    ("Fernet", "random"),
    ("HMAC-SHA256", "random"),
    ("AES-256-CTR", "random"),
]


def _processes_ns(seal_share: Callable[[int], None], shares: int, repeats: int) -> int:
    """Best wall time of ``seal_share(0)`` ... ``seal_share(shares - 1)`` run at
    once, each in a forked process. The processes are started before the
    clock (a fork costs more than some of the measured work), released
    together by a barrier, and each times its own share: from the first start
    to the last end (``perf_counter_ns`` is the system's monotonic clock, the
    same in every process). The parent can't hold the clock: with both vCPUs
    busy it wakes late. One process is measured the same way, so the two
    figures meet the same allocator and page state (a forked child doesn't
    run at the rate of its parent)."""
    context = multiprocessing.get_context("fork")
    # A child that dies makes the parent's wait time out (BrokenBarrierError) instead of hanging.
    barrier = context.Barrier(shares + 1, timeout=300)
    times = context.Array("q", 2 * shares, lock=False)  # start, end of each share, this repeat

    def child(share: int) -> None:
        for _ in range(repeats):
            barrier.wait()
            times[2 * share] = now()
            seal_share(share)
            times[2 * share + 1] = now()
            barrier.wait()

    children = [context.Process(target=child, args=(share,), daemon=True) for share in range(shares)]
    for process in children:
        process.start()
    best = 1 << 62
    try:
        for _ in range(repeats):
            barrier.wait()
            barrier.wait()
            best = min(best, max(times[1::2]) - min(times[0::2]))
    finally:
        for process in children:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    return best


def scaling(text_files: list[str], chunks: int, repeats: int) -> list[dict]:
    """Each primitive sealing ``chunks`` 256 KiB chunks on one thread, then the
    same chunks split between two threads that each seal theirs in a loop (no
    per-chunk hand-off): what two cores give that primitive in this process
    (it must release the GIL to gain anything). Then all the chunks in one
    process and the same halves in two processes, which share no GIL: what
    the machine's two vCPUs give the primitive at all. Best of ``repeats``."""
    corpus = b"".join(Path(path).read_bytes() for path in text_files)
    while len(corpus) < chunks * CHUNK:
        corpus += corpus
    inputs = {
        "sources": [corpus[i * CHUNK : (i + 1) * CHUNK] for i in range(chunks)],
        "random": [os.urandom(CHUNK) for _ in range(chunks)],
    }
    # A chain per thread, as PyCoffer keeps a zstd compressor per thread: one
    # compressor shared by two threads would take turns (it locks itself).
    chains = [Chain("null"), Chain("null")]  # each holds a key for every primitive
    result = []
    for step, kind in SCALING_STEPS:
        data = inputs[kind]

        def seal_all(pieces: list[bytes], chain: Chain, step: str = step) -> None:
            for piece in pieces:
                chain._step(step, piece, True, {})

        one = two = None
        for _ in range(repeats):
            start = now()
            seal_all(data, chains[0])
            one = min(one or 1 << 62, now() - start)
            threads = [threading.Thread(target=seal_all, args=(data[half::2], chains[half])) for half in (0, 1)]
            start = now()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            two = min(two or 1 << 62, now() - start)
        one_process = _processes_ns(lambda _, data=data: seal_all(data, chains[0]), 1, repeats)
        two_processes = _processes_ns(
            lambda half, data=data: seal_all(data[half::2], chains[half]), 2, repeats
        )
        result.append(
            {
                "step": step,
                "input": kind,
                "bytes": chunks * CHUNK,
                "one_ns": one,
                "two_ns": two,
                "one_process_ns": one_process,
                "two_processes_ns": two_processes,
            }
        )
    return result


# ---------------------------------------------------------------- dispatch


def handle(request: dict, handles: dict) -> dict:
    op = request["op"]
    if op == "hello":
        versions = {}
        from importlib import metadata

        for name in request.get("distributions", []):
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                versions[name] = None
        return {"python": sys.version.split()[0], "executable": sys.executable, "versions": versions}
    if op == "peak_rss":
        return {"kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    if op == "gen_params":
        return {"params": {k: bytes(v).hex() for k, v in backend(request["backend"]).gen_params().items()}}
    if op == "primitives":
        return {"result": primitives(request["types"], request["files"])}
    if op == "scaling":
        return {"result": scaling(request["files"], request["chunks"], request["repeats"])}
    if op == "disk_write":
        ns = disk_write(request["path"], request["size"])
        os.unlink(request["path"])
        return {"ns": ns}
    if op == "copy_tree":
        ns = copy_tree(request["src"], request["dest"])
        shutil.rmtree(request["dest"], ignore_errors=True)
        return {"ns": ns}
    impl = backend(request["backend"])
    params = unhex(request.get("params", {}))
    if op == "secrets_open":
        key = f"h{len(handles)}"
        handles[key] = (impl, impl.secrets_open(request["path"], params))
        return {"handle": key}
    if op == "secrets_write":
        impl, state = handles[request["handle"]]
        data = os.urandom(request["size"])
        start = now()
        impl.secrets_write(state, request["name"], data)
        return {"ns": now() - start}
    if op == "secrets_close":
        impl, state = handles.pop(request["handle"])
        impl.secrets_close(state)
        return {}
    if op == "update_one":
        data = os.urandom(request["size"] // 2).hex().encode()  # text-like, as a source file is
        start = now()
        impl.update_one(request["path"], params, request["member"], data)
        return {"ns": now() - start, "size": os.path.getsize(request["path"])}
    method = getattr(impl, op)
    args = [request["path"], params, *request.get("args", [])]
    cpu = time.process_time_ns()
    start = now()
    value = method(*args)
    elapsed = now() - start
    answer = {"ns": elapsed, "cpu_ns": time.process_time_ns() - cpu}
    if os.path.exists(request["path"]):
        answer["size"] = os.path.getsize(request["path"])
    if isinstance(value, int):
        answer["value"] = value
    return answer


def main() -> int:
    # Keep the real stdout for answers; whatever a library prints goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    tempfile.tempdir = os.environ.get("PYCOFFER_BENCH_TMP") or None
    handles: dict = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        try:
            answer = {"ok": True, **handle(request, handles)}
        except BaseException as exc:  # reported to the suite, which decides
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
