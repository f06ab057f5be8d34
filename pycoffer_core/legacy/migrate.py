"""Copying an old coffer into a new PyCoffer coffer, verified member by member."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import plugins
from ..coffer import Coffer
from ..errors import CofferExistsError, IntegrityError, InvalidArgumentError
from .reader import LegacyCoffer, LegacyInfo, SkippedEntry, open_legacy

_BLOCK = 1 << 20

#: ``progress(phase, name, count)``: ``count`` more bytes of member ``name``
#: were copied (``phase`` ``"copy"``) or checked (``"verify"``).
Progress = Callable[[str, str, int], None]


@dataclass(frozen=True)
class MigratedMember:
    name: str
    size: int
    mtime_ns: int
    sha256: str
    plugin_data: bool


@dataclass
class MigrationReport:
    """What :func:`migrate` did: the members copied and verified, and the entries it skipped."""

    source: str
    destination: str
    legacy_type: str
    type: str
    members: list[MigratedMember] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)

    @property
    def plugin_data(self) -> list[str]:
        """Members an old plugin kept (e.g. ``.plugins/passwd``, a pickle): copied as opaque bytes, never read."""
        return [m.name for m in self.members if m.plugin_data]

    @property
    def total_bytes(self) -> int:
        return sum(m.size for m in self.members)

    def summary(self) -> str:
        """A few lines for a person: what was copied, what was skipped and why."""
        lines = [
            f"migrated {len(self.members)} members ({self.total_bytes} bytes) from {self.source} "
            f"(legacy {self.legacy_type}) to {self.destination} ({self.type}); every member verified "
            "(content, size and mtime)"
        ]
        if self.plugin_data:
            lines.append(
                "copied as opaque members, not interpreted (old plugin data; a Python pickle is never loaded): "
                + ", ".join(self.plugin_data)
            )
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} entries of the old coffer:")
            lines += [f"  {entry.name!r}: {entry.reason}" for entry in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "legacy_type": self.legacy_type,
            "type": self.type,
            "members": [
                {"name": m.name, "size": m.size, "mtime_ns": m.mtime_ns, "sha256": m.sha256, "plugin_data": m.plugin_data}
                for m in self.members
            ],
            "plugin_data": self.plugin_data,
            "skipped": [{"name": s.name, "reason": s.reason} for s in self.skipped],
        }


def _copy(legacy: LegacyCoffer, coffer: Coffer, progress: Progress | None) -> None:
    for info, stream in legacy.iter_members():
        with coffer.file(info.name, "wb", mtime_ns=info.mtime_ns) as out:
            while block := stream.read(_BLOCK):
                out.write(block)
                if progress is not None:
                    progress("copy", info.name, len(block))


def _verify(legacy: LegacyCoffer, coffer: Coffer, progress: Progress | None) -> None:
    expected = {info.name: info for info in legacy.getmembers()}
    found = {info.name: info for info in coffer.getmembers()}
    if set(found) != set(expected):
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        raise IntegrityError(f"the new coffer's members differ from the old one's (missing {missing}, extra {extra})")
    for name, old in expected.items():
        new = found[name]
        if new.filesize != old.filesize or new.mtime_ns != old.mtime_ns:
            raise IntegrityError(
                f"member {name!r}: the new coffer has {new.filesize} bytes, mtime {new.mtime_ns} ns; "
                f"the old one {old.filesize} bytes, mtime {old.mtime_ns} ns"
            )
        digest = hashlib.sha256()
        with coffer.file(name, "rb") as stream:
            while block := stream.read(_BLOCK):
                digest.update(block)
                if progress is not None:
                    progress("verify", name, len(block))
        if digest.hexdigest() != old.sha256:
            raise IntegrityError(f"member {name!r} reads back from the new coffer with other content than the old one")


def _member(info: LegacyInfo) -> MigratedMember:
    return MigratedMember(info.name, info.filesize, info.mtime_ns, info.sha256, info.plugin_data)


def migrate(
    src: str | os.PathLike[str] | LegacyCoffer,
    dst: str | os.PathLike[str],
    *,
    legacy_type: str | None = None,
    legacy_params: Mapping[str, bytes] | None = None,
    type: str,
    progress: Progress | None = None,
    **params: Any,
) -> MigrationReport:
    """Copy the old coffer ``src`` into a new coffer ``dst`` of ``type``; return a report.

    ``legacy_type`` and ``legacy_params`` (the old raw keys) open ``src``
    as :func:`~pycoffer_core.legacy.open_legacy` does; ``src`` may also be a
    :class:`LegacyCoffer` already open. ``params`` open the new coffer (its
    raw keys, or ``password=``), as in :meth:`Coffer.open`.

    Every member is copied with its mtime; entries that can't be members
    (names that would escape, links) are skipped and listed in the report,
    and old plugin data (``.plugins/...``, pickles) is copied as opaque
    bytes, never loaded. The new coffer is then reopened and each member
    checked against the old one (content, size, mtime). ``src`` is only
    read. ``dst`` must not exist; if anything fails, it is removed again,
    and the error raised.
    """
    if isinstance(src, LegacyCoffer):
        if legacy_type not in (None, src.type) or legacy_params:
            raise InvalidArgumentError("src is an open LegacyCoffer: don't pass legacy_type or legacy_params")
        legacy = src
    else:
        if legacy_type is None:
            raise InvalidArgumentError("legacy_type is needed: bank, bank-fernet, store, market or null")
        legacy = None
    target = Path(os.fspath(dst)).absolute()
    plugins.find_type(type)  # an unknown type fails before the long read
    if os.path.lexists(target):
        raise CofferExistsError(f"{target} exists; migrate writes a new coffer (choose another path)")
    if legacy is None:
        legacy = open_legacy(src, type=legacy_type, **dict(legacy_params or {}))  # type: ignore[arg-type]
    if Path(legacy.name) == target:
        raise InvalidArgumentError("the new coffer can't be the old one")
    options: dict[str, Any] = {"auto_flush": False, **params}
    created = False
    try:
        with Coffer.open(target, "x", type=type, **options) as coffer:
            created = True
            _copy(legacy, coffer, progress)
        with Coffer.open(target, "r", type=type, **params) as coffer:
            _verify(legacy, coffer, progress)
    except BaseException:
        if created:
            target.unlink(missing_ok=True)
        raise
    return MigrationReport(
        legacy.name,
        str(target),
        legacy.type,
        type,
        [_member(info) for info in legacy.getmembers()],
        legacy.skipped,
    )
