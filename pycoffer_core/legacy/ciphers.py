"""The three record-body encodings the old library used, decrypt only.

* NaCl (naclfile): ``SecretBox(key).encrypt(chunk)`` = nonce(24) || MAC(16) || ciphertext.
* AES (aesfile): pycryptodome AES-OCB, random 15-byte nonce, 16-byte tag, no
  associated data; body = tag(16) || nonce(15) || ciphertext.
  ``cryptography``'s AESOCB3 accepts 12-15-byte nonces, so it reads them.
* Fernet (fernetfile): the body is a Fernet token; the key is the 44-character
  url-safe base64 key that ``Fernet.generate_key()`` returns.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Callable

from ..errors import InvalidArgumentError
from ..optional import require
from .records import AuthFailure

_PURPOSE = "reading a coffer of the old pycoffer library"
_NACL_KEY_SIZE = 32

_TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_=-]+\Z")


@dataclass(frozen=True)
class Cipher:
    """A body encoding: its name and how to make a decrypting function from a key."""

    name: str
    describe_key: str
    check_key: Callable[[str, bytes], bytes]
    make: Callable[[bytes], Callable[[bytes], bytes]]


def _key_error(param: str, key: object, wanted: str) -> InvalidArgumentError:
    size = f"{len(key)} bytes" if isinstance(key, (bytes, bytearray)) else type(key).__name__
    return InvalidArgumentError(f"{param} must be {wanted} (raw bytes, not base64), not {size}")


def _fernet_hint(error: InvalidArgumentError, key: object) -> InvalidArgumentError:
    if isinstance(key, (bytes, bytearray)) and len(key) == 44:
        return InvalidArgumentError(
            f"{error}; 44 bytes is the size of a Fernet key: is this a bank of pycoffer 0.0.x (type 'bank-fernet')?"
        )
    return error


def _check_nacl(param: str, key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != _NACL_KEY_SIZE:
        error = _key_error(param, key, "32 bytes")
        if isinstance(key, (bytes, bytearray)) and len(key) == 16:
            error = InvalidArgumentError(f"{error}; 16 bytes is the size of a bank coffer_key: is this a bank coffer?")
        raise _fernet_hint(error, key)
    return bytes(key)


def _check_aes(param: str, key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) not in (16, 24, 32):
        raise _fernet_hint(_key_error(param, key, "16 bytes (24 or 32 also accepted)"), key)
    return bytes(key)


def _check_fernet(param: str, key: bytes) -> bytes:
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        return base64.urlsafe_b64encode(bytes(key))  # the raw key, accepted for convenience
    try:
        if not isinstance(key, (bytes, bytearray)) or len(base64.urlsafe_b64decode(bytes(key))) != 32:
            raise ValueError
    except (ValueError, binascii.Error):
        raise _key_error(param, key, "a 44-character Fernet key") from None
    return bytes(key)


def _nacl(key: bytes) -> Callable[[bytes], bytes]:
    box = require("nacl.secret", _PURPOSE).SecretBox(key)
    crypto_error = require("nacl.exceptions", _PURPOSE).CryptoError

    def open_body(body: bytes) -> bytes:
        try:
            return bytes(box.decrypt(body))
        except (crypto_error, ValueError):
            raise AuthFailure("fails NaCl authentication") from None

    return open_body


def _aes(key: bytes) -> Callable[[bytes], bytes]:
    aead = require("cryptography.hazmat.primitives.ciphers.aead", _PURPOSE).AESOCB3(key)
    invalid_tag = require("cryptography.exceptions", _PURPOSE).InvalidTag

    def open_body(body: bytes) -> bytes:
        if len(body) < 31:
            raise AuthFailure("is too short for AES-OCB")
        tag, nonce, ciphertext = body[:16], body[16:31], body[31:]
        try:
            return aead.decrypt(nonce, ciphertext + tag, None)
        except invalid_tag:
            raise AuthFailure("fails AES-OCB authentication") from None

    return open_body


def _fernet(key: bytes) -> Callable[[bytes], bytes]:
    fernet_module = require("cryptography.fernet", _PURPOSE)
    fernet, invalid_token = fernet_module.Fernet(key), fernet_module.InvalidToken

    def open_body(body: bytes) -> bytes:
        try:
            return fernet.decrypt(body)
        except invalid_token:
            raise AuthFailure("fails Fernet authentication") from None

    return open_body


NACL = Cipher("NaCl secret box", "32 bytes", _check_nacl, _nacl)
AES_OCB = Cipher("AES-OCB", "16 bytes", _check_aes, _aes)
FERNET = Cipher("Fernet", "a 44-character Fernet key", _check_fernet, _fernet)


def looks_like_fernet_token(body: bytes) -> bool:
    """True if a record body is a Fernet token (version 0x80, url-safe base64)."""
    return _TOKEN.match(body) is not None


def opens_with(cipher: Cipher, key: bytes, body: bytes) -> bool:
    """True if ``body`` authenticates under ``cipher`` with ``key`` (wrong-type hints)."""
    try:
        checked = cipher.check_key("key", key)
        cipher.make(checked)(body)
    except (InvalidArgumentError, AuthFailure, ValueError):
        return False
    return True
