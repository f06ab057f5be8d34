"""Layers: the reversible transforms a coffer type applies to the bytes it stores.

A coffer type has two layers. The *container layer* seals everything the
coffer file holds (the index records and every member record); the *member
layer* seals each chunk of a member's content before the container layer sees
it. A layer is bound to a *context*: bytes the core builds from the coffer id,
the member id and the chunk number (or the record's offset), so a sealed piece
opened in any other place fails. Layers are stateless and thread-safe: the
core may seal, or open, several pieces at once.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

import pyzstd

from .errors import CofferError, IntegrityError

#: Compressed output must save at least this fraction, or the raw bytes are kept.
MIN_SAVING = 1 / 32
#: Decompressing more than this is refused: a crafted record can't make a
#: reader allocate without bound (a chunk is 256 KiB; an index of 256 MiB
#: holds millions of members).
MAX_DECOMPRESSED = 256 << 20

_limit = threading.local()


@contextmanager
def decompression_limit(max_bytes: int) -> Iterator[None]:
    """Tighten the decompression cap for what this thread opens inside the block.

    The container knows what a record can hold (a chunk, or an index whose
    random ids keep it from compressing much); a layer does not.
    """
    previous = getattr(_limit, "max_bytes", None)
    _limit.max_bytes = min(max_bytes, MAX_DECOMPRESSED)
    try:
        yield
    finally:
        _limit.max_bytes = previous


class Layer(ABC):
    """One transform; ``open(seal(data, ctx), ctx) == data``."""

    #: The output hides the input (looks random): later layers must not compress it.
    encrypts: bool = False
    #: ``open`` detects any change of the sealed bytes or of the context.
    authenticates: bool = False
    #: The output is compressed: later layers must not compress it again.
    compresses: bool = False
    #: :meth:`open` takes any bytes-like input (a ``memoryview`` of the
    #: record read) and may return a view of it. The core then hands it views
    #: and saves a copy of every chunk it reads; a layer without it gets
    #: ``bytes``, always (see :func:`open_layer`). A subclass that overrides
    #: :meth:`open` does not inherit it: it says so itself.
    accepts_views: bool = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # Views are a promise about one open(): a subclass that opens in its
        # own way (a third party's, over one of ours) gets bytes unless it says so.
        if "open" in cls.__dict__ and "accepts_views" not in cls.__dict__:
            cls.accepts_views = False

    @abstractmethod
    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        """Transform ``data`` bound to ``context``.

        ``compressible=False`` tells the layer the input is already encrypted
        or compressed, so compressing it again would only waste time.
        """

    @abstractmethod
    def open(self, data: bytes, context: bytes) -> bytes:
        """Invert :meth:`seal`; raise :class:`IntegrityError` if ``data`` was
        not sealed by this layer's key in this ``context``."""


def bytes_unless_view(result: bytes | bytearray | memoryview, given: object) -> bytes | memoryview:
    """What a layer that accepts views returns: ``result`` as it is when it
    was ``given`` a view (no copy), else as ``bytes``."""
    return result if isinstance(given, memoryview) else bytes(result)


def open_layer(layer: Layer, data: bytes | memoryview, context: bytes) -> bytes | memoryview:
    """``layer.open(data, context)``, with ``data`` made ``bytes`` first
    unless the layer :attr:`~Layer.accepts_views`. Given ``bytes``, the
    layers of this package return ``bytes``; given a view, they may return
    one, with no copy."""
    if not (layer.accepts_views or type(data) is bytes):
        data = bytes(data)
    return layer.open(data, context)  # type: ignore[arg-type]


class PlainLayer(Layer):
    """The identity: stores bytes as they are."""

    accepts_views = True

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        return bytes(data)

    def open(self, data: bytes, context: bytes) -> bytes:
        return bytes_unless_view(data, data)  # type: ignore[return-value]


_RAW = b"\x00"
_ZSTD = b"\x01"


class ZstdLayer(Layer):
    """zstd compression, skipped where it does not pay.

    Output: one flag byte (0 raw, 1 zstd) and the payload. Data that does
    not shrink by :data:`MIN_SAVING` (random bytes, JPEG, ciphertext) is
    kept raw, so reading it back costs nothing.
    """

    compresses = True
    accepts_views = True

    def __init__(self, level: int = 3) -> None:
        self.level = level
        # One compressor per thread, reused: building one costs more than
        # compressing a small member (and the layer must stay thread-safe).
        self._local = threading.local()

    def _compressor(self) -> pyzstd.ZstdCompressor:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = pyzstd.ZstdCompressor(self.level)
        return compressor

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        if len(data) > MAX_DECOMPRESSED:
            # A reader would refuse to open it: refuse to write it.
            raise CofferError(f"a record of {len(data)} bytes exceeds the {MAX_DECOMPRESSED}-byte cap")
        if compressible and len(data) >= 64:
            packed = self._compressor().compress(data, pyzstd.ZstdCompressor.FLUSH_FRAME)
            if len(packed) <= len(data) * (1 - MIN_SAVING):
                return _ZSTD + packed
        return _RAW + bytes(data)

    def open(self, data: bytes, context: bytes) -> bytes:
        flag, payload = bytes(data[:1]), data[1:]
        if flag == _RAW:
            return bytes_unless_view(payload, data)  # type: ignore[return-value]
        if flag == _ZSTD:
            cap = getattr(_limit, "max_bytes", None) or MAX_DECOMPRESSED
            decompressor = pyzstd.ZstdDecompressor()
            try:
                plain = decompressor.decompress(payload, cap + 1)
            except pyzstd.ZstdError as exc:
                raise IntegrityError(f"compressed data is damaged: {exc}") from None
            if len(plain) > cap:
                raise IntegrityError(f"compressed data claims more than the decompression cap ({cap} bytes)")
            if not decompressor.eof or decompressor.unused_data:
                raise IntegrityError("compressed data is truncated or has trailing bytes")
            return plain
        raise IntegrityError("compressed data has an unknown flag byte")


class ChainLayer(Layer):
    """Apply ``first`` then ``second`` when sealing (and the reverse when opening)."""

    accepts_views = True  # each of the two is handed what it takes (see open_layer)

    def __init__(self, first: Layer, second: Layer) -> None:
        self.first = first
        self.second = second
        self.encrypts = first.encrypts or second.encrypts
        self.authenticates = first.authenticates or second.authenticates
        self.compresses = first.compresses or second.compresses

    def seal(self, data: bytes, context: bytes, *, compressible: bool = True) -> bytes:
        inner = self.first.seal(data, context, compressible=compressible)
        still_compressible = compressible and not (self.first.encrypts or self.first.compresses)
        return self.second.seal(inner, context, compressible=still_compressible)

    def open(self, data: bytes, context: bytes) -> bytes:
        return open_layer(self.first, open_layer(self.second, data, context), context)  # type: ignore[return-value]
