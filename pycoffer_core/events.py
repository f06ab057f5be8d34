"""What the commit hooks are told."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CommitEvent:
    """One commit of one coffer.

    ``seq`` is the commit's sequence number (it grows by one per commit),
    ``changed`` the member names written or appended, ``deleted`` the names
    removed, and ``compaction`` is True for the commit that rewrites the file.
    """

    path: Path
    type: str
    seq: int
    changed: tuple[str, ...]
    deleted: tuple[str, ...]
    compaction: bool = False
