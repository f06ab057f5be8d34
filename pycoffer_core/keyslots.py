"""Passphrases: a coffer's keys wrapped in key slots.

A coffer opened with ``password=`` keeps its type's keys (random, as
``gen_params()`` makes them) wrapped in *slots* stored in the key-slot area
of the file. One Argon2id run turns a passphrase into a key-encryption key
(KEK); AES-256-GCM under the KEK wraps the keys. All slots share one salt and
one set of KDF parameters, so trying a passphrase costs one KDF run however
many slots there are. Changing, adding or removing a passphrase rewrites the
slots only: member data is never re-encrypted.

Blob layout (big-endian), stored as the key-slot area's blob::

    version u8 = 1 | memory_kib u32 | iterations u32 | lanes u8 | salt[16] | count u8
    then per slot:  created u64 (Unix seconds) | nonce[12] | length u16 | sealed[length]

``sealed`` is AES-256-GCM(KEK, nonce, keys, ad) with
``ad = b"pycoffer/keyslot\\0" + coffer_id + the 26 bytes of KDF fields + created``,
and ``keys`` encodes the type's key parameters as
``count u8`` then ``name_len u8 | name | value_len u16 | value`` each.
"""

from __future__ import annotations

import os
import struct
import time
import unicodedata
from dataclasses import dataclass

from .errors import IntegrityError, InvalidArgumentError, KdfLimitError, WrongKeyError
from .optional import require

_PURPOSE = "opening a coffer with a passphrase"


def _argon2id(**params: object) -> object:
    return require("cryptography.hazmat.primitives.kdf.argon2", _PURPOSE).Argon2id(**params)


def _aesgcm(key: bytes) -> object:
    return require("cryptography.hazmat.primitives.ciphers.aead", _PURPOSE).AESGCM(key)


def _invalid_tag() -> type[Exception]:
    return require("cryptography.exceptions", _PURPOSE).InvalidTag

VERSION = 1
_KDF = struct.Struct(">BIIB16s")  # version, memory KiB, iterations, lanes, salt
_SLOT = struct.Struct(">Q12sH")  # created, nonce, sealed length
_AD_PREFIX = b"pycoffer/keyslot\x00"

#: Parameters a file may ask for at most: beyond them the file is refused
#: before any work, so a hostile coffer can't make its reader burn gigabytes.
MAX_MEMORY_KIB = 256 * 1024  # 4x what writers use
MAX_ITERATIONS = 32  # above what calibration ever picks (MAX_CALIBRATED_ITERATIONS)
MAX_LANES = 16
#: New slots: 64 MiB and 4 lanes (borg's choice), iterations calibrated so
#: one unlock takes about this long on the machine that writes the slot.
MEMORY_KIB = 64 * 1024
LANES = 4
TARGET_SECONDS = 0.3
MIN_ITERATIONS, MAX_CALIBRATED_ITERATIONS = 3, 20
#: Set to 1 (tests only) for tiny KDF parameters: fast and WEAK.
INSECURE_FAST_ENV = "PYCOFFER_INSECURE_FAST_KDF"


@dataclass(frozen=True)
class KdfParams:
    memory_kib: int
    iterations: int
    lanes: int
    salt: bytes

    def derive(self, password: bytes) -> bytes:
        return _argon2id(
            salt=self.salt,
            length=32,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        ).derive(password)

    def encode(self) -> bytes:
        return _KDF.pack(VERSION, self.memory_kib, self.iterations, self.lanes, self.salt)


@dataclass(frozen=True)
class Slot:
    created: int
    nonce: bytes
    sealed: bytes


@dataclass(frozen=True)
class SlotInfo:
    """A key slot as :meth:`Coffer.key_slots` lists it."""

    index: int
    kdf: str
    memory_kib: int
    iterations: int
    lanes: int
    created: int


