"""Default lock: ``filelock`` on ``<coffer>.lock``."""

from __future__ import annotations

from pathlib import Path

from ..hookspecs import hookimpl
from ..locking import FileCofferLock


@hookimpl(trylast=True)
def pycoffer_lock(path: Path, lock_timeout: float) -> FileCofferLock:
    return FileCofferLock(path, lock_timeout)
