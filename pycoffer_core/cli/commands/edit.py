"""``pycoffer rm`` and ``pycoffer mv``: remove and rename members."""

from __future__ import annotations

from pathlib import Path

import click

from ... import names
from ...errors import MemberExistsError, MemberNotFoundError
from .. import output
from ..errors import CliError
from ..opening import opened
from ..options import coffer_argument, key_file_option
from ..selection import under


@click.command()
@coffer_argument
@click.argument("members", metavar="MEMBER...", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Also remove folders: every member under each MEMBER/.")
@key_file_option
def rm(coffer: Path, members: tuple[str, ...], recursive: bool, key_file: Path | None) -> None:
    """Remove each MEMBER from FILE.

    Everything is checked first and removed in one commit: a missing member
    removes nothing. A folder needs --recursive. The space is reclaimed by
    'pycoffer compact' (or on its own once dead space grows large).

    \b
      pycoffer rm vault.coffer notes/old.txt
      pycoffer rm vault.coffer photos/2019 --recursive
    """
    with opened(coffer, "a", key_file=key_file) as store:
        everything = store.getmembers()
        doomed: set[str] = set()
        for member in members:
            name = names.normalize(member)
            found = under(everything, name)
            if not found:
                raise MemberNotFoundError(f"no member or folder {name!r} in {coffer}")
            if found[0].name != name and not recursive:
                raise CliError(
                    f"{name!r} is a folder of {output.counted(len(found), 'member')} in {coffer}; "
                    "pass --recursive to remove it"
                )
            doomed.update(info.name for info in found)
        for name in sorted(doomed):
            store.delete(name)


@click.command()
@coffer_argument
@click.argument("old")
@click.argument("new")
@click.option("--replace", is_flag=True, help="Overwrite members that exist at the new name.")
@key_file_option
def mv(coffer: Path, old: str, new: str, replace: bool, key_file: Path | None) -> None:
    """Rename member OLD of FILE to NEW, without copying its data.

    OLD may be a folder: every member under it moves under NEW. An existing
    member at the new name is an error unless --replace is given.

    \b
      pycoffer mv vault.coffer notes/todo.txt notes/done.txt
      pycoffer mv vault.coffer photos pictures
    """
    old_name, new_name = names.normalize(old), names.normalize(new)
    with opened(coffer, "a", key_file=key_file) as store:
        found = under(store.getmembers(), old_name)
        if not found:
            raise MemberNotFoundError(f"no member or folder {old_name!r} in {coffer}")
        if found[0].name == old_name:
            moves = [(old_name, new_name)]
        else:
            if names.is_under(new_name, old_name):
                raise CliError(f"can't move folder {old_name!r} into itself ({new_name!r})")
            moves = [(info.name, new_name + info.name[len(old_name) :]) for info in found]
        moving = {source for source, _ in moves}
        for source, target in moves:
            if target in moving and target != source:
                raise CliError(f"moving {old_name!r} to {new_name!r} would overwrite members being moved; move it in two steps")
            if target in store and target not in moving and not replace:
                raise MemberExistsError(f"member {target!r} exists in {coffer}; pass --replace to overwrite it")
        for source, target in moves:
            store.rename(source, target, replace=True)
