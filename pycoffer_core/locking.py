"""Locks between processes."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import filelock

from .errors import LockTimeoutError


class CofferLock(Protocol):
    """What a lock plugin returns: acquired once, released once."""

    def acquire(self) -> None:
        """Take the lock, or raise :class:`LockTimeoutError` (a ``TimeoutError``)."""

    def release(self) -> None:
        """Give the lock back. Never removes a lock this object does not hold."""


class FileCofferLock:
    """An exclusive ``flock`` on ``<coffer>.lock`` through ``filelock``.

    The lock file is left in place on release: removing it could free a lock
    that another process has just taken on the same path.
    """

    def __init__(self, path: Path, lock_timeout: float) -> None:
        self.lock_path = Path(f"{path}.lock")
        self.lock_timeout = lock_timeout
        # thread_local=False: the coffer may be closed from another thread than
        # the one that opened it.
        self._lock = filelock.FileLock(
            self.lock_path, timeout=lock_timeout, thread_local=False, preserve_lock_file=True
        )

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise LockTimeoutError(
                f"{self.lock_path} is held by another process (waited {self.lock_timeout:g} s); "
                "close the coffer there, or wait longer",
                lock_path=str(self.lock_path),
            ) from None

    def release(self) -> None:
        self._lock.release()
