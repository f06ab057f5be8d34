"""The ``pycoffer`` group: global options, help text, and the entry point."""

from __future__ import annotations

import signal
from types import FrameType

import click

from .commands import COMMANDS
from .errors import ReportingGroup
from .state import State

HELP = """Keep confidential files in a coffer: one encrypted, compressed file of many members.

\b
  pycoffer init vault.coffer --type bank      create one (asks for a passphrase)
  pycoffer add vault.coffer notes/ taxes.pdf  store files and folders
  pycoffer ls vault.coffer --long             list the members
  pycoffer cat vault.coffer notes/todo.txt    print one
  pycoffer extract vault.coffer -C restored   write them all out
  pycoffer verify vault.coffer                check that all is intact

\b
Passphrases are asked on the terminal without echo, or read from the
environment; never from a command-line value.
\b
  PYCOFFER_PASSPHRASE      the passphrase that opens the coffer
  PYCOFFER_NEW_PASSPHRASE  the new one, for 'passwd' and 'keys add'
  PYCOFFER_KEY_FILE        a key file, instead of a passphrase
  PYCOFFER_DEBUG=1         show tracebacks (same as --debug)

\b
Exit status: 0 success, 1 error (one line on stderr), 2 bad usage,
130 interrupted (the coffer is left at its last commit).
Run 'pycoffer COMMAND --help' for the details of a command.
"""


@click.group(
    cls=ReportingGroup,
    help=HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="pycoffer-core", prog_name="pycoffer", message="%(prog)s %(version)s")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no notes on stderr.")
@click.option(
    "--debug",
    is_flag=True,
    envvar="PYCOFFER_DEBUG",
    help="Show the traceback of an error instead of one line. [env: PYCOFFER_DEBUG]",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another process that has the coffer open for writing.",
)
@click.pass_context
def cli(ctx: click.Context, quiet: bool, debug: bool, lock_timeout: float) -> None:
    state = ctx.ensure_object(State)
    state.quiet = state.quiet or quiet
    state.debug = debug
    state.lock_timeout = lock_timeout


for _command in COMMANDS:
    cli.add_command(_command)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds like Ctrl-C: uncommitted changes are discarded and
    # partial output files removed, which a bare kill would not do.
    raise SystemExit(128 + signum)


def main() -> None:
    """The console script: ``pycoffer``."""
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _terminate)
    cli(prog_name="pycoffer", windows_expand_args=False)
