"""From a coffer path and the user's credentials to an open :class:`Coffer`.

The type comes from the coffer's header, so only ``init`` needs ``--type``.
Credentials, in order: ``--key-file``; else, for a type with keys, the
passphrase (``PYCOFFER_PASSPHRASE``, or asked up to three times on the
terminal); a type without keys needs none.

Changes are committed once, when the command's ``with`` block ends without
an error: an error or Ctrl-C leaves the coffer at its last commit. Read-only
commands take no lock (they read a snapshot), so they neither wait for nor
block a writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import plugins
from ..coffer import Coffer
from ..errors import WrongKeyError
from . import keyfile, passphrases
from .errors import CliError
from .state import current

PROMPT_ATTEMPTS = 3


def type_has_keys(type_name: str) -> bool:
    """True if coffers of this type need keys (or a passphrase); :class:`UnknownTypeError` if not installed."""
    return bool(plugins.find_type(type_name).key_params)


def _open(path: Path, mode: str, type_name: str, credentials: dict[str, Any]) -> Coffer:
    return Coffer.open(
        path,
        mode,
        type=type_name,
        auto_flush=False,
        lock_timeout=current().lock_timeout,
        lock_type="w" if mode == "r" else "rw",
        **credentials,
    )


def key_file_credentials(key_file: Path, type_name: str) -> dict[str, bytes]:
    """The raw keys in ``key_file``, checked to be for ``type_name``."""
    file_type, keys = keyfile.read(key_file)
    if file_type != type_name:
        raise CliError(f"key file {key_file} is for type {file_type!r}, but the coffer is of type {type_name!r}")
    return keys


def open_coffer(
    path: Path, mode: str, *, key_file: Path | None = None, passphrase: str | None = None
) -> Coffer:
    """Open the existing coffer at ``path`` in ``mode`` (``r`` or ``a``).

    ``passphrase`` overrides the environment and the prompt (for commands
    that already asked for one). Raises the core's errors: missing coffer,
    unknown type, wrong passphrase, lock held...
    """
    type_name = Coffer.type_of(path)
    if not type_has_keys(type_name):
        if key_file is not None:
            raise CliError(f"{path} is of type {type_name!r}, which has no keys: drop --key-file")
        return _open(path, mode, type_name, {})
    if key_file is not None:
        return _open(path, mode, type_name, key_file_credentials(key_file, type_name))
    if passphrase is not None:
        return _open_with_passphrase(path, mode, type_name, passphrase)
    value, asked = passphrases.existing(f"Passphrase for {path}")
    attempts = PROMPT_ATTEMPTS if asked else 1
    for attempt in range(1, attempts + 1):
        try:
            return _open_with_passphrase(path, mode, type_name, value)
        except WrongKeyError:
            if attempt == attempts:
                raise
            passphrases.warn("wrong passphrase, try again")
            value, _ = passphrases.existing(f"Passphrase for {path}")
    raise AssertionError("unreachable")


def _open_with_passphrase(path: Path, mode: str, type_name: str, value: str) -> Coffer:
    try:
        return _open(path, mode, type_name, {"password": value})
    except WrongKeyError as exc:
        raise WrongKeyError(f"{path}: {exc}") from None


@contextmanager
def opened(path: Path, mode: str, *, key_file: Path | None = None, passphrase: str | None = None) -> Iterator[Coffer]:
    """:func:`open_coffer` for a ``with`` block: commit at its end, discard on error."""
    with open_coffer(path, mode, key_file=key_file, passphrase=passphrase) as coffer:
        yield coffer
