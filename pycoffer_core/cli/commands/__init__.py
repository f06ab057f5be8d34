"""The commands, one module per family; ``COMMANDS`` in the order ``--help`` lists them."""

from __future__ import annotations

import click

from ..migrate_command import migrate
from .create import init
from .crypt import decrypt, encrypt
from .edit import mv, rm
from .listing import ls
from .maintenance import compact, info, verify
from .passphrase import keys, passwd
from .streams import cat, put
from .transfer import add, extract
from .types import types

COMMANDS: list[click.Command] = [
    init,
    ls,
    add,
    extract,
    cat,
    put,
    rm,
    mv,
    info,
    verify,
    compact,
    passwd,
    keys,
    types,
    encrypt,
    decrypt,
    migrate,
]
