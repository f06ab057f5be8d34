"""PyCoffer type ``bank``: maximum security, every change durable at once.

Two independent keys seal two nested layers. The container layer (Fernet,
from ``cryptography``) hides everything the file holds: the index, member
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
import secrets

from cryptography.fernet import Fernet, InvalidToken

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


class FernetLayer(Layer):
    """Fernet (AES-128-CBC + HMAC-SHA256), bound to the context.

    The plaintext is :func:`~pycoffer_core.sealing.bind` ``(data, context)``,
    since Fernet takes no associated data. The record holds the Fernet token
    base64-decoded: the same bytes, a quarter smaller than the text form
    (re-encode them to get a standard token). A token carries the time it was
    made, in clear.
    """

    encrypts = True
    authenticates = True

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        return base64.urlsafe_b64decode(self._fernet.encrypt(bind(data, context)))

    def open(self, data: bytes, context: bytes) -> bytes:
        try:
            plain = self._fernet.decrypt(base64.urlsafe_b64encode(data))
        except InvalidToken:
            raise IntegrityError("decryption failed: wrong coffer_key, or the data was changed") from None
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
