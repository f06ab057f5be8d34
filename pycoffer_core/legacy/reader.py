"""Reading a coffer written by the old ``pycoffer`` library, read-only and streaming.

An old coffer is one compressed (and for bank and store, encrypted) tar
stream with no index, so it can only be read front to back. Opening one
reads it through once (:func:`open_legacy`): that checks the keys and the
type, lists the members with their plain sizes, mtimes and SHA-256, and
finds damage before anything is written anywhere. Each later read is
another pass that stops at the member it wants; :meth:`LegacyCoffer.iter_members`,
:meth:`~LegacyCoffer.extractall` and :func:`~pycoffer_core.legacy.migrate`
take everything in one pass. Memory stays bounded by one record and the
decompression window, whatever the size of the coffer.

The file is opened read-only and never locked, written or renamed. If it
changes while it is read (the old library rewrites in place), the read
stops with :class:`LegacyChangedError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import pyzstd

from .. import extraction, names
from ..container import framing
from ..errors import (
    ClosedCofferError,
    CofferError,
    CofferNotFoundError,
    IntegrityError,
    MemberNotFoundError,
    NotACofferError,
    WrongKeyError,
    WrongTypeError,
)
from .ciphers import AES_OCB, FERNET, NACL, looks_like_fernet_token, opens_with
from .formats import Decoder, LegacyFormat, find_format
from .records import HEADER_SIZE, LayerError, looks_like_records, read_record
from .tarstream import TarEntry, TarTruncatedError, entries

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BLOCK = 1 << 16
#: Where upstream kept plugin data (the password plugin's pickle).
PLUGIN_PREFIX = ".plugins/"


class LegacyTruncatedError(IntegrityError):
    """The old coffer file stops early (an interrupted write, or a partial copy)."""


class LegacyChangedError(CofferError, OSError):
    """The old coffer file changed while it was being read."""


@dataclass(frozen=True)
class LegacyInfo:
    """A member of an old coffer.

    ``filesize`` is the plain size (upstream listed the encoded one);
    ``stored_size`` the bytes it takes in the tar; ``sha256`` the hex digest
    of its plain content.
    """

    name: str
    filesize: int
    mtime_ns: int
    sha256: str
    stored_size: int

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9

    @property
    def plugin_data(self) -> bool:
        """True for data an old plugin kept (e.g. ``.plugins/passwd``, a pickle): never interpreted."""
        return self.name.startswith(PLUGIN_PREFIX)


@dataclass(frozen=True)
class SkippedEntry:
    """A tar entry that is not read as a member, and why (an unsafe name, a link...)."""

    name: str
    reason: str


class _Checked(io.RawIOBase):
    """A member's content that, read to its end, must match what the opening pass saw."""

    def __init__(self, owner: LegacyCoffer, info: LegacyInfo, stream: BinaryIO) -> None:
        super().__init__()
        self._owner = owner
        self._info = info
        self._stream = stream
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        with self._owner._translated(self._info.name, scanning=False):
            count = self._stream.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._hash.update(memoryview(buffer)[:count])
            self._size += count
        elif not self._done:
            self._done = True
            if self._size != self._info.filesize or self._hash.hexdigest() != self._info.sha256:
                raise LegacyChangedError(
                    f"member {self._info.name!r} of {self._owner.name} reads differently than when it "
                    "was opened: the file changed (is the old library writing it?)"
                )
        return count


