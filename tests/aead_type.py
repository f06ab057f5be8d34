"""An AES-GCM coffer type defined inside the tests, so the core's encrypted
behaviour (passphrases, canary, tampering) is tested without any backend."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pycoffer_core import ChainLayer, CofferType, IntegrityError, Layer, ZstdLayer, hookimpl


class AesGcmLayer(Layer):
    encrypts = True
    authenticates = True

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, bytes(data), context)

    def open(self, data: bytes, context: bytes) -> bytes:
        if len(data) < 28:
            raise IntegrityError("sealed data is too short")
        try:
            return self._aead.decrypt(data[:12], data[12:], context)
        except InvalidTag:
            raise IntegrityError("authentication failed") from None


class AeadType(CofferType):
    name = "test-aead"
    description = "AES-GCM on both layers (tests only)"
    key_params = ("container_key", "member_key")

    @classmethod
    def gen_params(cls) -> dict[str, bytes]:
        return {"container_key": os.urandom(32), "member_key": os.urandom(32)}

    def container_layer(self) -> Layer:
        return AesGcmLayer(self.params["container_key"])

    def member_layer(self) -> Layer:
        return ChainLayer(ZstdLayer(3), AesGcmLayer(self.params["member_key"]))


class AeadPlugin:
    @hookimpl
    def pycoffer_types(self) -> list[type[CofferType]]:
        return [AeadType]
