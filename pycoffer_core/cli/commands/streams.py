"""``pycoffer cat`` and ``pycoffer put``: members to stdout, stdin to a member."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from ...errors import MemberExistsError
from .. import output
from ..opening import opened
from ..options import coffer_argument, key_file_option
from ..state import note

_BLOCK = 1 << 20


@click.command()
@coffer_argument
@click.argument("members", metavar="MEMBER...", nargs=-1, required=True)
@key_file_option
def cat(coffer: Path, members: tuple[str, ...], key_file: Path | None) -> None:
    """Write the content of each MEMBER of FILE to stdout, as bytes.

    Streams with bounded memory, so members of any size can be piped:

    \b
      pycoffer cat vault.coffer notes/todo.txt
      pycoffer cat vault.coffer backup.tar | tar x
      pycoffer cat vault.coffer big.iso | sha256sum
    """
    out = output.binary_stdout()
    with opened(coffer, "r", key_file=key_file) as store:
        for member in members:
            with store.file(member, "rb") as stream:
                shutil.copyfileobj(stream, out, _BLOCK)
    out.flush()


@click.command()
@coffer_argument
@click.argument("member")
@click.option("--replace", is_flag=True, help="Overwrite MEMBER if it exists (otherwise that is an error).")
@key_file_option
def put(coffer: Path, member: str, replace: bool, key_file: Path | None) -> None:
    """Store everything read from stdin as MEMBER of FILE.

    The member appears only when stdin ends (one commit); on an error or
    Ctrl-C the coffer is left as it was. A passphrase is asked on the
    terminal, not read from stdin.

    \b
      tar c notes | pycoffer put vault.coffer notes.tar
      pg_dump db | pycoffer put vault.coffer db.sql --replace
    """
    source = output.binary_stdin()
    with opened(coffer, "a", key_file=key_file) as store:
        if member in store and not replace:
            raise MemberExistsError(f"member {member!r} exists in {coffer}; pass --replace to overwrite it")
        if sys.stdin is not None and sys.stdin.isatty():
            note("reading the member from the terminal; end it with Ctrl-D")
        with store.file(member, "wb") as target:
            shutil.copyfileobj(source, target, _BLOCK)
