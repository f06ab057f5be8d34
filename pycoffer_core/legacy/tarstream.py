"""Walking the tar inside an old coffer, one member at a time (``tarfile`` in stream mode).

Upstream wrote a PAX tar of regular files (a float ``mtime`` in each PAX
header). Stream mode reads it front to back with a small buffer, never
seeking, so the decrypting and decompressing layers below need no index.
Only regular files become members; anything else, and any name that would
leave a destination folder, is reported and skipped.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from .. import names
from ..errors import InvalidNameError

_INT64 = 1 << 63


@dataclass(frozen=True)
class TarEntry:
    """One entry of the tar. ``name`` is ``None`` when it is skipped, with ``reason``."""

    index: int
    raw_name: str
    name: str | None
    reason: str | None
    stored_size: int
    mtime_ns: int


def mtime_ns(info: tarfile.TarInfo) -> int:
    """The entry's mtime in nanoseconds, exact from the PAX decimal when there is one."""
    text = info.pax_headers.get("mtime")
    if text is not None:
        try:
            value = int(Decimal(text).scaleb(9).to_integral_value())
        except (InvalidOperation, ValueError, OverflowError):
            value = None
        if value is not None and -_INT64 <= value < _INT64:
            return value
    return max(-_INT64, min(_INT64 - 1, int(info.mtime) * 1_000_000_000))


def _escapes(raw: str) -> str | None:
    """Why ``raw`` can't be a member name, or ``None`` if it can."""
    if raw.startswith("/"):
        return "absolute name"
    if ".." in raw.split("/"):
        return "name with a '..' component"
    try:
        names.normalize(raw)
    except InvalidNameError as exc:
        return str(exc)
    return None


def _kind(info: tarfile.TarInfo) -> str | None:
    if info.isreg():
        return None
    if info.isdir():
        return "a folder entry (folders are implied by member names)"
    if info.issym():
        return f"a symbolic link (to {info.linkname!r})"
    if info.islnk():
        return f"a hard link (to {info.linkname!r})"
    return "not a regular file (device, fifo or unknown entry type)"


def entries(stream: BinaryIO) -> Iterator[tuple[TarEntry, BinaryIO | None]]:
    """Each entry of the tar in ``stream``, with its data (regular files only).

    The data must be read before the next entry is asked for. After the
    last entry the rest of ``stream`` (tar padding) is read to its end, so
    the layers below report a stream that stops early. Raises
    ``tarfile.TarError`` on a damaged tar, :class:`TarTruncatedError` if it
    lacks its end-of-archive blocks.
    """
    counted = _Counting(stream)
    with tarfile.open(fileobj=counted, mode="r|", encoding="utf-8", errors="surrogateescape") as tar:  # type: ignore[call-overload]
        index = 0
        while True:
            info = tar.next()
            if info is None:
                break
            # Stream mode keeps every TarInfo it has seen; forget them so that
            # memory does not grow with the number of members.
            tar.members = []
            raw = info.name
            reason = _escapes(raw) or _kind(info)
            name = None if reason else names.normalize(raw)
            entry = TarEntry(index, raw, name, reason, info.size, mtime_ns(info))
            yield entry, (tar.extractfile(info) if name is not None else None)  # type: ignore[misc]
            index += 1
        end = tar.offset
    while counted.read(1 << 16):
        pass
    # tarfile takes a missing or partial header where the next entry should
    # be for the end of the archive; upstream always wrote two zero blocks
    # there, so their absence means the tar was cut short.
    if counted.total - end < 2 * tarfile.BLOCKSIZE:
        raise TarTruncatedError("the tar inside ends without its end-of-archive blocks")


class TarTruncatedError(tarfile.ReadError):
    """The tar stops where an entry or its end-of-archive marker should be."""


class _Counting:
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.total += len(data)
        return data
