"""Write the frozen legacy fixtures with the real upstream library.

Not part of PyCoffer and not run by the tests: the fixtures it writes are
committed bytes. It runs under a separate virtualenv that holds the old
library (which PyCoffer does not depend on)::

    python3.11 -m venv /tmp/legacy-venv
    /tmp/legacy-venv/bin/pip install pycoffer==0.1.4 cofferfile naclfile aesfile fernetfile
    /tmp/legacy-venv/bin/python tests/legacy/make_fixtures.py        # bank store market null

    python3.11 -m venv /tmp/legacy-venv-0010
    /tmp/legacy-venv-0010/bin/pip install pycoffer==0.0.10 cofferfile naclfile fernetfile
    /tmp/legacy-venv-0010/bin/python tests/legacy/make_fixtures.py   # bank-fernet (pre-0.1.0 bank)

(Used: cofferfile 0.0.10, naclfile 0.0.6, aesfile 0.0.6, fernetfile 0.1.7,
pyzstd 0.20.0, Python 3.11. ``cofferfile`` is imported by pycoffer but not
declared as its dependency, hence installed by hand.)

For each type it writes ``fixtures/<type>.pcof`` in two sessions, as a user
would have: a first one in mode ``w`` (small, empty, nested, unicode and
>64 KiB members, one member added from a file with a known mtime, and the
password plugin's pickled ``.plugins/passwd``), then one in mode ``a``
(appending to a member, which makes it a stream of several zstd frames, and
adding a member). Then ``<type>.keys.json`` (the keys, base64),
``<type>.pycofferrc`` (the same keys in the old library's own INI config,
written by its ``Config.generate``) and ``<type>.expected.json``: what the
old library itself reads back from the file (names, sizes, sha256, mtimes).

The keys are fixed (derived from a label) so that re-running gives the same
keys; the files still differ (random nonces). They are test keys: never use
them for anything else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"

#: The mtime given to the member added from a file (exact in binary, so it
#: survives the old library's float round trips unchanged).
ADDED_MTIME = 1234567890.25


def _key(label: str, size: int) -> bytes:
    return hashlib.sha256(f"pycoffer legacy fixture: {label}".encode()).digest()[:size]


def _fernet_key(label: str) -> bytes:
    return base64.urlsafe_b64encode(_key(label, 32))


def _contents() -> dict[str, bytes]:
    rng = random.Random(20240101)
    lines = "".join(f"line {i:06d}: the quick brown fox jumps over the lazy dog\n" for i in range(3500))
    return {
        "hello.txt": b"hello from the old pycoffer\n",
        "empty.bin": b"",
        "big/compressible.txt": lines.encode(),  # ~230 KiB, compresses to almost nothing
        "big/random.bin": rng.randbytes(70 * 1024),  # > one 65504-byte chunk after any layer
        "unicode/ünïcødé 名前.txt": "ça marche\n".encode(),
    }


def _types(library_version: str) -> dict[str, tuple[type, dict[str, bytes]]]:
    if library_version.startswith("0.0."):
        from pycoffer.bank import CofferBank as FernetBank

        return {
            "bank-fernet": (
                FernetBank,
                {"coffer_key": _fernet_key("bank-fernet coffer_key"), "secure_key": _key("bank-fernet secure_key", 32)},
            )
        }
    from pycoffer.coffers.bank import CofferBank
    from pycoffer.coffers.market import CofferMarket
    from pycoffer.coffers.null import CofferNull
    from pycoffer.coffers.store import CofferStore

    return {
        "bank": (CofferBank, {"coffer_key": _key("bank coffer_key", 16), "secure_key": _key("bank secure_key", 32)}),
        "store": (CofferStore, {"coffer_key": _key("store coffer_key", 32)}),
        "market": (CofferMarket, {"secure_key": _key("market secure_key", 32)}),
        "null": (CofferNull, {}),
    }


def _add_password(coffer) -> None:
    with coffer.plugin("password") as plugin:
        info = plugin.Info(
            name="example", username="alice", password="not-a-real-password", url="https://example.org", owner="me"
        )
        plugin.add(info)


def make(type_name: str, cls: type, keys: dict[str, bytes], library_version: str) -> None:
    target = FIXTURES / f"{type_name}.pcof"
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "notes.txt"
        source.write_bytes(b"added with add(), mtime kept\n")
        os.utime(source, (ADDED_MTIME, ADDED_MTIME))

        # Session 1, mode w (data first: the old API is write(data, arcname)).
        with cls(str(target), mode="wb", **keys) as coffer:
            for name, data in _contents().items():
                coffer.write(data, name)
            coffer.add(str(source), "docs/nested/deep/notes.txt")
            if hasattr(coffer, "plugin"):
                _add_password(coffer)
            else:  # 0.0.10 has no plugin() yet: its pickle storage, as the plugin used it
                coffer.pickle_dump({"example": "not-a-real-password"}, ".plugins/passwd")

        # Session 2, mode a: append to a member, add another.
        with cls(str(target), mode="ab", **keys) as coffer:
            coffer.append(b"appended in a later session\n", "hello.txt")
            coffer.write(b"written in append mode\n", "later/added.txt")

        # What the old library reads back.
        with cls(str(target), mode="rb", **keys) as coffer:
            members = []
            for info in sorted(coffer.getmembers(), key=lambda i: i.name):
                data = coffer.read(info.name)
                members.append(
                    {
                        "name": info.name,
                        "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "mtime": info.mtime,
                    }
                )

    (FIXTURES / f"{type_name}.keys.json").write_text(
        json.dumps(
            {"type": type_name, "keys": {k: base64.b64encode(v).decode() for k, v in sorted(keys.items())}},
            indent=2,
        )
        + "\n"
    )
    _write_config(type_name, cls, keys, target)
    expected = {
        "type": type_name,
        "written_by": {
            name: version(name) for name in ("pycoffer", "cofferfile", "naclfile", "fernetfile", "pyzstd")
        }
        | ({"aesfile": version("aesfile")} if type_name == "bank" else {}),
        "python": sys.version.split()[0],
        "added_mtime": ADDED_MTIME,
        "members": members,
    }
    (FIXTURES / f"{type_name}.expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    print(f"{target.relative_to(HERE)}: {target.stat().st_size} bytes, {len(members)} members")


def _write_config(type_name: str, cls: type, keys: dict[str, bytes], target: Path) -> None:
    """The keys as the old CLI's ``generate`` printed them for ~/.pycofferrc."""
    from pycoffer.config import Config

    real_gen_params = cls.__dict__.get("gen_params")
    cls.gen_params = classmethod(lambda _cls: dict(keys))  # the fixture's keys, not fresh ones
    try:
        lines = Config.generate(
            f"legacy-{type_name}", type=type_name.split("-")[0], location=f"tests/legacy/fixtures/{target.name}"
        )
    finally:
        if real_gen_params is None:
            del cls.gen_params
        else:
            cls.gen_params = real_gen_params
    (FIXTURES / f"{type_name}.pycofferrc").write_text("\n".join(lines) + "\n")


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    library_version = version("pycoffer")
    for type_name, (cls, keys) in _types(library_version).items():
        make(type_name, cls, keys, library_version)


if __name__ == "__main__":
    main()
