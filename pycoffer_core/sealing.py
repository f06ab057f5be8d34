"""Building blocks for encrypting coffer types: keys, context binding, sealed layers.

The backend plugins (``bank``, ``store``, ``market``, ``aes``) share these so
each primitive is wired up, and checked, in one place:

- :func:`raw_key` checks a raw key parameter and names it when it is wrong;
- :func:`derive_key` derives independent subkeys from one key;
- :func:`bind` / :func:`unbind` tie a sealed piece to its context, for
  primitives that take no associated data;
- :class:`SecretBoxLayer` (PyNaCl's secret box) and :class:`MacLayer`
  (HMAC-SHA256, the context as associated data) are ready-made layers.

Everything here except :class:`SecretBoxLayer` needs only the standard
library, so a pure-Python backend (``aes``) can use it. Every failure of an
``open`` raises :class:`~pycoffer_core.errors.IntegrityError`; the layers
hold only their keys, so they are stateless and thread-safe.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from .errors import IntegrityError, InvalidArgumentError
from .layers import Layer, bytes_unless_view

#: The size of every raw key the shipped types take, and of every derived key.
KEY_SIZE = 32
#: The size of :func:`context_digest` and of a :class:`MacLayer` tag.
DIGEST_SIZE = 32

_CONTEXT_PERSON = b"pycoffer-context"  # BLAKE2b personalisation: at most 16 bytes
_CONTEXT_LENGTH = struct.Struct(">Q")
_NONCE_SIZE = 24  # the secret box's (XSalsa20) nonce


def raw_key(param: str, value: object, size: int = KEY_SIZE) -> bytes:
    """``value`` as bytes if it is a raw key of ``size`` bytes.

    Raises :class:`InvalidArgumentError` naming ``param`` otherwise; the
    message never shows the value, which may be a real key.
    """
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(
            f"{param} must be {size} raw bytes (as Coffer.gen_params returns), "
            f"not {type(value).__name__}"
        )
    key = bytes(value)
    if len(key) != size:
        raise InvalidArgumentError(
            f"{param} must be {size} bytes (as Coffer.gen_params returns), not {len(key)} bytes"
        )
    return key


def derive_key(key: bytes, purpose: bytes) -> bytes:
    """A :data:`KEY_SIZE`-byte subkey of ``key`` for ``purpose``.

    This is HKDF-Expand-SHA256 (RFC 5869) with ``info=purpose`` and a length
    of one hash block, which reduces to a single HMAC. Written with the
    standard library rather than ``cryptography``'s HKDF so that a
    pure-Python backend can use it; the tests check it against
    ``cryptography``. ``key`` must already be uniformly random (a raw key),
    which is what lets HKDF skip its extract step.
    """
    return hmac.new(key, purpose + b"\x01", hashlib.sha256).digest()


def context_digest(context: bytes) -> bytes:
    """A collision-resistant digest of ``context`` (BLAKE2b-256, personalised)."""
    return hashlib.blake2b(context, digest_size=DIGEST_SIZE, person=_CONTEXT_PERSON).digest()


def bind(data: bytes, context: bytes) -> bytes:
    """``data`` prefixed with the digest of ``context``, to be sealed together.

    For primitives without associated data (Fernet, the secret box): sealed
    this way, the piece only opens where :func:`unbind` is given the same
    context. The digest needs no key: the primitive authenticates it.
    """
    return context_digest(context) + data


def unbind(plain: bytes, context: bytes) -> bytes:
    """Invert :func:`bind` on authenticated plaintext; :class:`IntegrityError`
    if it was sealed for another context."""
    return bytes(_unbound_view(plain, context))


def _unbound_view(plain: bytes, context: bytes) -> memoryview:
    """:func:`unbind`, as a view of ``plain`` (no copy)."""
    view = memoryview(plain)
    if len(view) < DIGEST_SIZE or not hmac.compare_digest(bytes(view[:DIGEST_SIZE]), context_digest(context)):
        raise IntegrityError("a sealed piece was moved here from another place")
    return view[DIGEST_SIZE:]


class MacLayer(Layer):
    """Authenticates without hiding: ``data || HMAC-SHA256(key, context, data)``.

    The context is the MAC's associated data (length-prefixed, so context and
    data can't be re-split). Compose it after a cipher for encrypt-then-MAC,
    or alone where the data may be seen but not changed.
    """

    authenticates = True
    accepts_views = True

    def __init__(self, key: bytes) -> None:
        self._key = raw_key("MAC key", key)

    def _tag(self, data: bytes, context: bytes) -> bytes:
        # One-shot ``hmac.digest`` (OpenSSL, no HMAC object): this runs twice
        # per commit, and the copy of ``data`` it costs is the cheaper part.
        return hmac.digest(self._key, b"".join((_CONTEXT_LENGTH.pack(len(context)), context, data)), "sha256")

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        return bytes(data) + self._tag(data, context)

    def open(self, data: bytes, context: bytes) -> bytes:
        if len(data) < DIGEST_SIZE:
            raise IntegrityError("authenticated data is too short to hold its tag")
        body = data[:-DIGEST_SIZE]  # a view of a view: no copy
        if not hmac.compare_digest(bytes(data[-DIGEST_SIZE:]), self._tag(body, context)):
            raise IntegrityError("authentication failed: wrong key, or the data was changed")
        return bytes_unless_view(body, data)  # type: ignore[return-value]


class SecretBoxLayer(Layer):
    """PyNaCl's secret box (XSalsa20-Poly1305, random 24-byte nonce), bound to the context.

    Output: nonce, ciphertext of :func:`bind` ``(data, context)``, tag; 72
    bytes more than the input.
    """

    encrypts = True
    authenticates = True
    accepts_views = True

    def __init__(self, key: bytes) -> None:
        # Imported here, not at the top: the rest of this module must stay
        # importable by pure-Python backends that never use the secret box.
        import nacl.bindings
        import nacl.exceptions

        # PyNaCl's bindings, not its ``SecretBox`` class: the same libsodium
        # call and the same bytes (nonce || MAC || ciphertext), without the
        # wrapper objects ``SecretBox`` builds around each message, which
        # cost more than sealing a small one.
        self._key = raw_key("secret box key", key)
        self._seal = nacl.bindings.crypto_secretbox_easy
        self._open = nacl.bindings.crypto_secretbox_open_easy
        self._crypto_error = nacl.exceptions.CryptoError

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        nonce = os.urandom(_NONCE_SIZE)
        return nonce + self._seal(bind(data, context), nonce, self._key)

    def open(self, data: bytes, context: bytes) -> bytes:
        with memoryview(data) as view:
            # The binding takes bytes only: one copy of the ciphertext, as
            # slicing ``bytes`` would make.
            nonce, ciphertext = bytes(view[:_NONCE_SIZE]), bytes(view[_NONCE_SIZE:])
        try:
            plain = self._open(ciphertext, nonce, self._key)
        except self._crypto_error:
            # Every failure of the binding (short nonce or input, bad tag) is a CryptoError.
            raise IntegrityError(
                "decryption failed: wrong key, or the data was changed"
            ) from None
        return bytes_unless_view(_unbound_view(plain, context), data)  # type: ignore[return-value]
