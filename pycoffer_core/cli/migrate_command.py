"""``pycoffer migrate``: copy a coffer of the old ``pycoffer`` library into a new coffer."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import click

from ..coffer import Coffer
from ..errors import CofferExistsError, InvalidArgumentError
from ..legacy import LEGACY_TYPES, MigrationReport, migrate as migrate_coffer, open_legacy, read_legacy_keys
from ..legacy.formats import find_format
from . import keyfile, passphrases, progress
from .errors import CliError
from .opening import type_has_keys
from .options import quiet_option
from .state import current, note


def _legacy_keys(
    key_file: Path | None, section: str | None, old: Path, legacy_type: str | None
) -> tuple[str, dict[str, bytes]]:
    if key_file is None:
        if legacy_type is None:
            raise click.UsageError("say which old type OLD is with --from (bank, store, market, null, bank-fernet)")
        needed = find_format(legacy_type).key_params
        if needed:
            raise CliError(
                f"a legacy {legacy_type} coffer is opened by its {' and '.join(needed)}: give the old config "
                "(e.g. ~/.pycofferrc) or a JSON file of base64 keys with --legacy-key-file"
            )
        return legacy_type, {}
    try:
        mode = key_file.stat().st_mode
    except FileNotFoundError:
        raise CliError(f"no key file at {key_file}") from None
    if os.name != "nt" and mode & 0o077:
        note(f"{key_file} may be read by others (mode {stat.S_IMODE(mode):04o}): chmod 600 {key_file}")
    try:
        found = read_legacy_keys(key_file, section=section, coffer=old)
    except InvalidArgumentError as exc:
        raise CliError(str(exc)) from None
    if legacy_type is None:
        if found.type is None:
            raise click.UsageError(f"{key_file} does not say the old type: give it with --from")
        return found.type, found.keys
    if found.type is not None and found.type != legacy_type and {found.type, legacy_type} != {"bank", "bank-fernet"}:
        raise CliError(f"{key_file} holds keys of a {found.type} coffer, but --from says {legacy_type}")
    return legacy_type, found.keys


def _new_credentials(new: Path, type_name: str, key_file: Path | None) -> dict[str, object]:
    if not type_has_keys(type_name):
        if key_file is not None:
            raise CliError(f"type {type_name!r} has no keys: drop --key-file")
        return {}
    if key_file is None:
        return {"password": passphrases.new(f"New passphrase for {new}", passphrases.PASSPHRASE_ENV)}
    if key_file.exists():
        raise CliError(f"{key_file} exists; refusing to overwrite a key file (choose another path)")
    return dict(Coffer.gen_params(type_name))


def _show(report: MigrationReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(report.summary())


@click.command(short_help="Copy a coffer of the old 'pycoffer' library into a new coffer.")
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--from",
    "legacy_type",
    type=click.Choice(LEGACY_TYPES),
    help="The old coffer's type (bank-fernet: the bank of pycoffer 0.0.x). "
    "Optional when the key file names it.",
)
@click.option(
    "--legacy-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The old keys: the old library's config (INI, base64 keys, e.g. ~/.pycofferrc) "
    "or a JSON object of base64 keys. Not needed for null.",
)
@click.option(
    "--legacy-section",
    metavar="NAME",
    help="The section of the INI config to use, when it holds several coffers "
    "(default: the only one, or the one whose location is OLD).",
)
@click.option("-t", "--type", "type_name", required=True, metavar="TYPE", help="The new coffer's type, e.g. bank.")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Instead of a passphrase, make fresh keys for NEW and write them to this new file (mode 0600).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@quiet_option
def migrate(
    old: Path,
    new: Path,
    legacy_type: str | None,
    legacy_key_file: Path | None,
    legacy_section: str | None,
    type_name: str,
    key_file: Path | None,
    as_json: bool,
) -> None:
    """Copy OLD, a coffer of the old 'pycoffer' library (0.1.x or 0.0.x), into a new coffer NEW.

    Every member is copied with its mtime, then NEW is read back and checked
    member by member against OLD. OLD is only read, never changed. Members
    whose names would leave a folder ('../x', '/abs'), and links, are
    skipped and listed; old plugin data (.plugins/passwd, a pickle) is
    copied as an opaque member, never loaded. NEW must not exist; if
    anything fails it is removed again.

    NEW is opened by a new passphrase (asked twice, or PYCOFFER_PASSPHRASE),
    or by fresh keys written to --key-file; a type without keys needs neither.

    \b
      pycoffer migrate old.pcof vault.coffer --from bank --legacy-key-file ~/.pycofferrc --type bank
      pycoffer migrate public.pcof public.coffer --from null --type null
    """
    type_has_keys(type_name)  # an unknown type fails now, naming the distribution to install
    if os.path.lexists(new):
        raise CofferExistsError(f"{new} exists; migrate writes a new coffer (choose another path)")
    legacy_type, legacy_keys = _legacy_keys(legacy_key_file, legacy_section, old, legacy_type)
    find_format(legacy_type).check_keys(legacy_keys)  # a key of the wrong size fails before any prompt
    credentials = _new_credentials(new, type_name, key_file)
    with progress.spinner(f"reading {old}"):
        legacy = open_legacy(old, type=legacy_type, **legacy_keys)
    total = sum(info.filesize for info in legacy.getmembers())

    if key_file is not None:
        keyfile.write(key_file, type_name, credentials)  # type: ignore[arg-type]
    try:
        with progress.bytes_bar(2 * total, "migrating") as bar:

            def advance(phase: str, name: str, count: int) -> None:
                bar.label(f"{phase} {name}")
                bar.advance(count)

            report = migrate_coffer(
                legacy, new, type=type_name, progress=advance, lock_timeout=current().lock_timeout, **credentials
            )
    except BaseException:
        if key_file is not None:
            key_file.unlink(missing_ok=True)  # keys to a coffer that was never made
        raise
    _show(report, as_json)
    if key_file is not None:
        note(f"the keys of {new} are in {key_file}: keep that file safe")
