"""The example transform: ChaCha20-Poly1305, bound to where each piece belongs.

A layer is one reversible transform with ``seal(data, context)`` and
``open(data, context)``. The core passes a *context* built from the coffer
id, the member id and the chunk number (or the record's place in the file);
passing it to the cipher as associated data means a sealed piece only opens
where it was sealed, so pieces can't be swapped, reordered or replayed from
another coffer without :class:`~pycoffer_core.errors.IntegrityError`.

Replace or add layers here; keep every encrypting layer authenticated and
bound to the context (the conformance suite checks both).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from pycoffer_core import IntegrityError, Layer

NONCE_SIZE = 12
TAG_SIZE = 16


class ChaCha20Poly1305Layer(Layer):
    """ChaCha20-Poly1305 with a random nonce; the context is the associated data.

    Output: nonce, ciphertext, tag (28 bytes more than the input). Random
    96-bit nonces are safe for up to 2**32 pieces under one key; derive a
    key per coffer or per member if your type may seal more than that.
    Stateless, so thread-safe.
    """

    encrypts = True
    authenticates = True

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, bytes(data), context)

    def open(self, data: bytes, context: bytes) -> bytes:
        if len(data) < NONCE_SIZE + TAG_SIZE:
            raise IntegrityError("sealed data is too short to hold its nonce and tag")
        try:
            return self._aead.decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], context)
        except InvalidTag:
            raise IntegrityError("authentication failed: wrong key, or the data was changed or moved") from None
