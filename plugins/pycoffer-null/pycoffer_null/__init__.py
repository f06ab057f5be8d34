"""PyCoffer type ``null``: compressed with zstd, not encrypted.

For tests, and for data that needs no secrecy. It detects accidental damage
(every record carries CRCs) but offers no protection against anyone who can
write the file. It takes no keys::

    Coffer.open("public.coffer", "w", type="null")
"""

from __future__ import annotations

from pycoffer_core import CofferType, Layer, PlainLayer, ZstdLayer, hookimpl


class NullType(CofferType):
    """No keys; container layer zstd (level 3, skipped where it doesn't pay); member layer plain."""

    name = "null"
    description = "compressed, not encrypted: for tests and data that needs no secrecy"
    key_params = ()
    auto_flush = False

    def container_layer(self) -> Layer:
        return ZstdLayer(level=3)

    def member_layer(self) -> Layer:
        return PlainLayer()


@hookimpl
def pycoffer_types() -> list[type[CofferType]]:
    return [NullType]
