"""The old coffer types: which layers each one stacks, and with which keys.

Outermost layer first (upstream reference, section 2.2):

=============  ===========================================  ==============================
type           coffer file                                  each tar member's bytes
=============  ===========================================  ==============================
bank           records: AES-OCB(coffer_key) > zstd > tar    records: NaCl(secure_key) > zstd
bank-fernet    records: Fernet(coffer_key) > zstd > tar     records: NaCl(secure_key) > zstd
store          records: NaCl(coffer_key) > zstd > tar       zstd
market         zstd > tar                                   records: NaCl(secure_key) > zstd
null           zstd > tar                                   plain
=============  ===========================================  ==============================

``bank-fernet`` is the bank of pycoffer before 0.1.0 (0.0.10 on PyPI).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

import pyzstd

from ..errors import InvalidArgumentError, UnknownTypeError
from .ciphers import AES_OCB, FERNET, NACL, Cipher
from .records import LayerError, RecordReader

_BUFFER = 64 * 1024


@dataclass(frozen=True)
class Layer:
    """An encrypted record layer: the key parameter that opens it, and its cipher."""

    key_param: str
    cipher: Cipher


@dataclass(frozen=True)
class LegacyFormat:
    """One old coffer type."""

    name: str
    description: str
    container: Layer | None
    member: Layer | None
    member_zstd: bool

    @property
    def key_params(self) -> tuple[str, ...]:
        return tuple(layer.key_param for layer in (self.container, self.member) if layer is not None)

    def check_keys(self, keys: Mapping[str, object]) -> dict[str, bytes]:
        """The keys, checked: every one this type needs, of the right size, and no other."""
        extra = sorted(set(keys) - set(self.key_params))
        missing = [name for name in self.key_params if keys.get(name) is None]
        needs = ", ".join(self.key_params) or "no keys"
        if extra:
            raise InvalidArgumentError(f"a legacy {self.name} coffer takes {needs}; not {', '.join(extra)}")
        if missing:
            raise InvalidArgumentError(f"a legacy {self.name} coffer needs {needs}; missing {', '.join(missing)}")
        checked = {}
        for layer in (self.container, self.member):
            if layer is not None:
                checked[layer.key_param] = layer.cipher.check_key(layer.key_param, keys[layer.key_param])  # type: ignore[arg-type]
        return checked


FORMATS: dict[str, LegacyFormat] = {
    fmt.name: fmt
    for fmt in (
        LegacyFormat(
            "bank",
            "pycoffer 0.1.x bank: AES-OCB container, NaCl + zstd members",
            Layer("coffer_key", AES_OCB),
            Layer("secure_key", NACL),
            True,
        ),
        LegacyFormat(
            "bank-fernet",
            "pycoffer 0.0.x bank: Fernet container, NaCl + zstd members",
            Layer("coffer_key", FERNET),
            Layer("secure_key", NACL),
            True,
        ),
        LegacyFormat("store", "NaCl container, zstd members (not encrypted)", Layer("coffer_key", NACL), None, True),
        LegacyFormat(
            "market", "zstd container (not encrypted, names visible), NaCl + zstd members", None, Layer("secure_key", NACL), True
        ),
        LegacyFormat("null", "zstd container, plain members (nothing encrypted)", None, None, False),
    )
}


def find_format(name: object) -> LegacyFormat:
    """The old type called ``name``, or :class:`UnknownTypeError` listing them."""
    fmt = FORMATS.get(name) if isinstance(name, str) else None
    if fmt is None:
        raise UnknownTypeError(
            f"unknown legacy coffer type {name!r}: pycoffer 0.1.4 wrote {', '.join(n for n in FORMATS if n != 'bank-fernet')}; "
            "the bank of pycoffer 0.0.x (Fernet) is 'bank-fernet'"
        )
    return fmt


def _buffered(stream: BinaryIO) -> io.BufferedReader:
    if isinstance(stream, io.BufferedReader):
        return stream
    return io.BufferedReader(stream, _BUFFER)  # type: ignore[arg-type]


class _ZstdLayer(io.RawIOBase):
    """pyzstd's reader, its errors tagged with the layer they come from."""

    def __init__(self, source: io.BufferedReader, layer: str) -> None:
        super().__init__()
        self._zstd = pyzstd.ZstdFile(source, "rb")
        self._layer = layer

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            return self._zstd.readinto(buffer)
        except EOFError:
            raise LayerError("truncated", -1, "the zstd stream ends inside a frame", self._layer) from None
        except pyzstd.ZstdError as exc:
            raise LayerError("structure", -1, f"not valid zstd data ({exc})", self._layer) from None


def zstd_reader(stream: BinaryIO, layer: str) -> BinaryIO:
    """The decompressed bytes of ``stream`` (any number of concatenated frames, or none).

    pyzstd reads concatenated frames and reports a truncated frame as
    ``EOFError``; an empty input (upstream's zero-record stream) is refused
    by recent pyzstd, so it is answered here.
    """
    buffered = _buffered(stream)
    if not buffered.peek(1):
        return io.BytesIO(b"")
    return io.BufferedReader(_ZstdLayer(buffered, layer), _BUFFER)  # type: ignore[return-value]


def records(stream: BinaryIO, open_body: Callable[[bytes], bytes], layer: str) -> BinaryIO:
    return io.BufferedReader(RecordReader(stream, open_body, layer), _BUFFER)  # type: ignore[return-value]


class Decoder:
    """Builds the streams of one old coffer from its format and keys."""

    def __init__(self, fmt: LegacyFormat, keys: dict[str, bytes]) -> None:
        self.format = fmt
        self._container = fmt.container.cipher.make(keys[fmt.container.key_param]) if fmt.container else None
        self._member = fmt.member.cipher.make(keys[fmt.member.key_param]) if fmt.member else None

    def container(self, raw: BinaryIO) -> BinaryIO:
        """The tar stream held by the coffer file ``raw``."""
        stream = records(raw, self._container, "container") if self._container else raw
        return zstd_reader(stream, "container")

    def member(self, data: BinaryIO) -> BinaryIO:
        """A member's plain content, from its bytes in the tar."""
        stream = records(data, self._member, "member") if self._member else data
        return zstd_reader(stream, "member") if self.format.member_zstd else stream
