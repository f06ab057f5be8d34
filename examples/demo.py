"""A real session with a coffer: store a folder, list it, read, extract, check.

Run it with ``python3 dev.py demo``. It works in a temporary folder and
removes it afterwards (pass ``--keep`` to look at what it made).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

from pycoffer_core import Coffer, IntegrityError

PASSPHRASE = "correct horse battery staple"

SAMPLE = {
    "notes/todo.txt": b"buy milk\ncall the bank\n",
    "notes/ideas.md": b"# Ideas\n\n" + b"- a coffer is a folder in one file\n" * 200,
    "photos/cat.raw": bytes(range(256)) * 4096,
    "empty.txt": b"",
}


def preferred_type() -> str:
    """The most protective type installed (bank encrypts both layers)."""
    installed = {info.name for info in Coffer.types()}
    for name in ("bank", "store", "aes", "market", "null"):
        if name in installed:
            return name
    raise SystemExit("no coffer type installed: pip install pycoffer-null")


def main(keep: bool) -> int:
    work = Path(tempfile.mkdtemp(prefix="pycoffer-demo-"))
    source = work / "sample"
    for name, data in SAMPLE.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)

    kind = preferred_type()
    # A passphrase where the type has keys (unwrapped by Argon2id), else nothing.
    keys = {"password": PASSPHRASE} if Coffer.gen_params(kind) else {}
    vault = work / "vault.coffer"
    print(f"1. create {vault.name} (type {kind!r}) from {source.name}/")
    with Coffer.open(vault, "x", type=kind, **keys) as coffer:
        coffer.add(source, "sample")
    if keys:
        try:
            Coffer.open(vault, "r", type=kind, password="not the passphrase")
        except IntegrityError as exc:
            print(f"   a wrong passphrase is refused: {exc}")

    print("2. list it")
    with Coffer.open(vault, "r", type=kind, **keys) as coffer:
        for info in coffer.getmembers():
            print(f"   {info.filesize:>9,}  {info.name}")
        print("3. read one member")
        todo = coffer.read("sample/notes/todo.txt")
        print("   sample/notes/todo.txt:", todo.decode().splitlines())
        print("4. extract everything")
        coffer.extractall(work / "restored")
        print("5. check: authenticate every record, compare with the source")
        coffer.verify()
    ok = _same_tree(source, work / "restored" / "sample") and todo == SAMPLE["notes/todo.txt"]
    print(f"   size on disk {vault.stat().st_size:,} bytes for {sum(map(len, SAMPLE.values())):,} bytes of files")
    print("   restored tree matches the source:", ok)
    if keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)
    return 0 if ok else 1


def _same_tree(left: Path, right: Path) -> bool:
    def digests(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*")
            if p.is_file()
        }

    return digests(left) == digests(right)


if __name__ == "__main__":
    sys.exit(main("--keep" in sys.argv[1:]))
