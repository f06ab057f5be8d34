"""``pycoffer passwd`` and ``pycoffer keys``: the passphrases that open a coffer.

A passphrase unlocks a *key slot*: the coffer's keys wrapped by Argon2id.
Changing, adding or removing one rewrites only the slots, never the data.
"""

from __future__ import annotations

from pathlib import Path

import click

from ...coffer import Coffer
from .. import output, passphrases
from ..errors import CliError
from ..opening import opened, type_has_keys
from ..options import coffer_argument, json_option, key_file_option
from ..state import note


def _require_keys(coffer: Path) -> None:
    type_name = Coffer.type_of(coffer)
    if not type_has_keys(type_name):
        raise CliError(f"{coffer} is of type {type_name!r}, which has no keys and so no passphrases")


@click.command()
@coffer_argument
def passwd(coffer: Path) -> None:
    """Change a passphrase of FILE.

    Asks for the current passphrase (or reads PYCOFFER_PASSPHRASE), then
    twice for the new one (or reads PYCOFFER_NEW_PASSPHRASE). Other
    passphrases and key files keep working; the data is not re-encrypted.
    """
    _require_keys(coffer)
    old, _ = passphrases.existing(f"Current passphrase for {coffer}")
    with opened(coffer, "a", passphrase=old) as store:
        new = passphrases.new("New passphrase")
        store.change_password(old, new)
    note(f"changed the passphrase of {coffer}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@coffer_argument
@click.pass_context
def keys(ctx: click.Context, coffer: Path) -> None:
    """List, add or remove the passphrases (key slots) of FILE.

    \b
      pycoffer keys vault.coffer list
      pycoffer keys vault.coffer add                 # asks for a passphrase, then the new one
      pycoffer keys vault.coffer add --key-file k    # no passphrase yet: open with the key file
      pycoffer keys vault.coffer remove              # asks for the passphrase to remove
    """
    ctx.meta["pycoffer.coffer"] = coffer


def _coffer() -> Path:
    return click.get_current_context().meta["pycoffer.coffer"]  # type: ignore[no-any-return]


@keys.command("list", short_help="Show each key slot: number, KDF, parameters, creation time.")
@json_option("the key slots")
@key_file_option
def keys_list(as_json: bool, key_file: Path | None) -> None:
    """Show each key slot: its number, KDF and parameters, and when it was made."""
    coffer = _coffer()
    _require_keys(coffer)
    with opened(coffer, "r", key_file=key_file) as store:
        slots = store.key_slots()
    if as_json:
        output.print_json(
            [
                {
                    "index": s.index,
                    "kdf": s.kdf,
                    "memory_kib": s.memory_kib,
                    "iterations": s.iterations,
                    "lanes": s.lanes,
                    "created": output.utc_iso(s.created),
                }
                for s in slots
            ]
        )
        return
    if not slots:
        note(f"{coffer} has no passphrase; it opens only with its key file")
        return
    output.print_table(
        ("SLOT", "KDF", "MEMORY", "ITERATIONS", "LANES", "CREATED"),
        [
            (str(s.index), s.kdf, f"{s.memory_kib // 1024} MiB", str(s.iterations), str(s.lanes), output.local_time(s.created))
            for s in slots
        ],
    )


@keys.command("add")
@key_file_option
def keys_add(key_file: Path | None) -> None:
    """Let one more passphrase open the coffer.

    Opens the coffer with --key-file or a passphrase it knows
    (PYCOFFER_PASSPHRASE, or asked), then asks twice for the new one (or
    reads PYCOFFER_NEW_PASSPHRASE).
    """
    coffer = _coffer()
    _require_keys(coffer)
    with opened(coffer, "a", key_file=key_file) as store:
        store.add_password(passphrases.new("New passphrase"))
    note(f"added a passphrase to {coffer}")


@keys.command("remove")
@click.option(
    "--slot",
    type=click.IntRange(min=0),
    metavar="N",
    help="Remove key slot N (see 'keys FILE list') without its passphrase, for a "
    "forgotten one; the coffer is opened with another passphrase or --key-file.",
)
@key_file_option
def keys_remove(slot: int | None, key_file: Path | None) -> None:
    """Stop a passphrase from opening the coffer.

    Asks for the passphrase to remove (or reads PYCOFFER_PASSPHRASE). The
    coffer is opened with it, or with --key-file if given. Removing the last
    passphrase is refused unless the coffer is opened with its key file.
    With --slot N, removes slot N instead, opening the coffer with any
    passphrase it knows (or --key-file).

    \b
      pycoffer keys vault.coffer remove --slot 0    # a passphrase nobody remembers
    """
    coffer = _coffer()
    _require_keys(coffer)
    if slot is not None:
        with opened(coffer, "a", key_file=key_file) as store:
            store.remove_key_slot(slot)
        note(f"removed key slot {slot} from {coffer}")
        return
    doomed, _ = passphrases.existing(f"Passphrase to remove from {coffer}")
    with opened(coffer, "a", key_file=key_file, passphrase=None if key_file else doomed) as store:
        store.remove_password(doomed)
    note(f"removed a passphrase from {coffer}")
