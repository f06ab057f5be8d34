"""Coffer types: what a backend plugin provides.

A backend registers :class:`CofferType` subclasses through the
``pycoffer_types`` hook. The core asks a type for its two layers and never
touches a key itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from .errors import InvalidArgumentError
from .layers import Layer


class CofferType(ABC):
    """A coffer type: a name, its key parameters and its two layers.

    Subclasses set the class attributes and implement the layer factories.
    The constructor receives the raw keys (``**params``) and must raise
    :class:`InvalidArgumentError` (a ``ValueError``) naming the parameter for
    a missing key or one of the wrong size or kind.
    """

    #: The name users pass as ``type=``; lower case letters, digits, ``-`` and ``_``.
    name: ClassVar[str]
    #: One line saying when to use this type.
    description: ClassVar[str] = ""
    #: The names of the raw key parameters, in order.
    key_params: ClassVar[tuple[str, ...]] = ()
    #: Whether each change is committed at once unless the caller says otherwise.
    auto_flush: ClassVar[bool] = False

    def __init__(self, **params: bytes) -> None:
        unknown = sorted(set(params) - set(self.key_params))
        if unknown:
            expected = ", ".join(self.key_params) or "no keys"
            raise InvalidArgumentError(
                f"type {self.name!r} does not take {', '.join(unknown)} (it takes {expected})"
            )
        missing = [key for key in self.key_params if params.get(key) is None]
        if missing:
            raise InvalidArgumentError(
                f"type {self.name!r} needs {', '.join(missing)}: pass the keys from "
                f"Coffer.gen_params({self.name!r}), or a password"
            )
        # Copies, as bytes: a caller may wipe its key buffers once the coffer
        # is open, and a new key slot must wrap the keys in use.
        self.params = {name: _as_bytes(name, value) for name, value in params.items()}

    @classmethod
    def gen_params(cls) -> dict[str, bytes]:
        """Fresh random keys for a new coffer of this type."""
        return {}

    @abstractmethod
    def container_layer(self) -> Layer:
        """The layer sealing every record of the coffer file."""

    @abstractmethod
    def member_layer(self) -> Layer:
        """The layer sealing each chunk of member content."""


def _as_bytes(name: str, value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")  # a key given as text (bank's Fernet key is base64)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidArgumentError(f"{name} must be bytes or str, not {type(value).__name__}")


@dataclass(frozen=True)
class TypeInfo:
    """An installed coffer type, as :meth:`Coffer.types` lists it."""

    name: str
    distribution: str
    version: str
    description: str
    auto_flush: bool
    key_params: tuple[str, ...]
