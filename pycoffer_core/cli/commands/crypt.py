"""``pycoffer encrypt`` and ``pycoffer decrypt``: external files under a coffer's keys."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

import click

from ... import extraction
from ...errors import UnsafePathError
from .. import output, progress
from ..atomic import create_private, replacing
from ..opening import opened
from ..options import coffer_argument, key_file_option, quiet_option

_BLOCK = 1 << 20

_force_option = click.option("-f", "--force", is_flag=True, help="Overwrite DST if it exists.")


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


@click.command(short_help="Encrypt an external file with the coffer's keys.")
@coffer_argument
@click.argument("src", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@_force_option
@key_file_option
@quiet_option
def encrypt(coffer: Path, src: Path, dst: Path, force: bool, key_file: Path | None) -> None:
    """Encrypt the file SRC ('-': stdin) to DST with the keys of coffer FILE.

    DST is sealed in authenticated chunks: 'pycoffer decrypt' with the same
    coffer detects any change, reordering or truncation. DST appears only
    when complete. The coffer's type must encrypt (null does not).

    \b
      pycoffer encrypt vault.coffer report.pdf report.pdf.sealed
      tar c photos | pycoffer encrypt vault.coffer - photos.tar.sealed
    """
    _refuse_own_files(coffer, dst)
    with opened(coffer, "r", key_file=key_file) as store, replacing(dst, force=force) as part:
        source: BinaryIO = output.binary_stdin() if str(src) == "-" else open(src, "rb")  # noqa: SIM115
        with source, progress.bytes_bar(_size(src), "encrypting") as bar:
            with store.crypt_open(part, "wb") as sealed:
                shutil.copyfileobj(progress.CountingReader(source, bar), sealed, _BLOCK)  # type: ignore[misc]


@click.command(short_help="Decrypt a file made by 'pycoffer encrypt'.")
@coffer_argument
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@_force_option
@key_file_option
@quiet_option
def decrypt(coffer: Path, src: Path, dst: Path, force: bool, key_file: Path | None) -> None:
    """Decrypt SRC, made by 'pycoffer encrypt', to DST ('-': stdout) with the keys of coffer FILE.

    Every chunk is authenticated before it is written. DST (mode 0600)
    appears only when all of SRC checked out; on any error it is not
    created. To stdout, the plaintext flows as it is checked: an error ends
    the stream early with exit status 1, so check the status in scripts.

    \b
      pycoffer decrypt vault.coffer report.pdf.sealed report.pdf
      pycoffer decrypt vault.coffer photos.tar.sealed - | tar x
    """
    with opened(coffer, "r", key_file=key_file) as store, store.crypt_open(src, "rb") as sealed:
        with progress.bytes_bar(_size(src), "decrypting") as bar:
            reader = progress.CountingReader(sealed, bar)
            if str(dst) == "-":
                out = output.binary_stdout()
                shutil.copyfileobj(reader, out, _BLOCK)  # type: ignore[misc]
                out.flush()
                return
            _refuse_own_files(coffer, dst)
            with replacing(dst, force=force) as part, open(create_private(part), "wb") as plain:
                shutil.copyfileobj(reader, plain, _BLOCK)  # type: ignore[misc]


def _refuse_own_files(coffer: Path, dst: Path) -> None:
    """Never replace the coffer or its lock, even with --force (a link there
    is replaced, not followed, so only the files themselves count)."""
    try:
        info = os.lstat(dst)
    except FileNotFoundError:
        return
    if (info.st_dev, info.st_ino) in extraction.own_files(coffer):
        raise UnsafePathError(f"refusing to replace {dst}: it is the coffer itself, or its lock")
