"""Choosing members by name: an exact member, or every member under a folder prefix."""

from __future__ import annotations

from collections.abc import Iterable

from .. import names
from ..coffer import CofferInfo
from ..errors import MemberNotFoundError


def under(members: Iterable[CofferInfo], pattern: str) -> list[CofferInfo]:
    """The member named ``pattern``, or else those in the folder ``pattern``."""
    name = names.normalize(pattern)
    chosen = [info for info in members if info.name == name]
    return chosen or [info for info in members if names.is_under(info.name, name)]


def select(members: list[CofferInfo], patterns: Iterable[str], where: object) -> list[CofferInfo]:
    """Members matching any pattern, in name order; every pattern must match something."""
    picked: dict[str, CofferInfo] = {}
    for pattern in patterns:
        found = under(members, pattern)
        if not found:
            raise MemberNotFoundError(f"no member or folder {names.normalize(pattern)!r} in {where}")
        picked.update((info.name, info) for info in found)
    return [picked[name] for name in sorted(picked)]
