"""Key files: a coffer type's raw keys in a small JSON file only its owner can read.

Format (version 1)::

    {"pycoffer_key_file": 1, "type": "bank",
     "keys": {"coffer_key": "<base64>", "secure_key": "<base64>"}}

Written with ``O_EXCL`` and mode 0600, so an existing file is never
overwritten; refused on reading when its group or others may read it (as
ssh does for private keys), because whoever reads it can open the coffer.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from pathlib import Path

from .. import extraction
from .errors import CliError

FORMAT_KEY = "pycoffer_key_file"
VERSION = 1


def write(path: Path, type_name: str, keys: dict[str, bytes]) -> None:
    """Create ``path`` holding ``keys``; refuse if anything exists there."""
    document = {
        FORMAT_KEY: VERSION,
        "type": type_name,
        "keys": {name: base64.b64encode(value).decode("ascii") for name, value in sorted(keys.items())},
    }
    data = (json.dumps(document, indent=2) + "\n").encode("ascii")
    try:
        fd = os.open(path, extraction.NEW_FILE_FLAGS, 0o600)
    except FileExistsError:
        raise CliError(f"{path} exists; refusing to overwrite a key file (choose another path)") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # the umask can only narrow the mode; be sure of it anyway
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def read(path: Path) -> tuple[str, dict[str, bytes]]:
    """The type name and keys in the key file at ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise CliError(f"no key file at {path}") from None
    with open(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if os.name != "nt" and mode & 0o077:
            raise CliError(
                f"key file {path} may be read by others (mode {stat.S_IMODE(mode):04o}); "
                f"make it private with: chmod 600 {path}"
            )
        raw = handle.read(64 * 1024)
    try:
        document = json.loads(raw)
        if document.get(FORMAT_KEY) != VERSION:
            raise ValueError(f"{FORMAT_KEY} is not {VERSION}")
        type_name = document["type"]
        encoded = document["keys"]
        if not isinstance(type_name, str) or not isinstance(encoded, dict):
            raise ValueError("type or keys have the wrong kind")
        keys = {str(name): base64.b64decode(value, validate=True) for name, value in encoded.items()}
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise CliError(f"{path} is not a pycoffer key file ({exc})") from None
    return type_name, keys
