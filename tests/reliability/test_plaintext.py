"""8. No plaintext at rest: the canary never reaches the disk, during the work or after it.

While a coffer of each type that encrypts content is written (streamed and in
one call, a tree added), read back, compacted, backed up and given a new
passphrase, a thread scans every file of the temp dir and of the coffer's
folder (the coffer, its lock, and any sibling it makes) for the canary. A
writer killed in the middle of a large member leaves nothing readable either.
Where the type hides names (all but ``market``), a member named after the
canary must not show either.

Bounded: members of a few MiB (``PYCOFFER_PLAINTEXT_MB``, default 4).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import harness
from pycoffer_core import Coffer

from .conftest import SEALED_TYPES

CANARY = b"CANARY-5e1f0c-PLAINTEXT-MUST-NOT-LEAK"
MB = int(os.environ.get("PYCOFFER_PLAINTEXT_MB", "4"))
SECRET_TYPES = [name for name in SEALED_TYPES if name == harness.AEAD or harness.hides_content(name)]


class Scanner(threading.Thread):
    """Reads every file under the folders, again and again, looking for the canary."""

    def __init__(self, *folders: Path) -> None:
        super().__init__(daemon=True)
        self.folders = folders
        self.found: list[str] = []
        self.files_read = 0
        self.bytes_read = 0
        self.passes = 0
        self._halt = threading.Event()

    def scan_once(self) -> None:
        for folder in self.folders:
            for file in folder.rglob("*"):
                try:
                    data = file.read_bytes() if file.is_file() else b""
                except OSError:
                    continue  # renamed or removed meanwhile
                self.files_read += 1
                self.bytes_read += len(data)
                if CANARY in data:
                    self.found.append(str(file))
        self.passes += 1

    def run(self) -> None:
        while not self._halt.is_set():
            self.scan_once()
            time.sleep(0.001)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.scan_once()


@pytest.fixture(params=SECRET_TYPES)
def secret_type(request):
    if request.param == harness.AEAD:
        request.getfixturevalue("aead_type")
    return request.param


def _payload(size: int) -> bytes:
    """Lines holding the canary and noise, so the coffer is about as large as its content."""
    noise = harness.pattern(size, 7).hex().encode()
    lines = [CANARY + b" " + noise[i : i + 90] + b"\n" for i in range(0, len(noise), 90)]
    return b"".join(lines)[:size]


def test_the_canary_never_reaches_the_disk_while_a_large_coffer_is_worked(tmp_path, monkeypatch, secret_type, fast_kdf):
    temp = tmp_path / "tmp"
    home = tmp_path / "home"
    source = tmp_path / "source"  # plaintext by nature: not scanned
    for folder in (temp, home, source / "sub"):
        folder.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(temp))
    (source / "a.txt").write_bytes(_payload(200_000))
    (source / "sub" / "b.txt").write_bytes(_payload(300_000))
    path = home / "big.coffer"
    name = CANARY.decode() if harness.hides_names(secret_type) or secret_type == harness.AEAD else "secret"
    scanner = Scanner(temp, home)
    scanner.start()
    try:
        with Coffer.open(path, "w", type=secret_type, password="pw", temp_dir=temp, auto_flush=False) as coffer:
            with coffer.file(f"streamed/{name}", "wb") as f:
                for _ in range(MB):
                    f.write(_payload(1 << 20))
            coffer.write("whole", _payload(MB << 19))
            coffer.add(source, f"tree-{name}")
            coffer.flush()
            coffer.write("whole", _payload(1000))  # leaves a large dead member for compaction
            coffer.flush()
        with Coffer.open(path, "a", type=secret_type, password="pw", temp_dir=temp, backup=".bak") as coffer:
            with coffer.file(f"streamed/{name}", "rb") as f:
                while f.read(1 << 20):
                    pass
            coffer.append("whole", _payload(100_000))
            coffer.compact()
            coffer.change_password("pw", "pw2")
            coffer.verify()
    finally:
        scanner.stop()
    assert scanner.found == [], f"the canary is in {sorted(set(scanner.found))}"
    assert scanner.passes >= 2 and scanner.bytes_read > 1 << 20  # it did scan, during and after


def test_a_writer_killed_in_the_middle_of_a_large_member_leaves_no_plaintext(tmp_path, secret_type, fast_kdf):
    home = tmp_path / "home"
    temp = tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    path = home / "c.coffer"
    script = harness.CHILD_SETUP + f"""
import os
from pycoffer_core import Coffer
os.environ["{harness.INSECURE_FAST_ENV}"] = "1"
noise = os.urandom(1 << 19).hex().encode()
block = b"".join({CANARY!r} + b" " + noise[i : i + 90] + b"\\n" for i in range(0, len(noise), 90))
with Coffer.open({str(path)!r}, "w", type={secret_type!r}, password="pw", temp_dir={str(temp)!r}) as c:
    c.write("first", block)
    c.flush()
    with c.file("endless", "wb") as f:
        print("writing", flush=True)
        while True:
            f.write(block)
"""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "TMPDIR": str(temp)})
    try:
        assert child.stdout.readline().strip() == "writing", child.stderr.read()
        deadline = time.monotonic() + 30
        while path.stat().st_size < (MB << 20) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    scanner = Scanner(temp, home)
    scanner.scan_once()
    assert scanner.found == []
    assert scanner.bytes_read > 1 << 20
