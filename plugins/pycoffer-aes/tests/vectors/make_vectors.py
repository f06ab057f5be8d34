"""Write the frozen test vector of the ``aes`` type: aes-v1.coffer and aes-v1.json.

    python make_vectors.py            # refuses to replace existing vectors
    python make_vectors.py --force    # only when the format version changes

The JSON beside the coffer holds its keys (base64 of the raw parameter
bytes) and, per member, its name, size, SHA-256, mtime and, when small, its
bytes; ``test_aes.py`` reads the coffer back against it forever, so a
change that stops old coffers from opening fails the tests. The members
cover an empty one, nested and non-ASCII names, and one of more than one
256 KiB chunk (compressible, to keep the file small); each member is its own
commit, so the file holds a checkpoint and delta commits.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from pycoffer_core import Coffer

TYPE = "aes"
HERE = Path(__file__).resolve().parent
MEMBERS = {
    "empty": b"",
    "hello.txt": b"Hello, coffer!\n",
    "docs/nested/deeper/notes.md": "# Notes\n\nnaïve café, déjà vu\n".encode(),
    "naïve/é.txt": bytes(range(256)),
    "big/lines.txt": b"".join(b"line %06d of a test vector\n" % i for i in range(12_000)),
}
FIRST_MTIME_NS = 1_700_000_000_123_456_789


def main(argv: list[str]) -> int:
    coffer_path = HERE / f"{TYPE}-v1.coffer"
    json_path = HERE / f"{TYPE}-v1.json"
    if (coffer_path.exists() or json_path.exists()) and "--force" not in argv:
        print(f"{coffer_path.name} exists: test vectors are frozen (pass --force to replace)")
        return 1
    keys = Coffer.gen_params(TYPE)
    described = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        for number, (name, data) in enumerate(MEMBERS.items()):
            file = source / name
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
            mtime_ns = FIRST_MTIME_NS + number * 86_400 * 10**9
            os.utime(file, ns=(mtime_ns, mtime_ns))
            member = {
                "name": name,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "mtime_ns": mtime_ns,
            }
            if len(data) <= 1024:
                member["base64"] = base64.b64encode(data).decode()
            described.append(member)
        coffer_path.unlink(missing_ok=True)
        with Coffer.open(coffer_path, "x", type=TYPE, **keys) as coffer:
            for name in MEMBERS:
                coffer.add(source / name, name)
                coffer.flush()  # a checkpoint, then delta commits: both kinds in the vector
        Path(f"{coffer_path}.lock").unlink(missing_ok=True)
    spec = {
        "type": TYPE,
        "written_by": "make_vectors.py",
        "keys_base64": {param: base64.b64encode(value).decode() for param, value in keys.items()},
        "members": described,
    }
    json_path.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {coffer_path.name} ({coffer_path.stat().st_size} bytes) and {json_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
