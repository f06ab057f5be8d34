"""The ``pycoffer`` command line: keep confidential files in a coffer without Python.

``main`` is the console script's entry point; ``cli`` is the click group
(drive it in-process with :class:`click.testing.CliRunner`). One module per
concern: :mod:`.main` (the group and its global options), :mod:`.commands`
(one module per family of commands), :mod:`.opening` (from a path and the
user's credentials to an open :class:`~pycoffer_core.Coffer`),
:mod:`.passphrases` and :mod:`.keyfile` (credentials), :mod:`.progress`,
:mod:`.output` and :mod:`.errors` (one-line errors and exit statuses).
"""

from .main import cli, main

__all__ = ["cli", "main"]
