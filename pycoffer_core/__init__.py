"""PyCoffer: encrypted, compressed files of many members, usable live.

>>> from pycoffer_core import Coffer
>>> with Coffer.open("vault.coffer", "w", type="null") as store:  # doctest: +SKIP
...     store.write("notes/todo.txt", b"buy milk")

Backends (coffer types) are plugins found through the ``pycoffer``
entry-point group; see :mod:`pycoffer_core.hookspecs` for writing one.
"""

from .coffer import Coffer, CofferInfo
from .legacy import migrate
from .errors import (
    ClosedCofferError,
    CofferBrokenError,
    CofferError,
    CofferExistsError,
    CofferNotFoundError,
    DuplicateTypeError,
    IntegrityError,
    InvalidArgumentError,
    InvalidNameError,
    KdfLimitError,
    LockTimeoutError,
    MemberExistsError,
    MemberNotFoundError,
    NotACofferError,
    ReadOnlyError,
    UnknownTypeError,
    UnsafePathError,
    WrongKeyError,
    WrongTypeError,
)
from .events import CommitEvent
from .hookspecs import hookimpl
from .layers import ChainLayer, Layer, PlainLayer, ZstdLayer
from .types import CofferType, TypeInfo

__version__ = "0.1.0"

__all__ = [
    "ChainLayer",
    "ClosedCofferError",
    "Coffer",
    "CofferBrokenError",
    "CofferError",
    "CofferExistsError",
    "CofferInfo",
    "CofferNotFoundError",
    "CofferType",
    "CommitEvent",
    "DuplicateTypeError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidNameError",
    "KdfLimitError",
    "Layer",
    "LockTimeoutError",
    "MemberExistsError",
    "MemberNotFoundError",
    "NotACofferError",
    "PlainLayer",
    "ReadOnlyError",
    "TypeInfo",
    "UnknownTypeError",
    "UnsafePathError",
    "WrongKeyError",
    "WrongTypeError",
    "ZstdLayer",
    "hookimpl",
    "migrate",
]
