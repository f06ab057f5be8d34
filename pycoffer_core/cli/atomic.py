"""Output files that appear whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import extraction
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
    part = target.with_name(extraction.part_name(target.name))
    try:
        yield part
        if not force and os.path.lexists(target):
            raise CofferExistsError(f"{target} appeared while it was being written; left it alone")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def create_private(path: Path) -> int:
    """Open a new file for writing, mode 0600, failing if anything is at ``path``."""
    return os.open(path, extraction.NEW_FILE_FLAGS, 0o600)
