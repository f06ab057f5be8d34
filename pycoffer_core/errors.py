"""The exceptions PyCoffer raises on purpose.

Every one is a :class:`CofferError`. Where a builtin exception fits, the class
inherits it too, so ``except FileNotFoundError`` keeps working for code that
does not know PyCoffer.
"""

from __future__ import annotations

import io


class CofferError(Exception):
    """Root of every error PyCoffer raises on purpose."""


class IntegrityError(CofferError):
    """The coffer is damaged, was tampered with, or the key is wrong.

    Raised only for data that is complete on disk and fails a check; an
    interrupted commit at the end of the file is not damage.
    """


class WrongKeyError(IntegrityError):
    """The key or passphrase does not open this coffer."""


class KdfLimitError(IntegrityError, ValueError):
    """The coffer's key slots ask for more key-derivation work (memory,
    iterations, lanes) than this reader allows: the file may be hostile."""


class NotACofferError(CofferError, ValueError):
    """The file is not a coffer, or is of a format version this code can't read."""


class WrongTypeError(CofferError, ValueError):
    """The coffer is of another type than the one asked for."""

    def __init__(self, message: str, *, actual: str) -> None:
        super().__init__(message)
        self.actual = actual


class UnknownTypeError(CofferError, LookupError):
    """No installed plugin provides the coffer type asked for."""


class DuplicateTypeError(CofferError, ValueError):
    """Two plugins register the same coffer type name."""


class InvalidNameError(CofferError, ValueError):
    """A member name is empty, escapes the coffer, or holds forbidden characters."""


class InvalidArgumentError(CofferError, ValueError):
    """An argument has a value the call does not accept (a mode, a key...)."""


class MemberNotFoundError(CofferError, FileNotFoundError):
    """No member of that name (or under that directory prefix)."""


class MemberExistsError(CofferError, FileExistsError):
    """The member exists and the call was told not to replace it."""


class CofferNotFoundError(CofferError, FileNotFoundError):
    """The coffer file does not exist (mode ``r``), or a source path is missing."""


class CofferExistsError(CofferError, FileExistsError):
    """The coffer file exists and mode ``x`` was asked for."""


class ReadOnlyError(CofferError, io.UnsupportedOperation):
    """A change was asked of a coffer opened read-only."""


class ClosedCofferError(CofferError, io.UnsupportedOperation):
    """The coffer (or member file) is closed, or a member file can't go on:
    one of its writes failed, or the coffer was closed under it. Its member
    is left as it was."""


class LockTimeoutError(CofferError, TimeoutError):
    """Another process holds the coffer's lock for longer than ``lock_timeout``.

    ``lock_path`` names the lock file (None if the lock is not a file).
    """

    def __init__(self, message: str, *, lock_path: str | None = None) -> None:
        super().__init__(message)
        self.lock_path = lock_path


class UnsafePathError(CofferError, ValueError):
    """Extraction would write outside its destination, through a symbolic link
    or over the coffer itself, or needs one path as both a file and a folder;
    or a file being added was swapped (for a link, or another file) after the
    tree was read."""


class CofferBrokenError(CofferError, OSError):
    """An I/O error (or an interrupt) hit a commit; the coffer must be closed and opened again.

    What was committed before is safe on disk; the open object no longer
    knows whether the last commit reached the disk, so it refuses to go on.
    """


class MissingDependencyError(CofferError, ImportError):
    """A feature needs an optional package that is not installed."""
