"""Frozen test vectors: a small coffer of a type, written once, read forever.

A backend keeps ``<type>-v1.coffer`` and ``<type>-v1.json`` in its tests; the
JSON holds the keys (base64 of the raw parameter bytes) and, per member, its
name, size, SHA-256, mtime and, when small, its bytes. Write them once::

    python -m pycoffer_core.vectors TYPE FOLDER            # refuses to replace
    python -m pycoffer_core.vectors TYPE FOLDER --force    # only for a new format version

and read them back in a test with :func:`check_vector`, so a change that
stops old coffers from opening fails the tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
from pathlib import Path

from .coffer import Coffer

#: An empty member, nested and non-ASCII names, and one of more than one
#: 256 KiB chunk (compressible, to keep the file small).
MEMBERS = {
    "empty": b"",
    "hello.txt": b"Hello, coffer!\n",
    "docs/nested/deeper/notes.md": "# Notes\n\nnaïve café, déjà vu\n".encode(),
    "naïve/é.txt": bytes(range(256)),
    "big/lines.txt": b"".join(b"line %06d of a test vector\n" % i for i in range(12_000)),
}
FIRST_MTIME_NS = 1_700_000_000_123_456_789
_DAY_NS = 86_400 * 10**9


def vector_paths(folder: Path, type_name: str) -> tuple[Path, Path]:
    """The coffer and the JSON of ``type_name``'s version-1 vector in ``folder``."""
    return folder / f"{type_name}-v1.coffer", folder / f"{type_name}-v1.json"


def write_vector(folder: Path, type_name: str, *, force: bool = False) -> Path:
    """Write the vector of ``type_name`` into ``folder`` (one commit per member,
    so it holds a checkpoint and deltas). Refuses to replace one unless ``force``."""
    coffer_path, json_path = vector_paths(folder, type_name)
    if (coffer_path.exists() or json_path.exists()) and not force:
        raise FileExistsError(f"{coffer_path} exists: test vectors are frozen (force to replace)")
    keys = Coffer.gen_params(type_name)
    described = []
    coffer_path.unlink(missing_ok=True)
    with Coffer.open(coffer_path, "x", type=type_name, **keys) as coffer:
        for number, (name, data) in enumerate(MEMBERS.items()):
            mtime_ns = FIRST_MTIME_NS + number * _DAY_NS
            coffer.write(name, data, mtime_ns=mtime_ns)
            coffer.flush()
            member = {
                "name": name,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "mtime_ns": mtime_ns,
            }
            if len(data) <= 1024:
                member["base64"] = base64.b64encode(data).decode()
            described.append(member)
    Path(f"{coffer_path}.lock").unlink(missing_ok=True)
    spec = {
        "type": type_name,
        "written_by": "pycoffer_core.vectors",
        "keys_base64": {param: base64.b64encode(value).decode() for param, value in keys.items()},
        "members": described,
    }
    json_path.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return coffer_path


def check_vector(folder: Path, type_name: str, scratch: Path) -> None:
    """Read the vector back through the API and assert it holds what its JSON says.

    Works on a copy in ``scratch`` and checks that reading changes no byte.
    """
    coffer_path, json_path = vector_paths(folder, type_name)
    spec = json.loads(json_path.read_text(encoding="utf-8"))
    keys = {param: base64.b64decode(value) for param, value in spec["keys_base64"].items()}
    path = scratch / coffer_path.name
    shutil.copyfile(coffer_path, path)
    before = path.read_bytes()
    with Coffer.open(path, "r", type=type_name, **keys) as coffer:
        coffer.verify()
        infos = {info.name: info for info in coffer.getmembers()}
        assert sorted(infos) == sorted(member["name"] for member in spec["members"])
        for member in spec["members"]:
            data = coffer.read(member["name"])
            info = infos[member["name"]]
            assert len(data) == info.filesize == member["size"], member["name"]
            assert info.mtime_ns == member["mtime_ns"], member["name"]
            assert hashlib.sha256(data).hexdigest() == member["sha256"], member["name"]
            if "base64" in member:
                assert data == base64.b64decode(member["base64"]), member["name"]
    assert path.read_bytes() == before, "reading the vector changed it"


def main(argv: list[str]) -> int:
    args = [arg for arg in argv if arg != "--force"]
    if len(args) != 2:
        print(__doc__)
        return 2
    try:
        written = write_vector(Path(args[1]), args[0], force="--force" in argv)
    except FileExistsError as exc:
        print(exc)
        return 1
    print(f"wrote {written} ({written.stat().st_size} bytes) and its JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
