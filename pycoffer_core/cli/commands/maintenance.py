"""``pycoffer info``, ``verify`` and ``compact``: a coffer as a whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ...coffer import Coffer
from ...container import framing
from ...errors import IntegrityError, WrongKeyError
from .. import output, progress
from ..errors import CliError
from ..opening import opened, type_has_keys
from ..options import coffer_argument, json_option, key_file_option, quiet_option
from ..state import current, note


def _describe(coffer: Path, key_file: Path | None) -> dict[str, Any]:
    type_name = Coffer.type_of(coffer)
    with opened(coffer, "r", key_file=key_file) as store:
        stats = store.stats()
        members = store.getmembers()
        slots = store.key_slots()
    installed = {info.name: info for info in Coffer.types()}
    kind = installed[type_name]
    return {
        "file": str(coffer),
        "type": type_name,
        "distribution": kind.distribution,
        "distribution_version": kind.version,
        # The default container reads exactly one version, so a coffer that opened is of it.
        "format_version": framing.FORMAT_VERSION,
        "members": len(members),
        "plain_bytes": sum(m.filesize for m in members),
        "file_bytes": stats["file_size"],
        "live_bytes": stats["live_bytes"],
        "index_bytes": stats.get("index_bytes", 0),
        "dead_bytes": stats["dead_bytes"],
        "ignored_bytes": stats.get("ignored_bytes", 0),
        "commits": stats["seq"],
        "key_slots": [
            {
                "index": slot.index,
                "kdf": slot.kdf,
                "memory_kib": slot.memory_kib,
                "iterations": slot.iterations,
                "lanes": slot.lanes,
                "created": output.utc_iso(slot.created),
            }
            for slot in slots
        ],
    }


_IGNORED = "a commit being written or interrupted, or the file was cut or damaged there; a write drops them"


@click.command(short_help="Show type, format version, members, sizes, dead space, key slots.")
@coffer_argument
@json_option("the facts")
@key_file_option
def info(coffer: Path, as_json: bool, key_file: Path | None) -> None:
    """Show facts about FILE: type, format version, members, sizes, dead space, key slots.

    "plain" is the members' total size before compression and encryption;
    "dead space" is what removed or replaced members still hold, which
    'pycoffer compact' gives back.
    """
    facts = _describe(coffer, key_file)
    if as_json:
        output.print_json(facts)
        return
    file_bytes = facts["file_bytes"] or 1
    dead_share = 100 * facts["dead_bytes"] / file_bytes
    slots = facts["key_slots"]
    if slots:
        first = slots[0]
        slot_text = (
            f"{len(slots)} ({first['kdf']}, {first['memory_kib'] // 1024} MiB, "
            f"{first['iterations']} iterations, {first['lanes']} lanes)"
        )
    else:
        slot_text = "none (opened by its key file)" if type_has_keys(facts["type"]) else "none (no keys)"
    rows = [
        ("file", facts["file"]),
        ("type", f"{facts['type']} ({facts['distribution']} {facts['distribution_version']})"),
        ("format version", str(facts["format_version"])),
        ("members", str(facts["members"])),
        ("plain size", output.size(facts["plain_bytes"])),
        ("file size", output.size(facts["file_bytes"])),
        ("index", output.size(facts["index_bytes"])),
        ("dead space", f"{output.size(facts['dead_bytes'])}, {dead_share:.0f}% of the file"),
        ("commits", str(facts["commits"])),
        ("key slots", slot_text),
    ]
    if facts["ignored_bytes"]:
        rows.append(("ignored", f"{output.size(facts['ignored_bytes'])} after the last commit ({_IGNORED})"))
    for label, value in rows:
        click.echo(f"{label + ':':<16}{value}")


@click.command(short_help="Read and authenticate everything; status 0 only if intact.")
@coffer_argument
@key_file_option
@quiet_option
def verify(coffer: Path, key_file: Path | None) -> None:
    """Read and authenticate everything in FILE: every record, index and member.

    Exit status 0 only if all of it is intact; otherwise one line says what
    is damaged and the status is 1. Prints a summary unless --quiet.

    \b
      pycoffer verify vault.coffer && echo intact
    """
    try:
        with opened(coffer, "r", key_file=key_file) as store, progress.spinner("verifying"):
            store.verify()
            members = store.getmembers()
            ignored = store.stats().get("ignored_bytes", 0)
    except WrongKeyError:
        raise
    except IntegrityError as exc:
        raise CliError(f"{coffer} is damaged or was tampered with: {exc}") from exc
    if not current().quiet:
        total = sum(m.filesize for m in members)
        click.echo(f"{coffer}: intact ({output.counted(len(members), 'member')}, {output.short_size(total)})")
    if ignored:
        note(f"{coffer}: {output.short_size(ignored)} after its last commit are not part of it ({_IGNORED})")


@click.command(short_help="Rewrite the coffer without dead space.")
@coffer_argument
@key_file_option
@quiet_option
def compact(coffer: Path, key_file: Path | None) -> None:
    """Rewrite FILE without dead space (crash-safe: the old file stays until the new one is complete).

    The coffer is locked while this runs; it needs free space for a copy of
    the live data.
    """
    with opened(coffer, "a", key_file=key_file) as store, progress.spinner("compacting"):
        before = store.stats()["file_size"]
        store.compact()
        after = store.stats()["file_size"]
    reclaimed = output.short_size(max(before - after, 0))
    note(f"{coffer}: {output.short_size(before)} -> {output.short_size(after)} ({reclaimed} reclaimed)")
