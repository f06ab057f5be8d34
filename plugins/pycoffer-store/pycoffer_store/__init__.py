"""PyCoffer type ``store``: fast and small, for archives.

One key. Member content is compressed with zstd; the container layer, a
NaCl secret box (PyNaCl), then encrypts every record of the file, so names,
sizes, times and content are all hidden. Changes are committed at
``flush()`` and ``close()`` (``auto_flush`` off), which suits bulk adds::

    params = Coffer.gen_params("store")
    with Coffer.open("photos.coffer", "w", type="store", **params) as archive:
        archive.add("Pictures")
"""

from __future__ import annotations

import secrets

from pycoffer_core import CofferType, Layer, ZstdLayer, hookimpl
from pycoffer_core.sealing import KEY_SIZE, SecretBoxLayer, raw_key

#: Measured on 256 KiB chunks (the core's chunk size) of Python sources and
#: of shared libraries, here: levels 1-3 compress at 280-360 MB/s and level 3
#: gives the best ratio of them (4.2x); level 4 halves the speed (120-180
#: MB/s) for 3-6% smaller output, level 12 runs at 14 MB/s for 15%. Bulk adds
#: should run near the secret box's speed, so the knee, level 3, it is.
ZSTD_LEVEL = 3


class StoreType(CofferType):
    """Fast and small: zstd-compressed members in a NaCl secret-box container.

    Key (from :meth:`gen_params`; keep it, nothing else opens the coffer):

    ``coffer_key``
        32 random bytes. Seals every record of the file (index, names,
        sizes, times, member content) with XSalsa20-Poly1305.

    A key of the wrong kind or size raises
    :class:`~pycoffer_core.errors.InvalidArgumentError` naming it.
    """

    name = "store"
    description = "fast and small, for archives: zstd members, one secret-box layer, commit at flush"
    key_params = ("coffer_key",)
    auto_flush = False

    def __init__(self, **params: bytes) -> None:
        super().__init__(**params)
        self._coffer_key = raw_key("coffer_key", params["coffer_key"])

    @classmethod
    def gen_params(cls) -> dict[str, bytes]:
        return {"coffer_key": secrets.token_bytes(KEY_SIZE)}

    def container_layer(self) -> Layer:
        return SecretBoxLayer(self._coffer_key)

    def member_layer(self) -> Layer:
        return ZstdLayer(level=ZSTD_LEVEL)


@hookimpl
def pycoffer_types() -> list[type[CofferType]]:
    return [StoreType]
