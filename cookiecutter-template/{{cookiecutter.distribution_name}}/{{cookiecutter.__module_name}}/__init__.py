"""PyCoffer type ``{{ cookiecutter.type_name }}``, from the distribution ``{{ cookiecutter.distribution_name }}``.

Once this distribution is installed, the type is there::

    from pycoffer_core import Coffer

    keys = Coffer.gen_params("{{ cookiecutter.type_name }}")   # keep these keys safe
    with Coffer.open("vault.coffer", "w", type="{{ cookiecutter.type_name }}", **keys) as coffer:
        coffer.write("notes.txt", b"...")

The core finds this module through the ``pycoffer`` entry point declared in
``pyproject.toml`` and calls :func:`pycoffer_types`, which returns the type.
"""

from __future__ import annotations

import secrets

from pycoffer_core import ChainLayer, CofferType, Layer, ZstdLayer, hookimpl
from pycoffer_core.sealing import KEY_SIZE, derive_key, raw_key

from .layers import ChaCha20Poly1305Layer

__version__ = "0.1.0"

#: HKDF ``info`` of the two subkeys derived from the one raw key: one per layer.
CONTAINER_PURPOSE = b"{{ cookiecutter.distribution_name }}/container"
MEMBER_PURPOSE = b"{{ cookiecutter.distribution_name }}/member"


class {{ cookiecutter.__class_name }}(CofferType):
    """The coffer type ``{{ cookiecutter.type_name }}``: one key, two encrypted layers.

    Key (from :meth:`gen_params`; keep it, nothing else opens the coffer):

    ``{{ cookiecutter.__key_param }}``
        32 random bytes. One subkey seals every record of the file (index,
        names, sizes, member records), another each chunk of member content.

    A missing key, or one of the wrong kind or size, raises
    :class:`~pycoffer_core.errors.InvalidArgumentError` naming it.
    """

    name = "{{ cookiecutter.type_name }}"
    description = {{ cookiecutter.description | tojson }}
    key_params = ("{{ cookiecutter.__key_param }}",)
    #: True commits every change at once; False commits at flush() and close().
    auto_flush = False

    def __init__(self, **params: bytes) -> None:
        super().__init__(**params)  # refuses missing and unknown key parameters
        key = raw_key("{{ cookiecutter.__key_param }}", params["{{ cookiecutter.__key_param }}"])
        self._container_key = derive_key(key, CONTAINER_PURPOSE)
        self._member_key = derive_key(key, MEMBER_PURPOSE)

    @classmethod
    def gen_params(cls) -> dict[str, bytes]:
        return {"{{ cookiecutter.__key_param }}": secrets.token_bytes(KEY_SIZE)}

    # ======================================================================
    # YOUR TRANSFORMS GO HERE.
    #
    # container_layer() seals everything the coffer file holds: the index
    # (names, sizes, times), the framing, and every member record.
    # member_layer() seals each chunk of a member's content first.
    #
    # The example below encrypts both with ChaCha20-Poly1305 (layers.py) and
    # compresses member content with zstd before encrypting it. Replace
    # either with your own Layer; chain layers with ChainLayer(first, second).
    # Keep encrypting layers authenticated and bound to the context: the
    # conformance suite in tests/ fails if they are not.
    # ======================================================================

    def container_layer(self) -> Layer:
        return ChaCha20Poly1305Layer(self._container_key)

    def member_layer(self) -> Layer:
        return ChainLayer(ZstdLayer(level=3), ChaCha20Poly1305Layer(self._member_key))


@hookimpl
def pycoffer_types() -> list[type[CofferType]]:
    """The types this plugin provides (the ``pycoffer_types`` hook)."""
    return [{{ cookiecutter.__class_name }}]
