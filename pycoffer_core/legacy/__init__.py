"""Reading coffers written by the old ``pycoffer`` library, and migrating them.

>>> from pycoffer_core.legacy import open_legacy, migrate
>>> with open_legacy("old.pcof", type="bank", coffer_key=ck, secure_key=sk) as old:  # doctest: +SKIP
...     for info in old.getmembers():
...         print(info.name, info.filesize)
>>> report = migrate("old.pcof", "new.coffer", legacy_type="bank",       # doctest: +SKIP
...                  legacy_params={"coffer_key": ck, "secure_key": sk},
...                  type="bank", password="a new passphrase")

Built on ``cryptography``, ``pynacl``, ``pyzstd`` and the standard library
only: the old library is not needed. See ``docs/migrating.md``.
"""

from .formats import FORMATS
from .keys import LegacyKeys, read_legacy_keys
from .migrate import MigratedMember, MigrationReport, migrate
from .reader import (
    LegacyChangedError,
    LegacyCoffer,
    LegacyInfo,
    LegacyTruncatedError,
    SkippedEntry,
    open_legacy,
)

#: The legacy type names :func:`open_legacy` knows.
LEGACY_TYPES: tuple[str, ...] = tuple(FORMATS)

__all__ = [
    "LEGACY_TYPES",
    "LegacyChangedError",
    "LegacyCoffer",
    "LegacyInfo",
    "LegacyKeys",
    "LegacyTruncatedError",
    "MigratedMember",
    "MigrationReport",
    "SkippedEntry",
    "migrate",
    "open_legacy",
    "read_legacy_keys",
]
