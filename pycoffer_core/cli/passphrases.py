"""Passphrases: from the environment, or asked on the terminal without echo.

Never from a command-line value: those end up in shell histories and in
``ps`` output. ``PYCOFFER_PASSPHRASE`` is the passphrase a command opens
with (or removes); ``PYCOFFER_NEW_PASSPHRASE`` is the one ``passwd`` and
``keys add`` set.
"""

from __future__ import annotations

import os
import sys

import click

from .errors import CliError

PASSPHRASE_ENV = "PYCOFFER_PASSPHRASE"
NEW_PASSPHRASE_ENV = "PYCOFFER_NEW_PASSPHRASE"


def can_prompt() -> bool:
    """True if there is a terminal to ask on.

    The prompt reads the controlling terminal (``/dev/tty``), not stdin, so
    a passphrase can be asked while stdin is a pipe of data; without a
    terminal, asking would read (and eat) that data instead.
    """
    if os.name == "nt":  # pragma: no cover - getpass reads the console there
        return sys.stdin.isatty()
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def _ask(prompt: str) -> str:
    if not can_prompt():
        raise CliError(
            f"no terminal to ask for a passphrase on: set {PASSPHRASE_ENV} "
            "(or pass --key-file where the command takes one)"
        )
    return str(click.prompt(prompt, hide_input=True, err=True))


def from_env(variable: str) -> str | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    if not value:
        raise CliError(f"{variable} is set but empty; unset it to be asked instead")
    return value


def existing(prompt: str, variable: str = PASSPHRASE_ENV) -> tuple[str, bool]:
    """A passphrase that should already open something; and whether it was asked."""
    value = from_env(variable)
    if value is not None:
        return value, False
    return _ask(prompt), True


def new(prompt: str, variable: str = NEW_PASSPHRASE_ENV) -> str:
    """A passphrase being set: from ``variable``, or asked twice."""
    value = from_env(variable)
    if value is not None:
        return value
    first = _ask(prompt)
    if _ask("Repeat it") != first:
        raise CliError("the two passphrases differ; nothing was changed")
    return first


def warn(message: str) -> None:
    """Tell the person at the prompt (shown even with ``--quiet``)."""
    click.echo(f"pycoffer: {message}", err=True)
