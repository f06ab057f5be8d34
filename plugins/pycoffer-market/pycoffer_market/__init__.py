"""PyCoffer type ``market``: for big files, with names and sizes in the open.

Each chunk of member content is compressed with zstd and sealed in a NaCl
secret box (PyNaCl). The container layer does not encrypt: the index (member
names, sizes, times) and the framing are zstd-compressed and readable by
anyone with the file, by design, so listing needs no key. They are
authenticated, though: every record carries an HMAC-SHA256 tag bound to where
it belongs, so without the key nobody can rename, swap, drop or roll back a
member undetected (rolling back the whole file by truncating it is the one
change no single file can reveal)::

    params = Coffer.gen_params("market")
    with Coffer.open("videos.coffer", "w", type="market", **params) as shelf:
        shelf.add("raw-footage")
"""

from __future__ import annotations

import secrets

from pycoffer_core import ChainLayer, CofferType, Layer, ZstdLayer, hookimpl
from pycoffer_core.sealing import KEY_SIZE, MacLayer, SecretBoxLayer, derive_key, raw_key

#: HKDF-Expand ``info`` of the two subkeys of ``secure_key``: one key per use.
CONTAINER_MAC_PURPOSE = b"pycoffer/market/container-mac"
MEMBER_BOX_PURPOSE = b"pycoffer/market/member-box"


class MarketType(CofferType):
    """Big files: members sealed with NaCl + zstd; the index visible but authenticated.

    Key (from :meth:`gen_params`; keep it, nothing else reads the members):

    ``secure_key``
        32 random bytes. Two subkeys are derived from it
        (:func:`~pycoffer_core.sealing.derive_key`): one authenticates every
        record of the file (HMAC-SHA256), the other seals member content
        (XSalsa20-Poly1305). Names, sizes and times are not secret.

    A key of the wrong kind or size raises
    :class:`~pycoffer_core.errors.InvalidArgumentError` naming it.
    """

    name = "market"
    description = "big files: encrypted content, names and sizes visible but tamper-proof"
    key_params = ("secure_key",)
    auto_flush = False

    def __init__(self, **params: bytes) -> None:
        super().__init__(**params)
        secure_key = raw_key("secure_key", params["secure_key"])
        self._mac_key = derive_key(secure_key, CONTAINER_MAC_PURPOSE)
        self._box_key = derive_key(secure_key, MEMBER_BOX_PURPOSE)

    @classmethod
    def gen_params(cls) -> dict[str, bytes]:
        return {"secure_key": secrets.token_bytes(KEY_SIZE)}

    def container_layer(self) -> Layer:
        return ChainLayer(ZstdLayer(level=3), MacLayer(self._mac_key))

    def member_layer(self) -> Layer:
        return ChainLayer(ZstdLayer(level=3), SecretBoxLayer(self._box_key))


@hookimpl
def pycoffer_types() -> list[type[CofferType]]:
    return [MarketType]
