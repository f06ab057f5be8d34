"""PyCoffer type ``bank``: maximum security, every change durable at once.

Two independent keys seal two nested layers. The container layer (Fernet
tokens, built with ``cryptography``) hides everything the file holds: the index, member
names, sizes and times, and every member record. Inside it, each chunk of
member content is compressed with zstd and sealed again in a NaCl secret
box (PyNaCl) under the second key. Each change is committed as it is made
(``auto_flush`` on)::

    params = Coffer.gen_params("bank")   # keep these keys safe
    with Coffer.open("vault.coffer", "w", type="bank", **params) as vault:
        vault.write("passport.pdf", data)
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import struct
import time

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pycoffer_core import ChainLayer, CofferType, IntegrityError, Layer, ZstdLayer, hookimpl
from pycoffer_core.errors import InvalidArgumentError
from pycoffer_core.sealing import KEY_SIZE, SecretBoxLayer, bind, raw_key, unbind


def fernet_key(param: str, value: object) -> bytes:
    """``value`` if it is a Fernet key (bytes or str); else
    :class:`InvalidArgumentError` naming ``param``, never showing the value."""
    hint = "a Fernet key: 44 url-safe base64 characters, as Fernet.generate_key() returns"
    if not isinstance(value, (bytes, str)):
        raise InvalidArgumentError(f"{param} must be {hint}, not {type(value).__name__}")
    key = value.encode("ascii", "replace") if isinstance(value, str) else value
    try:
        Fernet(key)
    except ValueError:  # binascii.Error included
        raise InvalidArgumentError(f"{param} must be {hint}") from None
    return key


_VERSION = b"\x80"
_TIMESTAMP = struct.Struct(">Q")
_IV_SIZE = 16
_MAC_SIZE = 32
_PREFIX = len(_VERSION) + _TIMESTAMP.size + _IV_SIZE
_BLOCK = 16


class FernetLayer(Layer):
    """Fernet (AES-128-CBC + HMAC-SHA256), bound to the context.

    The plaintext is :func:`~pycoffer_core.sealing.bind` ``(data, context)``,
    since Fernet takes no associated data. The record holds the Fernet token
    base64-decoded: the same bytes, a quarter smaller than the text form
    (re-encode them to get a standard token). A token carries the time it was
    made, in clear.

    The token is built and checked here, as the Fernet specification lays it
    out (version ``80``, big-endian seconds, IV, AES-128-CBC with PKCS#7
    padding, HMAC-SHA256 over all of it), with ``cryptography``'s
    primitives (and the standard library's HMAC), rather than through
    ``cryptography.fernet.Fernet``: that API
    takes and returns URL-safe base64 text only, and encoding and decoding
    every record cost five to eight times the cipher itself. The tests check
    tokens both ways against ``Fernet``.
    """

    encrypts = True
    authenticates = True
    accepts_views = True  # open() reads the token through a memoryview anyway

    def __init__(self, key: bytes) -> None:
        raw = base64.urlsafe_b64decode(key)
        if len(raw) != 32:
            raise ValueError("a Fernet key is 32 bytes, URL-safe base64-encoded")
        self._signing_key, self._aes = raw[:16], algorithms.AES(raw[16:])

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        iv = os.urandom(_IV_SIZE)
        padder = padding.PKCS7(algorithms.AES.block_size).padder()
        padded = padder.update(bind(data, context)) + padder.finalize()
        encryptor = Cipher(self._aes, modes.CBC(iv)).encryptor()
        token = bytearray(_VERSION + _TIMESTAMP.pack(int(time.time())) + iv)
        token += encryptor.update(padded)
        token += encryptor.finalize()
        token += hmac.digest(self._signing_key, token, "sha256")
        return bytes(token)

    def open(self, data: bytes, context: bytes) -> bytes:
        failed = IntegrityError("decryption failed: wrong coffer_key, or the data was changed")
        size = len(data)
        if size < _PREFIX + _BLOCK + _MAC_SIZE or (size - _PREFIX - _MAC_SIZE) % _BLOCK or data[:1] != _VERSION:
            raise failed
        view = memoryview(data)
        expected = hmac.digest(self._signing_key, view[:-_MAC_SIZE], "sha256")
        if not hmac.compare_digest(expected, view[-_MAC_SIZE:]):  # constant-time
            raise failed
        iv = bytes(view[_PREFIX - _IV_SIZE : _PREFIX])
        decryptor = Cipher(self._aes, modes.CBC(iv)).decryptor()
        padded = decryptor.update(view[_PREFIX:-_MAC_SIZE]) + decryptor.finalize()
        unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
        try:
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise failed from None  # authenticated, yet badly padded: not a Fernet writer
        return unbind(plain, context)


class BankType(CofferType):
    """Maximum security: a Fernet container around NaCl-sealed, zstd-compressed members.

    Keys (both from :meth:`gen_params`; keep them, nothing else opens the coffer):

    ``coffer_key``
        A Fernet key (44 url-safe base64 bytes, as ``Fernet.generate_key()``
        returns; a ``str`` is accepted too). Seals every record of the file:
        index, names, sizes, times and member records.
    ``secure_key``
        32 random bytes. Seals each chunk of member content (secret box),
        inside the container layer.

    A key of the wrong kind or size raises
    :class:`~pycoffer_core.errors.InvalidArgumentError` naming it.
    """

    name = "bank"
    description = "maximum security: two keys, two layers of encryption, every change durable at once"
    key_params = ("coffer_key", "secure_key")
    auto_flush = True

    def __init__(self, **params: bytes) -> None:
        super().__init__(**params)
        self._coffer_key = fernet_key("coffer_key", params["coffer_key"])
        self._secure_key = raw_key("secure_key", params["secure_key"])

    @classmethod
    def gen_params(cls) -> dict[str, bytes]:
        return {"coffer_key": Fernet.generate_key(), "secure_key": secrets.token_bytes(KEY_SIZE)}

    def container_layer(self) -> Layer:
        return FernetLayer(self._coffer_key)

    def member_layer(self) -> Layer:
        return ChainLayer(ZstdLayer(level=3), SecretBoxLayer(self._secure_key))


@hookimpl
def pycoffer_types() -> list[type[CofferType]]:
    return [BankType]
