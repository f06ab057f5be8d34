"""Default container: the log-structured format of ``docs/format.md``."""

from __future__ import annotations

from pathlib import Path

from ..container.log import LogContainer
from ..hookspecs import hookimpl
from ..types import CofferType


@hookimpl(trylast=True)
def pycoffer_container(path: Path, coffer_type: type[CofferType]) -> type[LogContainer]:
    return LogContainer
