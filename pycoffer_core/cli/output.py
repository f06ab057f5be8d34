"""Writing results on stdout: sizes, times, tables and JSON.

Tables are drawn by rich on a terminal (bold headers, wrapped to its
width) and as plain aligned columns, without trailing blanks, in a pipe.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, BinaryIO

import click
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from .errors import CliError


def size(count: int) -> str:
    """``1.2 MB (1234567 bytes)``."""
    return f"{decimal(count)} ({count} bytes)" if count >= 1000 else f"{count} bytes"


def short_size(count: int) -> str:
    """``1.2 MB``."""
    return decimal(count)


def local_time(seconds: float) -> str:
    """Local time, ``YYYY-MM-DD HH:MM:SS``: sortable, and what ``ls --full-time`` users read."""
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def utc_iso(seconds: float) -> str:
    """UTC time in ISO 8601, for JSON."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    console = Console(file=sys.stdout)
    if console.is_terminal:
        table = Table(*headers, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    for row in (headers, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths)]
        click.echo("  ".join([*cells, str(row[-1])]))


def binary_stdout() -> BinaryIO:
    """stdout for bytes (the data of ``cat`` and ``decrypt -``)."""
    return getattr(sys.stdout, "buffer", sys.stdout)  # type: ignore[no-any-return]


def binary_stdin() -> BinaryIO:
    """stdin for bytes (the data of ``put`` and ``encrypt -``)."""
    if sys.stdin is None:
        raise CliError("stdin is closed; give the data on stdin")
    return getattr(sys.stdin, "buffer", sys.stdin)  # type: ignore[no-any-return]


def counted(number: int, noun: str) -> str:
    """``1 member``, ``2 members``: a count with its noun (plural in ``s``)."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def shown(name: str) -> str:
    """``name`` for a terminal: control characters (a newline, an escape
    sequence), line separators and the marks that reorder text shown as
    Python escapes, so one name stays one line and a hostile name can't
    drive the terminal or disguise itself. Every other character is shown as
    it is (a no-break space, the joiners of emoji and of Persian words).
    ``--json`` keeps names as they are."""
    return "".join(repr(char)[1:-1] if _unsafe(char) else char for char in name)


#: Bidirectional marks, embeddings, overrides and isolates.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS
