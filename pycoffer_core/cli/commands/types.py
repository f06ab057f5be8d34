"""``pycoffer types``: the coffer types installed."""

from __future__ import annotations

import click

from ...coffer import Coffer
from .. import output
from ..options import json_option


@click.command(short_help="List the installed coffer types and their distributions.")
@json_option("the types")
def types(as_json: bool) -> None:
    """List the installed coffer types, with the distribution that provides each.

    More types come from more distributions: 'pip install pycoffer-bank'
    adds the type bank.
    """
    infos = Coffer.types()
    if as_json:
        output.print_json(
            [
                {
                    "name": t.name,
                    "distribution": t.distribution,
                    "version": t.version,
                    "description": t.description,
                    "keys": list(t.key_params),
                    "auto_flush": t.auto_flush,
                }
                for t in infos
            ]
        )
        return
    output.print_table(
        ("TYPE", "DISTRIBUTION", "VERSION", "DESCRIPTION"),
        [(t.name, t.distribution, t.version, t.description) for t in infos],
    )
