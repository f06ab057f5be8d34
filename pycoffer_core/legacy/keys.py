"""The old keys, from the files people kept them in.

* The old library's INI config (pycoffer 0.1.4, ``~/.pycofferrc``): one
  section per coffer with ``type``, ``location`` and base64 ``coffer_key`` /
  ``secure_key``::

      [confidential]
      type = bank
      coffer_key = <base64>
      secure_key = <base64>
      location = /path/file.pcof

* JSON, base64 values: ``{"coffer_key": "...", "secure_key": "..."}``, or
  ``{"type": "bank", "keys": {...}}`` (the shape of PyCoffer's key files and
  of the legacy test fixtures).

(The YAML config of the unreleased upstream HEAD is not read: copy its
``!!binary`` values into the JSON form.)
"""

from __future__ import annotations

import base64
import binascii
import configparser
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CofferNotFoundError, InvalidArgumentError

_MAX_FILE = 1 << 20


@dataclass(frozen=True)
class LegacyKeys:
    """Keys read from a file: the type it names (if any), the raw keys, and where they came from."""

    type: str | None
    keys: dict[str, bytes]
    section: str | None = None


def _decode(name: str, value: object, path: Path) -> bytes:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{path}: {name} must be a base64 string")
    text = value.strip()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:  # a Fernet key pasted as is is url-safe base64
        return base64.urlsafe_b64decode(text)
    except (binascii.Error, ValueError):
        raise InvalidArgumentError(f"{path}: {name} is not base64") from None


def _refine_type(type_name: str | None, keys: dict[str, bytes]) -> str | None:
    # pycoffer 0.0.x called its Fernet bank "bank" too; its coffer_key (a
    # Fernet key, 44 characters) tells it apart from an AES key.
    if type_name == "bank" and len(keys.get("coffer_key", b"")) == 44:
        return "bank-fernet"
    return type_name


def _from_json(document: object, path: Path) -> LegacyKeys:
    if not isinstance(document, dict):
        raise InvalidArgumentError(f"{path}: a JSON key file holds an object of base64 keys")
    type_name = document.get("type")
    raw = document.get("keys", {k: v for k, v in document.items() if k.endswith("_key")})
    if not isinstance(raw, dict) or (type_name is not None and not isinstance(type_name, str)):
        raise InvalidArgumentError(f"{path}: 'keys' must be an object and 'type' a string")
    keys = {str(name): _decode(name, value, path) for name, value in raw.items()}
    return LegacyKeys(_refine_type(type_name, keys), keys)


def _same_file(location: str, target: Path, section: str) -> bool:
    place = Path(os.path.expanduser(location))
    if place.is_dir():  # the old Config turned a folder into <folder>/.<section>
        place = place / f".{section}"
    try:
        return place.resolve() == target.resolve()
    except OSError:
        return False


def _from_ini(text: str, path: Path, section: str | None, coffer: Path | None) -> LegacyKeys:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise InvalidArgumentError(f"{path} is neither JSON nor an INI config: {exc}") from None
    sections = [s for s in parser.sections() if any(k.endswith("_key") for k in parser[s]) or "type" in parser[s]]
    if section is None:
        matching = sections
        if len(sections) > 1 and coffer is not None:
            matching = [s for s in sections if "location" in parser[s] and _same_file(parser[s]["location"], coffer, s)]
        if len(matching) != 1:
            listed = ", ".join(sections) or "none"
            raise InvalidArgumentError(
                f"{path} has several coffer sections ({listed}) and none is clearly for "
                f"{coffer or 'this coffer'}: name one (--legacy-section)"
                if sections
                else f"{path} has no coffer section with keys"
            )
        section = matching[0]
    if section not in parser:
        raise InvalidArgumentError(f"{path} has no section [{section}]; it has {', '.join(sections) or 'none'}")
    values = parser[section]
    keys = {name: _decode(name, values[name], path) for name in values if name.endswith("_key")}
    return LegacyKeys(_refine_type(values.get("type"), keys), keys, section)


def read_legacy_keys(
    path: str | os.PathLike[str], *, section: str | None = None, coffer: str | os.PathLike[str] | None = None
) -> LegacyKeys:
    """Read the old keys from ``path`` (JSON, or the old library's INI config).

    In an INI file with several coffers, ``section`` names one; otherwise
    the only section, or the one whose ``location`` is ``coffer``, is taken.
    Raises :class:`CofferNotFoundError` or :class:`InvalidArgumentError`.
    """
    path = Path(os.fspath(path))
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_FILE + 1)
    except FileNotFoundError:
        raise CofferNotFoundError(f"no key file at {path}") from None
    if len(data) > _MAX_FILE:
        raise InvalidArgumentError(f"{path} is too large to be a key file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgumentError(f"{path} is not a text key file") from None
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"{path} is not valid JSON: {exc}") from None
        return _from_json(document, path)
    return _from_ini(text, path, section, Path(os.fspath(coffer)) if coffer is not None else None)
