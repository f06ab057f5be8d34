"""Options and arguments several commands share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .state import current

F = TypeVar("F", bound=Callable[..., Any])

#: The coffer file: a path (existence is checked when it is opened, with a clear error).
coffer_argument = click.argument("coffer", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))

key_file_option = click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PYCOFFER_KEY_FILE",
    help="Open the coffer with the keys in this key file (made by 'init --key-file') "
    "instead of a passphrase. [env: PYCOFFER_KEY_FILE]",
)


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        current().quiet = True


quiet_option = click.option(
    "-q",
    "--quiet",
    is_flag=True,
    expose_value=False,
    callback=_set_quiet,
    help="No progress bars and no notes on stderr (same as 'pycoffer -q ...').",
)


def json_option(what: str) -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")