class LegacyCoffer:
    """A coffer written by the old library, open read-only. Make one with :func:`open_legacy`.

    Not thread-safe: use it from one thread (each read is a pass over the file).
    """

    def __init__(self, filename: str | os.PathLike[str], fmt: LegacyFormat, keys: dict[str, bytes]) -> None:
        self._path = Path(os.fspath(filename)).absolute()
        self._format = fmt
        self._keys = keys
        self._decoder = Decoder(fmt, keys)
        self._members: dict[str, LegacyInfo] = {}
        self._winner: dict[str, int] = {}
        self._skipped: list[SkippedEntry] = []
        self._identity: tuple[int, ...] | None = None
        self._member_layer_proven = False  # a non-empty member has decoded: the member key is right
        self._closed = False

    # ------------------------------------------------------------ state

    @property
    def name(self) -> str:
        return str(self._path)

    @property
    def type(self) -> str:
        """The legacy type name (``bank``, ``bank-fernet``, ``store``, ``market``, ``null``)."""
        return self._format.name

    @property
    def skipped(self) -> list[SkippedEntry]:
        """Tar entries not read as members: unsafe names, links, folders, replaced duplicates."""
        return list(self._skipped)

    def getmembers(self) -> list[LegacyInfo]:
        """Every member, sorted by name (plugin data included: see :attr:`LegacyInfo.plugin_data`)."""
        self._require()
        return [self._members[name] for name in sorted(self._members)]

    def getmember(self, name: str) -> LegacyInfo:
        self._require()
        normalized = names.normalize(name)
        info = self._members.get(normalized)
        if info is None:
            raise MemberNotFoundError(f"no member {normalized!r} in {self._path}")
        return info

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and names.normalize(name) in self._members

    def __repr__(self) -> str:
        return f"<LegacyCoffer type={self.type!r} {self.name!r}>"

    def close(self) -> None:
        """Forget the listing. Idempotent (no file stays open between reads)."""
        self._closed = True

    def __enter__(self) -> LegacyCoffer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _require(self) -> None:
        if self._closed:
            raise ClosedCofferError(f"legacy coffer {self._path} is closed")

    # ------------------------------------------------------------ reading

    def iter_members(self, names_: Iterable[str] | None = None) -> Iterator[tuple[LegacyInfo, BinaryIO]]:
        """One pass over the file: each member (or those in ``names_``) with its content.

        Read each content before asking for the next member; a content
        read to its end is checked against the opening pass.
        """
        self._require()
        wanted = None if names_ is None else {self.getmember(n).name for n in names_}
        with self._pass() as walk:
            for entry, data in walk:
                if entry.name is None or self._winner.get(entry.name) != entry.index:
                    continue
                if wanted is not None and entry.name not in wanted:
                    continue
                info = self._members[entry.name]
                assert data is not None
                stream = io.BufferedReader(_Checked(self, info, self._decoder.member(data)), _BLOCK)
                yield info, stream  # type: ignore[misc]
                if wanted is not None:
                    wanted.discard(entry.name)
                    if not wanted:
                        return

    @contextmanager
    def file(self, name: str) -> Iterator[BinaryIO]:
        """A binary reader of one member, for a ``with`` block (it decodes the file up to that member)."""
        info = self.getmember(name)
        walk = self.iter_members([info.name])
        try:
            found = next(walk, None)
            if found is None:
                raise LegacyChangedError(f"member {info.name!r} is no longer in {self._path}: the file changed")
            yield found[1]
        finally:
            walk.close()

    def read(self, name: str) -> bytes:
        """The whole content of one member."""
        with self.file(name) as stream:
            return stream.read()

    def extract(self, name: str, path: str | os.PathLike[str] = ".") -> list[str]:
        """Write a member, or every member under a folder prefix, as ``path/name``; return the paths.

        Never writes outside ``path`` nor through a symbolic link; mtimes kept.
        """
        self._require()
        normalized = names.normalize(name)
        if normalized in self._members:
            chosen = [normalized]
        else:
            chosen = [n for n in sorted(self._members) if names.is_under(n, normalized)]
        if not chosen:
            raise MemberNotFoundError(f"no member or folder {normalized!r} in {self._path}")
        return self.extractall(path, chosen)

    def extractall(
        self, path: str | os.PathLike[str] = ".", members: Iterable[str | LegacyInfo] | None = None
    ) -> list[str]:
        """Write every member (or those in ``members``) under ``path``, in one pass; return the paths."""
        self._require()
        selected = None if members is None else [m.name if isinstance(m, LegacyInfo) else m for m in members]
        root = Path(path)
        extraction.refuse_file_folder_clash(
            list(self._members) if selected is None else [names.normalize(name) for name in selected]
        )
        protected = extraction.own_files(self._path)
        written = []
        with contextlib.closing(extraction.Folders()) as folders:
            for info, stream in self.iter_members(selected):
                written.append(
                    extraction.write_member(root, info.name, stream, info.mtime_ns, protected=protected, folders=folders)
                )
        return written

    # ------------------------------------------------------------ passes

    def _stat_identity(self, st: os.stat_result) -> tuple[int, ...]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @contextmanager
    def _pass(self) -> Iterator[Iterator[tuple[TarEntry, BinaryIO | None]]]:
        try:
            raw = open(self._path, "rb", buffering=_BLOCK)
        except FileNotFoundError:
            raise CofferNotFoundError(f"no legacy coffer at {self._path}") from None
        with raw:
            identity = self._stat_identity(os.fstat(raw.fileno()))
            if self._identity is not None and identity != self._identity:
                raise LegacyChangedError(f"{self._path} changed since it was opened; open it again")
            self._identity = identity

            def walk() -> Iterator[tuple[TarEntry, BinaryIO | None]]:
                with self._translated(None, scanning=False):
                    yield from entries(self._decoder.container(raw))  # type: ignore[arg-type]

            yield walk()
            if self._stat_identity(os.fstat(raw.fileno())) != identity:
                raise LegacyChangedError(f"{self._path} changed while it was read (is the old library writing it?)")

    @contextmanager
    def _translated(self, member: str | None, *, scanning: bool) -> Iterator[None]:
        """Turn the layers' errors into public ones that name the file and the member."""
        try:
            yield
        except LayerError as exc:
            raise self._layer_error(exc, member, scanning) from None
        except TarTruncatedError as exc:
            raise LegacyTruncatedError(f"{self._path} is truncated: {exc}") from None
        except tarfile.TarError as exc:
            if "unexpected end of data" in str(exc):
                raise LegacyTruncatedError(f"{self._path} is truncated: the tar inside ends inside an entry") from None
            raise IntegrityError(f"{self._path} is damaged: the tar inside is not valid ({exc})") from None

    def _layer_error(self, exc: LayerError, member: str | None, scanning: bool) -> CofferError:
        where = f"member {member!r} of {self._path}" if member else str(self._path)
        if exc.layer != "member":
            if exc.kind == "truncated":
                return LegacyTruncatedError(
                    f"{self._path} is truncated: {exc}; the old coffer is incomplete "
                    "(an interrupted write or a partial copy), nothing after that point can be read"
                )
            return IntegrityError(f"{self._path} is damaged or was tampered with: {exc}")
        first = scanning and not self._member_layer_proven and exc.index <= 0
        fmt = self._format
        if first and exc.kind == "auth" and fmt.member is not None:
            return WrongKeyError(
                f"the {fmt.member.key_param} does not open the members of {self._path} "
                f"(wrong {fmt.member.key_param}?)"
            )
        if first and exc.kind == "structure" and fmt.name == "market":
            return WrongTypeError(
                f"the members of {self._path} are not encrypted: it looks like a legacy null coffer "
                "(open it with type 'null')",
                actual="null",
            )
        return IntegrityError(f"{where} is damaged or was tampered with: {exc}")

    # ------------------------------------------------------------ opening

    def _open(self) -> LegacyCoffer:
        self._probe()
        self._scan()
        return self

    def _probe(self) -> None:
        """Check the file's first bytes against the type and key, with a precise error if they don't fit."""
        try:
            with open(self._path, "rb") as raw:
                head = raw.read(HEADER_SIZE)
                raw.seek(0)
                first_body = read_record(raw, 0) if looks_like_records(head) else None
        except FileNotFoundError:
            raise CofferNotFoundError(f"no legacy coffer at {self._path}") from None
        except IsADirectoryError:
            raise NotACofferError(f"{self._path} is a folder, not a legacy coffer") from None
        except LayerError as exc:
            exc.layer = "container"
            raise self._layer_error(exc, None, True) from None
        fmt = self._format
        if not head:
            raise NotACofferError(f"{self._path} is empty: not a legacy coffer")
        if len(head) < HEADER_SIZE and len(head) >= 4 and not any(head[4:]):
            raise self._layer_error(
                LayerError("truncated", 0, "the file ends inside the header of record 0", "container"), None, True
            )
        if head.startswith(framing.MAGIC):
            raise NotACofferError(f"{self._path} is already a PyCoffer coffer: open it as it is, no migration needed")
        if head.startswith(_ZSTD_MAGIC):
            if fmt.container is not None:
                actual = self._sniff_zstd_type()
                raise WrongTypeError(
                    f"{self._path} is not a legacy {fmt.name} coffer: its container is not encrypted, "
                    f"it looks like a legacy {actual} coffer (open it with type {actual!r})",
                    actual=actual,
                )
            return
        if first_body is None:
            raise NotACofferError(
                f"{self._path} is not a coffer written by pycoffer: it starts with neither "
                "a zstd frame nor an encrypted record"
            )
        if fmt.container is None:
            actual = "bank-fernet" if looks_like_fernet_token(first_body) else "bank or store"
            raise WrongTypeError(
                f"{self._path} is not a legacy {fmt.name} coffer: its container is encrypted, "
                f"it looks like a legacy {actual} coffer",
                actual=actual,
            )
        key = self._keys[fmt.container.key_param]
        cipher = fmt.container.cipher
        if (cipher is FERNET) != looks_like_fernet_token(first_body):
            actual = "bank-fernet" if cipher is not FERNET else "bank or store"
            raise WrongTypeError(
                f"{self._path} is not a legacy {fmt.name} coffer: it looks like a legacy {actual} coffer",
                actual=actual,
            )
        if opens_with(cipher, key, first_body):
            return
        for other, actual in ((AES_OCB, "bank"), (NACL, "store")):
            if other is not cipher and opens_with(other, key, first_body):
                raise WrongTypeError(
                    f"{self._path} is a legacy {actual} coffer, not a {fmt.name} one "
                    f"(its {fmt.container.key_param} opens it as {actual})",
                    actual=actual,
                )
        raise WrongKeyError(
            f"the {fmt.container.key_param} does not open {self._path} as a legacy {fmt.name} coffer "
            f"(wrong key, or a coffer of another type)"
        )

    def _sniff_zstd_type(self) -> str:
        """``market`` or ``null`` for a file with an unencrypted container: are its members sealed records?"""
        try:
            with open(self._path, "rb") as raw:
                for entry, data in entries(Decoder(find_format("null"), {}).container(raw)):
                    if data is not None and entry.stored_size:
                        return "market" if looks_like_records(data.read(HEADER_SIZE)) else "null"
        except (LayerError, tarfile.TarError, pyzstd.ZstdError, EOFError):
            pass
        return "null or market"

    def _scan(self) -> None:
        """The opening pass: list members with plain size, mtime and digest; check keys, type, damage."""
        records_like = 0
        non_empty = 0
        with self._pass() as walk:
            for entry, data in walk:
                if entry.name is None:
                    self._skipped.append(SkippedEntry(entry.raw_name, entry.reason or "skipped"))
                    continue
                assert data is not None
                if entry.stored_size and self._format.name == "null":
                    non_empty += 1
                    head = data.peek(HEADER_SIZE)[:HEADER_SIZE] if hasattr(data, "peek") else b""
                    records_like += looks_like_records(head)
                digest = hashlib.sha256()
                size = 0
                with self._translated(entry.name, scanning=True):
                    plain = self._decoder.member(data)
                    while block := plain.read(_BLOCK):
                        digest.update(block)
                        size += len(block)
                if entry.stored_size:
                    self._member_layer_proven = True
                previous = self._winner.get(entry.name)
                if previous is not None:
                    self._skipped.append(
                        SkippedEntry(entry.name, "an earlier entry of this name, replaced by a later one")
                    )
                self._winner[entry.name] = entry.index
                self._members[entry.name] = LegacyInfo(
                    entry.name, size, entry.mtime_ns, digest.hexdigest(), entry.stored_size
                )
        if non_empty and records_like == non_empty:
            raise WrongTypeError(
                f"every member of {self._path} is a sealed record stream: it looks like a legacy market "
                "coffer (open it with type 'market' and its secure_key)",
                actual="market",
            )


