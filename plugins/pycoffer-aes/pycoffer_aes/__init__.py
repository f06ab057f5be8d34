"""PyCoffer type ``aes``: AES-256-CTR + HMAC-SHA256, computable in pure Python.

For places where no compiled crypto library can be installed. The container
layer encrypts every record of the file with AES-256 in CTR mode and then
authenticates it with HMAC-SHA256 (encrypt-then-MAC, the record's context as
associated data); member content is compressed with zstd before that.

The AES itself runs through ``pyaes`` (pure Python, about 0.3 MB/s) or, when
``cryptography`` is importable, through it (about 1000 times faster). Both
write the same bytes, so either reads what the other wrote. The environment
variable ``PYCOFFER_AES_BACKEND`` chooses: ``pyaes`` forces the pure path,
``cryptography`` insists on the fast one, ``auto`` (or unset) takes the
fastest available. It is read each time a coffer is opened::

    params = Coffer.gen_params("aes")
    with Coffer.open("notes.coffer", "w", type="aes", **params) as coffer:
        coffer.write("todo.txt", b"...")
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

import pyaes

from pycoffer_core import ChainLayer, CofferType, IntegrityError, Layer, ZstdLayer, hookimpl
from pycoffer_core.errors import InvalidArgumentError
from pycoffer_core.sealing import KEY_SIZE, MacLayer, derive_key, raw_key

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
except ImportError:  # the pure path needs nothing compiled
    Cipher = None  # type: ignore[assignment,misc]

#: Chooses the AES implementation: ``pyaes``, ``cryptography`` or ``auto``.
BACKEND_ENV = "PYCOFFER_AES_BACKEND"
IV_SIZE = 16
#: HKDF-Expand ``info`` of the two subkeys of ``aes_key``: one key per use.
ENCRYPTION_PURPOSE = b"pycoffer/aes/container-enc"
MAC_PURPOSE = b"pycoffer/aes/container-mac"

#: AES-256-CTR under one key: ``(iv, data) -> data XOR keystream``.
Ctr = Callable[[bytes, bytes], bytes]


def _ctr_pyaes(key: bytes) -> Ctr:
    def ctr(iv: bytes, data: bytes) -> bytes:
        # pyaes's Counter is the whole 16-byte block as one big-endian number,
        # wrapping at 2**128: exactly what cryptography's (OpenSSL's) CTR does.
        counter = pyaes.Counter(int.from_bytes(iv, "big"))
        return bytes(pyaes.AESModeOfOperationCTR(key, counter=counter).encrypt(bytes(data)))

    return ctr


def _ctr_cryptography(key: bytes) -> Ctr:
    algorithm = algorithms.AES(key)  # built once: it checks the key each time

    def ctr(iv: bytes, data: bytes) -> bytes:
        # CTR is a stream mode: ``update`` returns every byte, ``finalize`` none.
        return Cipher(algorithm, modes.CTR(iv)).encryptor().update(data)

    return ctr


def fast_path_available() -> bool:
    """Whether ``cryptography`` is importable, so the fast path can run."""
    return Cipher is not None


def backend_name(requested: str | None = None) -> str:
    """The backend a coffer opened now uses: ``"pyaes"`` or ``"cryptography"``.

    ``requested`` defaults to ``$PYCOFFER_AES_BACKEND``. An unknown name, or
    ``cryptography`` when it is not installed, raises
    :class:`InvalidArgumentError`.
    """
    name = (os.environ.get(BACKEND_ENV, "") if requested is None else requested).strip().lower()
    if name in ("", "auto"):
        return "cryptography" if fast_path_available() else "pyaes"
    if name == "pyaes":
        return name
    if name == "cryptography":
        if not fast_path_available():
            raise InvalidArgumentError(
                f"{BACKEND_ENV}=cryptography, but cryptography is not installed: "
                "pip install 'pycoffer-aes[fast]', or unset the variable"
            )
        return name
    raise InvalidArgumentError(
        f"{BACKEND_ENV} must be 'pyaes', 'cryptography' or 'auto', not {name!r}"
    )


class AesCtrLayer(Layer):
    """AES-256-CTR with a random 16-byte IV: output ``iv || ciphertext``.

    Hides but does not authenticate: use it only chained before a
    :class:`~pycoffer_core.sealing.MacLayer`. ``backend`` is as for
    :func:`backend_name` (both write the same bytes); ``random`` makes the
    IVs, ``os.urandom`` by default (tests inject a fixed one to compare the
    backends).
    """

    encrypts = True
    accepts_views = True  # both backends take any bytes-like input

    def __init__(
        self,
        key: bytes,
        *,
        backend: str | None = None,
        random: Callable[[int], bytes] | None = None,
    ) -> None:
        key = raw_key("AES key", key)
        self.backend = backend_name(backend)
        self._ctr: Ctr = (_ctr_pyaes if self.backend == "pyaes" else _ctr_cryptography)(key)
        self._random = random

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        iv = (self._random or os.urandom)(IV_SIZE)
        return iv + self._ctr(iv, data)

    def open(self, data: bytes, context: bytes) -> bytes:
        if len(data) < IV_SIZE:
            raise IntegrityError("encrypted data is too short to hold its IV")
        return self._ctr(bytes(data[:IV_SIZE]), data[IV_SIZE:])


class AesType(CofferType):
    """AES-256-CTR + HMAC-SHA256 container, zstd members; runs in pure Python.

    Key (from :meth:`gen_params`; keep it, nothing else opens the coffer):

    ``aes_key``
        32 random bytes. Two subkeys are derived from it with HKDF-Expand
        (standard library only): one for AES-256-CTR, one for HMAC-SHA256.

    A key of the wrong kind or size raises
    :class:`~pycoffer_core.errors.InvalidArgumentError` naming it. See the
    module docstring for ``PYCOFFER_AES_BACKEND``.
    """

    name = "aes"
    description = "AES + HMAC in pure Python where nothing compiled can be installed (fast with cryptography)"
    key_params = ("aes_key",)
    auto_flush = False

    def __init__(self, **params: bytes) -> None:
        super().__init__(**params)
        aes_key = raw_key("aes_key", params["aes_key"])
        self._encryption_key = derive_key(aes_key, ENCRYPTION_PURPOSE)
        self._mac_key = derive_key(aes_key, MAC_PURPOSE)

    @classmethod
    def gen_params(cls) -> dict[str, bytes]:
        return {"aes_key": secrets.token_bytes(KEY_SIZE)}

    def container_layer(self) -> Layer:
        # Encrypt, then MAC the IV and ciphertext with the context as associated data.
        return ChainLayer(AesCtrLayer(self._encryption_key), MacLayer(self._mac_key))

    def member_layer(self) -> Layer:
        return ZstdLayer(level=3)


@hookimpl
def pycoffer_types() -> list[type[CofferType]]:
    return [AesType]
