"""Default temp dir: the ``temp_dir`` argument, else the system's."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..hookspecs import hookimpl


@hookimpl(trylast=True)
def pycoffer_temp_dir(path: Path, requested: Path | None) -> Path:
    return Path(requested) if requested is not None else Path(tempfile.gettempdir())
