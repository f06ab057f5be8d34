"""``pycoffer ls``: list members."""

from __future__ import annotations

from pathlib import Path

import click

from .. import output
from ..opening import opened
from ..options import coffer_argument, json_option, key_file_option
from ..selection import select


@click.command()
@coffer_argument
@click.argument("prefix", required=False)
@click.option("-l", "--long", "long_format", is_flag=True, help="Also show each member's plain size and mtime.")
@json_option("name, size and mtime of each member")
@key_file_option
def ls(coffer: Path, prefix: str | None, long_format: bool, as_json: bool, key_file: Path | None) -> None:
    """List the members of FILE, one name a line, sorted.

    PREFIX limits the list to one member or to a folder (every member whose
    name starts with PREFIX/). --long prints "size  date time  name", with the
    plain (uncompressed) size in bytes and the local modification time.

    \b
      pycoffer ls vault.coffer
      pycoffer ls vault.coffer photos --long
      pycoffer ls vault.coffer --json | jq '.[].size'
    """
    with opened(coffer, "r", key_file=key_file) as store:
        members = store.getmembers()
    if prefix is not None:
        members = select(members, [prefix], coffer)
    if as_json:
        output.print_json(
            [
                {"name": m.name, "size": m.filesize, "mtime": output.utc_iso(m.mtime), "mtime_ns": m.mtime_ns}
                for m in members
            ]
        )
        return
    if not long_format:
        for member in members:
            click.echo(output.shown(member.name))
        return
    width = max((len(str(m.filesize)) for m in members), default=1)
    for member in members:
        click.echo(f"{member.filesize:>{width}}  {output.local_time(member.mtime)}  {output.shown(member.name)}")
