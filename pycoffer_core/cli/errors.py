"""One-line errors and exit statuses.

Every failure a user can cause ends as one line on stderr,
``pycoffer: <what went wrong and what to do>``, and a non-zero exit status:

=====  ==================================================================
0      success (``verify``: everything is intact)
1      an error: wrong passphrase, missing coffer or member, damage, ...
2      the command line itself is wrong (click's usage errors)
130    interrupted (Ctrl-C); the coffer is left at its last commit
=====  ==================================================================

``--debug`` (or ``PYCOFFER_DEBUG=1``) lets the exception through with its
traceback instead.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

import click

from ..errors import CofferError, IntegrityError, WrongKeyError
from .state import State

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class CliError(click.ClickException):
    """An error the user can act on, shown as ``pycoffer: message``."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"pycoffer: {self.format_message()}", err=True, file=file)


def _message(exc: BaseException) -> str:
    if isinstance(exc, WrongKeyError):
        return str(exc)
    if isinstance(exc, IntegrityError):
        return f"damaged or tampered with: {exc}"
    if isinstance(exc, CofferError):
        return str(exc)
    if isinstance(exc, ImportError):
        return (
            f"{exc}: an installed plugin may be broken; reinstall it, or set "
            "PYCOFFER_NO_ENTRY_POINTS=1 to run without plugins"
        )
    if isinstance(exc, OSError):
        if not exc.strerror:
            return str(exc)  # raised with a message of its own
        where = f": {exc.filename}" if exc.filename is not None else ""
        return f"{exc.strerror}{where}"
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback, and please report it)"


def translate(exc: Exception) -> click.ClickException:
    """The click exception that reports ``exc`` as one line."""
    return CliError(_message(exc))


#: Commands that change nothing and only print: when their reader goes away
#: (``| head``), they end with status 0. Any other command that loses its
#: stdout stopped part way through its work, and ends with status 1.
_ONLY_PRINT = frozenset({"cat", "ls", "info", "types"})


class ReportingGroup(click.Group):
    """A click group that turns exceptions from its commands into one-line errors.

    Doing it here rather than around ``main()`` means ``CliRunner`` sees
    exactly what a user sees.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added: by task, not alphabet

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            if ctx.invoked_subcommand not in _ONLY_PRINT:
                raise  # click's main() ends quietly, with status 1: the work stopped half way
            # The reader of a command that only prints went away (``| head``):
            # it has what it wanted. End with success, and point stdout at the
            # null device so the final flush can't fail again.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):  # no real stdout (a test runner's)
                pass
            raise click.exceptions.Exit(0) from None
        except KeyboardInterrupt:
            if ctx.ensure_object(State).debug:
                raise
            click.echo("\npycoffer: interrupted; the coffer is as it was at its last commit", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if ctx.ensure_object(State).debug:
                raise
            raise translate(exc) from exc
