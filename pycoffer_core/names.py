"""Member names: relative POSIX paths that can't escape a folder."""

from __future__ import annotations

from .errors import InvalidNameError

#: Longest member name accepted, in UTF-8 bytes (Linux's PATH_MAX).
MAX_NAME_BYTES = 4096
#: Longest single component accepted, in UTF-8 bytes (Linux's NAME_MAX).
MAX_COMPONENT_BYTES = 255


def normalize(arcname: object) -> str:
    """Return the canonical form of a member name, or raise.

    Leading ``/`` and empty or ``.`` components are dropped. A ``..``
    component, a NUL byte, a backslash (a separator on Windows, so a way out
    of the destination there), a name that is not valid Unicode text, or one
    too long raises :class:`InvalidNameError`. A non-``str`` raises
    ``TypeError``.
    """
    if not isinstance(arcname, str):
        raise TypeError(f"a member name must be a str, not {type(arcname).__name__}")
    if "\x00" in arcname:
        raise InvalidNameError(f"member name {arcname!r} contains a NUL byte")
    if "\\" in arcname:
        raise InvalidNameError(
            f"member name {arcname!r} contains a backslash; use '/' to separate folders"
        )
    parts = [part for part in arcname.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidNameError(f"member name {arcname!r} has a '..' component")
    if not parts:
        raise InvalidNameError(f"member name {arcname!r} is empty")
    name = "/".join(parts)
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNameError(f"member name {arcname!r} is not valid Unicode text") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise InvalidNameError(f"member name is longer than {MAX_NAME_BYTES} bytes")
    if len(encoded) > MAX_COMPONENT_BYTES and any(
        len(part.encode("utf-8")) > MAX_COMPONENT_BYTES for part in parts
    ):  # a name this short can't hold a component that long: skip the scan
        raise InvalidNameError(
            f"member name {arcname!r} has a component longer than {MAX_COMPONENT_BYTES} bytes"
        )
    return name


def canonical_from_utf8(raw: bytes) -> str | None:
    """The name ``raw`` encodes if it is one :func:`normalize` returns
    unchanged, else None. Checks the bytes before building a ``str``: an open
    checks every name in its index this way."""
    if not 0 < len(raw) <= MAX_NAME_BYTES or b"\x00" in raw or b"\\" in raw:
        return None
    parts = raw.split(b"/")
    if b"" in parts or b"." in parts or b".." in parts:
        return None
    if len(raw) > MAX_COMPONENT_BYTES and any(len(part) > MAX_COMPONENT_BYTES for part in parts):
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_under(name: str, prefix: str) -> bool:
    """True if member ``name`` lies in the directory ``prefix`` (both normalized)."""
    return name.startswith(prefix + "/")
