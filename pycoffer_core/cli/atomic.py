"""Output files that appear whole or not at all."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import CofferExistsError
from .errors import CliError


@contextmanager
def replacing(target: Path, *, force: bool) -> Iterator[Path]:
    """A hidden part-file path beside ``target``, renamed over it if the block succeeds.

    If the block raises (or is interrupted), the part file is removed and
    ``target`` is untouched. Without ``force`` an existing ``target`` is an
    error, checked first.
    """
    if not force and os.path.lexists(target):
        raise CofferExistsError(f"{target} exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise CliError(f"folder {target.parent} does not exist (for {target})")
    part = target.with_name(f".{target.name[:200]}.{secrets.token_hex(4)}.pycoffer-part")
    try:
        yield part
        if not force and os.path.lexists(target):
            raise CofferExistsError(f"{target} appeared while it was being written; left it alone")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def create_private(path: Path) -> int:
    """Open a new file for writing, mode 0600, failing if anything is at ``path``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o600)
