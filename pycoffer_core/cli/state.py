"""What the global options decide, shared by every command of one run."""

from __future__ import annotations

from dataclasses import dataclass

import click


@dataclass
class State:
    """Set by the group's options; commands read it through :func:`current`."""

    #: No progress bars and no notes on stderr (errors are still shown).
    quiet: bool = False
    #: Let exceptions through with their traceback instead of one line.
    debug: bool = False
    #: Seconds to wait for another process's lock on a coffer.
    lock_timeout: float = 1.0


def current() -> State:
    """The :class:`State` of the command being run (a default one outside click)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return State()
    return ctx.ensure_object(State)


def note(message: str) -> None:
    """A remark for the person at the terminal, on stderr; silenced by ``--quiet``."""
    if not current().quiet:
        click.echo(f"pycoffer: {message}", err=True)