@dataclass(frozen=True)
class KeySlots:
    kdf: KdfParams | None
    slots: tuple[Slot, ...] = ()

    # ------------------------------------------------------------ encoding

    @classmethod
    def decode(cls, blob: bytes) -> KeySlots:
        if not blob:
            return cls(None)
        try:
            version, memory, iterations, lanes, salt = _KDF.unpack_from(blob)
            if version != VERSION:
                raise IntegrityError(f"key slots of version {version} are not supported")
            kdf = KdfParams(memory, iterations, lanes, salt)
            pos = _KDF.size
            count = blob[pos]
            pos += 1
            slots = []
            for _ in range(count):
                created, nonce, length = _SLOT.unpack_from(blob, pos)
                pos += _SLOT.size
                sealed = blob[pos : pos + length]
                if len(sealed) != length:
                    raise IntegrityError("key slots are truncated")
                pos += length
                slots.append(Slot(created, nonce, sealed))
        except (struct.error, IndexError):
            raise IntegrityError("key slots are malformed") from None
        if pos != len(blob):
            raise IntegrityError("key slots are malformed (trailing bytes)")
        if not slots:
            # No writer stores parameters without a slot: nothing vouches
            # for these (a planted set would be reused by the next slot).
            return cls(None)
        return cls(kdf, tuple(slots))

    def encode(self) -> bytes:
        if self.kdf is None or not self.slots:
            return b""
        parts = [self.kdf.encode(), bytes([len(self.slots)])]
        for slot in self.slots:
            parts.append(_SLOT.pack(slot.created, slot.nonce, len(slot.sealed)) + slot.sealed)
        return b"".join(parts)

    # ------------------------------------------------------------ use

    def infos(self) -> list[SlotInfo]:
        kdf = self.kdf
        if kdf is None:
            return []
        return [
            SlotInfo(i, "argon2id", kdf.memory_kib, kdf.iterations, kdf.lanes, slot.created)
            for i, slot in enumerate(self.slots)
        ]

    def _kek(self, password: object) -> bytes:
        assert self.kdf is not None
        _check_caps(self.kdf)
        return self.kdf.derive(encode_password(password))

    def unlock(self, password: object, coffer_id: bytes) -> dict[str, bytes]:
        """The keys a passphrase opens; :class:`WrongKeyError` if it opens none."""
        if self.kdf is None or not self.slots:
            raise WrongKeyError("this coffer has no passphrase: open it with its keys (--key-file, on the command line)")
        kek = self._kek(password)
        index = self._find(kek, coffer_id)
        if index is None:
            raise WrongKeyError("wrong passphrase for this coffer")
        return _decode_keys(self._open_slot(kek, coffer_id, self.slots[index]))

    def _find(self, kek: bytes, coffer_id: bytes) -> int | None:
        for index, slot in enumerate(self.slots):
            try:
                self._open_slot(kek, coffer_id, slot)
            except _invalid_tag():
                continue
            return index
        return None

    def _open_slot(self, kek: bytes, coffer_id: bytes, slot: Slot) -> bytes:
        return _aesgcm(kek).decrypt(slot.nonce, slot.sealed, self._ad(coffer_id, slot.created))

    def _ad(self, coffer_id: bytes, created: int) -> bytes:
        assert self.kdf is not None
        return _AD_PREFIX + coffer_id + self.kdf.encode() + struct.pack(">Q", created)

    def with_password(self, password: object, coffer_id: bytes, keys: dict[str, bytes]) -> KeySlots:
        """A copy with one more slot opening ``keys`` with ``password``.

        The slots share one set of KDF parameters: those of the slots there
        are (refused, :class:`IntegrityError`, if weaker than new slots get:
        the file was changed), or fresh ones for the first slot.
        """
        kdf = self.kdf if self.kdf is not None and self.slots else new_kdf_params()
        if not _strong_enough(kdf):
            raise IntegrityError(
                f"this coffer's key slots use Argon2id with {kdf.memory_kib} KiB and {kdf.iterations} "
                f"iteration(s), weaker than new slots get ({MEMORY_KIB} KiB, at least {MIN_ITERATIONS}): "
                "a passphrase added with them would be easy to guess. Slots made with "
                f"{INSECURE_FAST_ENV}=1 (tests only) have them; otherwise the file was changed. "
                "Make its passphrases again: change_password() each one, or remove its slots while "
                "it is open with its raw keys and add them back"
            )
        current = KeySlots(kdf, self.slots)
        kek = current._kek(password)
        if current._find(kek, coffer_id) is not None:
            raise InvalidArgumentError("that passphrase already opens this coffer")
        created = int(time.time())
        nonce = os.urandom(12)
        sealed = _aesgcm(kek).encrypt(nonce, _encode_keys(keys), current._ad(coffer_id, created))
        return KeySlots(kdf, (*self.slots, Slot(created, nonce, sealed)))

    def without_password(self, password: object, coffer_id: bytes) -> KeySlots:
        """A copy without the slot ``password`` opens; :class:`WrongKeyError` if none."""
        if self.kdf is None or not self.slots:
            raise WrongKeyError("this coffer has no passphrase")
        index = self._find(self._kek(password), coffer_id)
        if index is None:
            raise WrongKeyError("that passphrase opens no slot of this coffer")
        return KeySlots(self.kdf, self.slots[:index] + self.slots[index + 1 :])