def open_legacy(filename: str | os.PathLike[str], *, type: str, **keys: bytes) -> LegacyCoffer:
    """Open a coffer written by the old ``pycoffer`` library (0.1.x, or 0.0.x for ``bank-fernet``), read-only.

    ``type`` is the old type: ``bank``, ``store``, ``market``, ``null``, or
    ``bank-fernet`` (the bank of pycoffer 0.0.x). ``keys`` are the old raw
    keys (bytes, as ``gen_params()`` made them; the old config file held
    them base64-encoded): ``coffer_key`` and ``secure_key`` for bank,
    ``coffer_key`` for store, ``secure_key`` for market, none for null.

    Reads the whole file once (bounded memory) before returning. Raises
    :class:`~pycoffer_core.errors.UnknownTypeError`,
    :class:`~pycoffer_core.errors.InvalidArgumentError` (keys),
    :class:`~pycoffer_core.errors.CofferNotFoundError`,
    :class:`~pycoffer_core.errors.WrongKeyError`,
    :class:`~pycoffer_core.errors.WrongTypeError` (with the type it looks like),
    :class:`~pycoffer_core.errors.NotACofferError`,
    :class:`LegacyTruncatedError` or
    :class:`~pycoffer_core.errors.IntegrityError`.
    """
    fmt = find_format(type)
    return LegacyCoffer(filename, fmt, fmt.check_keys(keys))._open()
