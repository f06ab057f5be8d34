"""``pycoffer add`` and ``pycoffer extract``: move files and folders in and out."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from ... import extraction
from ...errors import MemberExistsError
from .. import output, progress
from ..errors import CliError
from ..opening import opened
from ..options import coffer_argument, key_file_option, quiet_option
from ..selection import select
from ..state import note


def _plan(coffer: Path, sources: tuple[Path, ...], as_name: str | None) -> list[extraction.Planned]:
    """Every (file, member name) to store, checked before the coffer is touched.

    The coffer itself and its lock file are left out: adding a folder that
    holds the coffer must not feed the coffer into itself.
    """
    if as_name is not None and len(sources) > 1:
        raise click.UsageError("--as names one member or folder, so it takes exactly one SOURCE")
    own = extraction.own_files(coffer)
    plan: list[extraction.Planned] = []
    origin: dict[str, Path] = {}
    for source in sources:
        base = extraction.base_name_of(source, as_name)
        found = 0
        for planned in extraction.plan_add(source, base, follow_symlinks=False):
            path, name = planned.path, planned.name
            if planned.identity in own:
                note(f"skipping {path}: it is the coffer itself (or its lock file)")
                continue
            if name in origin and origin[name] != path:
                raise CliError(f"{origin[name]} and {path} would both be stored as {name!r}")
            origin[name] = path
            plan.append(planned)
            found += 1
        if not found:
            note(f"{source} holds no files to add")
    return plan


@click.command()
@coffer_argument
@click.argument("sources", metavar="SOURCE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--as", "as_name", metavar="NAME", help="Store the (single) SOURCE under this member name.")
@click.option("--replace", is_flag=True, help="Overwrite members that exist (otherwise they are an error).")
@click.option("-v", "--verbose", is_flag=True, help="Print the name of each member stored, on stdout.")
@key_file_option
@quiet_option
def add(
    coffer: Path,
    sources: tuple[Path, ...],
    as_name: str | None,
    replace: bool,
    verbose: bool,
    key_file: Path | None,
) -> None:
    """Store files and folders (whole trees) in FILE.

    A SOURCE is stored under its base name: 'add vault.coffer ~/notes' makes
    members notes/..., with the files' mtimes. Symbolic links inside a tree
    are stored only when they point at a file inside that tree. Existing
    members are an error unless --replace is given.

    All of it is one commit: on an error or Ctrl-C the coffer is left as it
    was before the command.

    \b
      pycoffer add vault.coffer notes/ taxes-2023.pdf
      pycoffer add vault.coffer scan.pdf --as taxes/2023/scan.pdf --replace
    """
    plan = _plan(coffer, sources, as_name)
    with opened(coffer, "a", key_file=key_file) as store:
        if not replace:
            for planned in plan:
                if planned.name in store:
                    raise MemberExistsError(
                        f"member {planned.name!r} exists in {coffer}; pass --replace to overwrite it"
                    )
        total = sum(planned.path.stat().st_size for planned in plan)
        with progress.bytes_bar(total, "adding") as bar:
            for planned in plan:
                bar.label(planned.name)
                # The files this plan chose, checked by identity as they are read.
                store._add_planned([planned], replace=True)
                bar.advance(planned.path.stat().st_size)
                if verbose:
                    click.echo(output.shown(planned.name))


@click.command(short_help="Write members out as files: all, or those named.")
@coffer_argument
@click.argument("members", metavar="[MEMBER]...", nargs=-1)
@click.option(
    "-C",
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Write under this folder (made if missing) instead of the current one.",
)
@click.option("-v", "--verbose", is_flag=True, help="Print the path of each file written, on stdout.")
@key_file_option
@quiet_option
def extract(coffer: Path, members: tuple[str, ...], directory: Path, verbose: bool, key_file: Path | None) -> None:
    """Write members of FILE out as files: all of them, or each MEMBER named.

    A MEMBER may be a folder: every member under it is written. Files keep
    their member name below the destination, their mtime, and mode 0600;
    existing files are replaced. Nothing is ever written outside the
    destination, nor through a symbolic link in it (that is an error).

    Each file is written to a hidden part file, renamed into place when
    complete: on an error or Ctrl-C no partial file is left behind.

    \b
      pycoffer extract vault.coffer -C restored
      pycoffer extract vault.coffer notes taxes/2023/scan.pdf
    """
    with opened(coffer, "r", key_file=key_file) as store:
        everything = store.getmembers()
        chosen = select(everything, members, coffer) if members else everything
        extraction.refuse_file_folder_clash([member.name for member in chosen])
        protected = extraction.own_files(coffer)
        folders = extraction.Folders()
        with progress.bytes_bar(sum(m.filesize for m in chosen), "extracting") as bar, contextlib.closing(folders):
            for member in chosen:
                bar.label(member.name)
                with store.file(member.name, "rb") as stream:
                    # The member reader under the buffer: its chunks are read ahead.
                    reader = progress.CountingMemberReader(stream.raw, bar)  # type: ignore[attr-defined]
                    written = extraction.write_member(  # type: ignore[arg-type]
                        directory, member.name, reader, member.mtime_ns, protected=protected, folders=folders
                    )
                if verbose:
                    click.echo(output.shown(written))
