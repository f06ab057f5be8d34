"""How a coffer gets its type's keys: given raw, or unwrapped with a passphrase.

The container calls its key provider once, after reading the header and
before touching any sealed byte: ``create`` for a new coffer, ``unlock``
for an existing one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from .errors import InvalidArgumentError
from .keyslots import KeySlots, encode_password
from .types import CofferType


class KeyProvider(ABC):
    """Turns the key-slot blob of a coffer into a keyed :class:`CofferType`."""

    type_class: type[CofferType]
    #: True when the keys come from a passphrase (so they exist nowhere else).
    uses_password: bool = False

    @abstractmethod
    def create(self, coffer_id: bytes) -> tuple[CofferType, bytes]:
        """Keys for a new coffer, and the key-slot blob to store with it."""

    @abstractmethod
    def unlock(self, slots: bytes, coffer_id: bytes) -> CofferType:
        """The keyed type for an existing coffer; :class:`WrongKeyError` if refused."""


class RawKeys(KeyProvider):
    """The caller passed the type's keys themselves."""

    def __init__(self, type_class: type[CofferType], params: dict[str, bytes]) -> None:
        self.type_class = type_class
        self._keyed = type_class(**params)  # validates the keys before any file is touched

    def create(self, coffer_id: bytes) -> tuple[CofferType, bytes]:
        return self._keyed, b""

    def unlock(self, slots: bytes, coffer_id: bytes) -> CofferType:
        return self._keyed


class Passphrase(KeyProvider):
    """The caller passed a passphrase; the keys live wrapped in key slots."""

    uses_password = True

    def __init__(self, type_class: type[CofferType], password: object) -> None:
        if not type_class.key_params:
            raise InvalidArgumentError(f"type {type_class.name!r} has no keys, so no password")
        self.type_class = type_class
        self._password = encode_password(password)

    def create(self, coffer_id: bytes) -> tuple[CofferType, bytes]:
        keys = self.type_class.gen_params()
        slots = KeySlots(None).with_password(self._password, coffer_id, keys)
        return self.type_class(**keys), slots.encode()

    def unlock(self, slots: bytes, coffer_id: bytes) -> CofferType:
        keys = KeySlots.decode(slots).unlock(self._password, coffer_id)
        return self.type_class(**keys)
