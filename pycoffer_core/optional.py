"""Optional compiled dependencies, imported when a feature first needs them.

The core runs without ``cryptography`` and ``pynacl`` (the pure-Python
``aes`` type needs neither); passphrases and reading old coffers do need
them, and say so with :class:`MissingDependencyError`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

_DISTRIBUTIONS = {"cryptography": "cryptography", "nacl": "pynacl"}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module``, or say which package ``purpose`` needs."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".", 1)[0]
        dist = _DISTRIBUTIONS.get(top, top)
        raise MissingDependencyError(
            f"{purpose} needs the {dist} package: pip install 'pycoffer-core[crypto]'"
        ) from None
