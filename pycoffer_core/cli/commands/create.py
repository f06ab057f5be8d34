"""``pycoffer init``: create a coffer."""

from __future__ import annotations

from pathlib import Path

import click

from ...coffer import Coffer
from ...errors import CofferExistsError
from .. import keyfile, passphrases
from ..errors import CliError
from ..opening import type_has_keys
from ..options import coffer_argument
from ..state import current, note


def _complete_type(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [info.name for info in Coffer.types() if info.name.startswith(incomplete)]


@click.command()
@coffer_argument
@click.option(
    "-t",
    "--type",
    "type_name",
    required=True,
    metavar="TYPE",
    shell_complete=_complete_type,
    help="The coffer type (see 'pycoffer types'), e.g. bank.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Instead of a passphrase, make fresh keys and write them to this new file "
    "(mode 0600; an existing file is never overwritten).",
)
def init(coffer: Path, type_name: str, key_file: Path | None) -> None:
    """Create a new, empty coffer FILE of type TYPE.

    For a type with keys, asks twice for a new passphrase (or reads
    PYCOFFER_PASSPHRASE); with --key-file, writes fresh random keys to a new
    key file instead. Keep that file safe and private: it opens the coffer,
    and without it (or a passphrase added later with 'pycoffer keys FILE add')
    the coffer can't be opened. A type without keys (null) needs neither.
    An existing FILE is never overwritten.

    \b
      pycoffer init vault.coffer --type bank
      pycoffer init vault.coffer --type bank --key-file ~/.vault.key
    """
    has_keys = type_has_keys(type_name)  # unknown type: says which distribution to install
    if coffer.exists():
        raise CofferExistsError(f"{coffer} exists; refusing to overwrite it")
    options = {"auto_flush": False, "lock_timeout": current().lock_timeout}
    if not has_keys:
        if key_file is not None:
            raise CliError(f"type {type_name!r} has no keys: drop --key-file")
        Coffer.open(coffer, "x", type=type_name, **options).close()
        note(f"created {coffer} (type {type_name}, not encrypted)")
        return
    if key_file is None:
        password = passphrases.new(f"New passphrase for {coffer}", passphrases.PASSPHRASE_ENV)
        Coffer.open(coffer, "x", type=type_name, password=password, **options).close()
        note(f"created {coffer} (type {type_name}, opened by a passphrase)")
        return
    keys = Coffer.gen_params(type_name)
    keyfile.write(key_file, type_name, keys)
    try:
        Coffer.open(coffer, "x", type=type_name, **keys, **options).close()
    except BaseException:
        key_file.unlink(missing_ok=True)  # keys to a coffer that was never made
        raise
    note(f"created {coffer} (type {type_name}); its keys are in {key_file}: keep that file safe")