def encode_password(password: object) -> bytes:
    """Passphrases are compared as UTF-8 of their NFC form (bytes: as given)."""
    if isinstance(password, str):
        try:
            password = unicodedata.normalize("NFC", password).encode("utf-8")
        except UnicodeEncodeError:
            # Not ``from exc``: the error's text holds the passphrase.
            raise InvalidArgumentError(
                "a passphrase must be text UTF-8 can encode (this one holds a lone surrogate, "
                "as bytes that were not UTF-8 become when decoded)"
            ) from None
    if not isinstance(password, bytes):
        raise InvalidArgumentError(f"password must be str or bytes, not {type(password).__name__}")
    if not password:
        raise InvalidArgumentError("password must not be empty")
    return password


def _check_caps(kdf: KdfParams) -> None:
    if (
        not 8 * kdf.lanes <= kdf.memory_kib <= MAX_MEMORY_KIB
        or not 1 <= kdf.iterations <= MAX_ITERATIONS
        or not 1 <= kdf.lanes <= MAX_LANES
    ):
        raise KdfLimitError(
            f"the coffer asks for Argon2id memory={kdf.memory_kib} KiB, iterations="
            f"{kdf.iterations}, lanes={kdf.lanes}: above this reader's caps "
            f"({MAX_MEMORY_KIB} KiB, {MAX_ITERATIONS}, {MAX_LANES}); the file may be hostile"
        )


def _strong_enough(kdf: KdfParams) -> bool:
    """Whether new slots may share ``kdf`` (tests may ask for weak ones)."""
    if os.environ.get(INSECURE_FAST_ENV) == "1":
        return True
    return kdf.memory_kib >= MEMORY_KIB and kdf.iterations >= MIN_ITERATIONS


def new_kdf_params() -> KdfParams:
    """Fresh salt; parameters calibrated on this machine (or tiny ones for tests)."""
    salt = os.urandom(16)
    if os.environ.get(INSECURE_FAST_ENV) == "1":
        return KdfParams(1024, 1, 1, salt)
    probe = KdfParams(MEMORY_KIB, 1, LANES, salt)
    start = time.perf_counter()
    probe.derive(b"calibration")
    per_iteration = max(time.perf_counter() - start, 1e-6)
    iterations = round(TARGET_SECONDS / per_iteration)
    iterations = min(MAX_CALIBRATED_ITERATIONS, max(MIN_ITERATIONS, iterations))
    return KdfParams(MEMORY_KIB, iterations, LANES, salt)


def _encode_keys(keys: dict[str, bytes]) -> bytes:
    parts = [bytes([len(keys)])]
    for name, value in sorted(keys.items()):
        raw = name.encode("ascii")
        value = bytes(value)
        parts.append(bytes([len(raw)]) + raw + struct.pack(">H", len(value)) + value)
    return b"".join(parts)


def _decode_keys(blob: bytes) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    pos = 1
    for _ in range(blob[0]):
        length = blob[pos]
        name = blob[pos + 1 : pos + 1 + length].decode("ascii")
        pos += 1 + length
        (size,) = struct.unpack_from(">H", blob, pos)
        keys[name] = blob[pos + 2 : pos + 2 + size]
        pos += 2 + size
    return keys
