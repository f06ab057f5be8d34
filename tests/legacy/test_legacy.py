"""Reading coffers written by the old pycoffer library, and migrating them.

The fixtures are frozen files written by the real pycoffer 0.1.4 (0.0.10 for
bank-fernet) with ``make_fixtures.py``; ``<type>.expected.json`` is what the
old library itself read back from them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import tarfile
from pathlib import Path

import nacl.secret
import pytest
import pyzstd

from pycoffer_core import (
    Coffer,
    CofferExistsError,
    IntegrityError,
    InvalidArgumentError,
    MemberNotFoundError,
    NotACofferError,
    UnknownTypeError,
    WrongKeyError,
    WrongTypeError,
)
from pycoffer_core.legacy import (
    LEGACY_TYPES,
    LegacyChangedError,
    LegacyTruncatedError,
    migrate,
    open_legacy,
    read_legacy_keys,
)

FIXTURES = Path(__file__).parent / "fixtures"
ADDED_NAME = "docs/nested/deep/notes.txt"
ADDED_MTIME_NS = 1_234_567_890_250_000_000
NEW_TYPES = sorted(info.name for info in Coffer.types())


def keys_of(legacy_type: str) -> dict[str, bytes]:
    return read_legacy_keys(FIXTURES / f"{legacy_type}.keys.json").keys


def expected(legacy_type: str) -> dict[str, dict]:
    document = json.loads((FIXTURES / f"{legacy_type}.expected.json").read_text())
    return {m["name"]: m for m in document["members"]}


def fixture(legacy_type: str) -> Path:
    return FIXTURES / f"{legacy_type}.pcof"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def exact_added_mtime(legacy_type: str, mtime_ns: int) -> None:
    """The member added from a file has its source's mtime to the nanosecond (0.0.10 did not keep it)."""
    if expected(legacy_type)[ADDED_NAME]["mtime"] == ADDED_MTIME_NS / 1e9:
        assert mtime_ns == ADDED_MTIME_NS


def assert_mtime(mtime_ns: int, old_mtime: float) -> None:
    # The old library reports a float of seconds; its PAX header holds that
    # float's decimal, which we read exactly.
    assert abs(mtime_ns / 1e9 - old_mtime) < 1e-6


# ---------------------------------------------------------------- crafting hostile old coffers


def _records(data: bytes, seal) -> bytes:
    out = b""
    for start in range(0, len(data), 65504):
        body = seal(data[start : start + 65504])
        out += struct.pack("<I", len(body)) + bytes(28) + body
    return out


def craft(path: Path, entries: list[tuple[str, bytes | str]], *, store_key: bytes | None = None) -> None:
    """An old-format coffer: null (zstd > tar), or store (NaCl records > zstd > tar, zstd members).

    An entry whose value is a str is a symbolic link to it.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, value in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
                continue
            data = pyzstd.compress(value) if store_key else value
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    payload = pyzstd.compress(buffer.getvalue())
    if store_key:
        payload = _records(payload, nacl.secret.SecretBox(store_key).encrypt)
    path.write_bytes(payload)


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("legacy_type", LEGACY_TYPES)
def test_lists_every_member_as_the_old_library_read_it(legacy_type):
    with open_legacy(fixture(legacy_type), type=legacy_type, **keys_of(legacy_type)) as old:
        infos = {info.name: info for info in old.getmembers()}
        want = expected(legacy_type)
        assert sorted(infos) == sorted(want)
        for name, info in infos.items():
            assert info.filesize == want[name]["size"]
            assert info.sha256 == want[name]["sha256"]
            assert_mtime(info.mtime_ns, want[name]["mtime"])
        exact_added_mtime(legacy_type, infos[ADDED_NAME].mtime_ns)
        assert old.skipped == []


@pytest.mark.parametrize("legacy_type", LEGACY_TYPES)
def test_reads_small_empty_large_nested_and_appended_members(legacy_type):
    want = expected(legacy_type)
    with open_legacy(fixture(legacy_type), type=legacy_type, **keys_of(legacy_type)) as old:
        for name in ("hello.txt", "empty.bin", "big/random.bin", "big/compressible.txt", ADDED_NAME, "unicode/ünïcødé 名前.txt"):
            assert sha256(old.read(name)) == want[name]["sha256"], name
        assert old.read("hello.txt") == b"hello from the old pycoffer\nappended in a later session\n"
        assert old.read("empty.bin") == b""


def test_file_streams_a_member_in_pieces():
    want = expected("bank")["big/random.bin"]
    with open_legacy(fixture("bank"), type="bank", **keys_of("bank")) as old:
        with old.file("big/random.bin") as stream:
            pieces = iter(lambda: stream.read(1000), b"")
            digest = hashlib.sha256()
            for piece in pieces:
                assert len(piece) <= 1000
                digest.update(piece)
    assert digest.hexdigest() == want["sha256"]


def test_missing_member_is_reported():
    with open_legacy(fixture("null"), type="null") as old:
        with pytest.raises(MemberNotFoundError):
            old.read("nope.txt")


@pytest.mark.parametrize("legacy_type", ["bank", "market"])
def test_extractall_writes_every_member_with_its_mtime(legacy_type, tmp_path):
    want = expected(legacy_type)
    with open_legacy(fixture(legacy_type), type=legacy_type, **keys_of(legacy_type)) as old:
        old.extractall(tmp_path / "out")
    for name, member in want.items():
        path = tmp_path / "out" / name
        assert sha256(path.read_bytes()) == member["sha256"]
        assert_mtime(path.stat().st_mtime_ns, member["mtime"])


def test_extract_takes_a_member_or_a_folder(tmp_path):
    with open_legacy(fixture("store"), type="store", **keys_of("store")) as old:
        old.extract("big", tmp_path)
        old.extract("hello.txt", tmp_path)
    assert sorted(p.name for p in (tmp_path / "big").iterdir()) == ["compressible.txt", "random.bin"]
    assert (tmp_path / "hello.txt").exists()
    assert not (tmp_path / "empty.bin").exists()


# ---------------------------------------------------------------- migrating


@pytest.mark.parametrize("new_type", NEW_TYPES)
@pytest.mark.parametrize("legacy_type", LEGACY_TYPES)
def test_migrates_into_each_installed_type_with_contents_and_mtimes(legacy_type, new_type, tmp_path):
    params = Coffer.gen_params(new_type)
    report = migrate(
        fixture(legacy_type), tmp_path / "new.coffer", legacy_type=legacy_type,
        legacy_params=keys_of(legacy_type), type=new_type, **params,
    )
    want = expected(legacy_type)
    assert sorted(m.name for m in report.members) == sorted(want)
    with Coffer.open(tmp_path / "new.coffer", "r", type=new_type, **params) as new:
        infos = {info.name: info for info in new.getmembers()}
        assert sorted(infos) == sorted(want)
        for name, member in want.items():
            assert sha256(new.read(name)) == member["sha256"], name
            assert_mtime(infos[name].mtime_ns, member["mtime"])
        exact_added_mtime(legacy_type, infos[ADDED_NAME].mtime_ns)


@pytest.mark.parametrize("legacy_type", LEGACY_TYPES)
def test_migrates_into_the_in_test_aead_type_with_a_passphrase(legacy_type, aead_type, tmp_path):
    migrate(
        fixture(legacy_type), tmp_path / "new.coffer", legacy_type=legacy_type,
        legacy_params=keys_of(legacy_type), type=aead_type, password="correct horse",
    )
    want = expected(legacy_type)
    with Coffer.open(tmp_path / "new.coffer", "r", type=aead_type, password="correct horse") as new:
        for info in new.getmembers():
            assert sha256(new.read(info.name)) == want[info.name]["sha256"]
            assert_mtime(info.mtime_ns, want[info.name]["mtime"])
        assert len(new.getmembers()) == len(want)


def test_migration_never_modifies_the_source(tmp_path):
    source = tmp_path / "old" / "bank.pcof"
    source.parent.mkdir()
    shutil.copy2(fixture("bank"), source)
    before = (source.read_bytes(), source.stat().st_mtime_ns, sorted(os.listdir(source.parent)))
    migrate(source, tmp_path / "new.coffer", legacy_type="bank", legacy_params=keys_of("bank"), type="null")
    assert (source.read_bytes(), source.stat().st_mtime_ns, sorted(os.listdir(source.parent))) == before


def test_plugin_data_is_copied_opaque_reported_and_never_unpickled(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    report = migrate(
        fixture("bank"), tmp_path / "new.coffer", legacy_type="bank", legacy_params=keys_of("bank"), type="null"
    )
    assert report.plugin_data == [".plugins/passwd"]
    assert ".plugins/passwd" in report.summary()
    with Coffer.open(tmp_path / "new.coffer", "r", type="null") as new:
        assert sha256(new.read(".plugins/passwd")) == expected("bank")[".plugins/passwd"]["sha256"]


def test_migration_refuses_an_existing_destination(tmp_path):
    target = tmp_path / "new.coffer"
    target.write_bytes(b"precious")
    with pytest.raises(CofferExistsError):
        migrate(fixture("null"), target, legacy_type="null", type="null")
    assert target.read_bytes() == b"precious"


def test_a_source_that_changes_during_migration_leaves_no_destination(tmp_path):
    source = tmp_path / "old.pcof"
    shutil.copy(fixture("null"), source)
    old = open_legacy(source, type="null")
    shutil.copy(fixture("market"), source)  # rewritten in place, as the old library does
    with pytest.raises(LegacyChangedError):
        migrate(old, tmp_path / "new.coffer", type="null")
    assert not (tmp_path / "new.coffer").exists()


def test_unknown_new_type_fails_before_reading(tmp_path):
    with pytest.raises(UnknownTypeError):
        migrate(fixture("null"), tmp_path / "new.coffer", legacy_type="null", type="no-such-type")


# ---------------------------------------------------------------- clear errors


@pytest.mark.parametrize("key", ["coffer_key", "secure_key"])
def test_wrong_legacy_key_is_reported_and_nothing_is_written(key, tmp_path):
    keys = keys_of("bank") | {key: bytes(len(keys_of("bank")[key]))}
    with pytest.raises(WrongKeyError, match=key):
        migrate(fixture("bank"), tmp_path / "new.coffer", legacy_type="bank", legacy_params=keys, type="null")
    assert not (tmp_path / "new.coffer").exists()


def test_wrong_market_key_is_reported():
    with pytest.raises(WrongKeyError, match="secure_key"):
        open_legacy(fixture("market"), type="market", secure_key=bytes(32))


@pytest.mark.parametrize(
    ("asked", "actual", "keys_from"),
    [
        ("bank", "store", "store"),  # the store key opens it as store: named exactly
        ("null", "market", None),
        ("market", "null", "market"),
        ("bank", "null", "bank"),
        ("store", "market", "store"),
        ("null", "bank-fernet", None),
    ],
)
def test_wrong_legacy_type_names_the_type_it_looks_like(asked, actual, keys_from):
    # the asked type's keys, taking those of keys_from where it has them
    keys = {name: keys_of(keys_from).get(name, key) for name, key in keys_of(asked).items()} if keys_from else {}
    with pytest.raises(WrongTypeError) as raised:
        open_legacy(fixture(actual), type=asked, **keys)
    assert raised.value.actual == actual
    assert actual in str(raised.value)


def test_a_key_of_the_wrong_size_says_which_type_it_fits():
    with pytest.raises(InvalidArgumentError, match="bank-fernet"):
        open_legacy(fixture("bank-fernet"), type="bank", **keys_of("bank-fernet"))


def test_unknown_legacy_type_lists_the_known_ones():
    with pytest.raises(UnknownTypeError, match="bank-fernet"):
        open_legacy(fixture("null"), type="vault")


def test_a_pycoffer_coffer_is_not_taken_for_a_legacy_one(tmp_path):
    with Coffer.open(tmp_path / "new.coffer", "w", type="null") as new:
        new.write("a", b"b")
    with pytest.raises(NotACofferError, match="already a PyCoffer coffer"):
        open_legacy(tmp_path / "new.coffer", type="null")


@pytest.mark.parametrize("legacy_type", LEGACY_TYPES)
@pytest.mark.parametrize("keep", [0.001, 0.5, 0.99])
def test_truncated_old_file_is_reported_and_nothing_is_written(legacy_type, keep, tmp_path):
    data = fixture(legacy_type).read_bytes()
    source = tmp_path / "old.pcof"
    source.write_bytes(data[: max(1, int(len(data) * keep))])
    with pytest.raises(LegacyTruncatedError, match="truncated"):
        migrate(source, tmp_path / "new.coffer", legacy_type=legacy_type, legacy_params=keys_of(legacy_type), type="null")
    assert not (tmp_path / "new.coffer").exists()


def test_truncated_tar_inside_an_intact_compressed_stream_is_reported(tmp_path):
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("a.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    (tmp_path / "old.pcof").write_bytes(pyzstd.compress(tar.getvalue()[:1536]))  # entry, no end blocks
    with pytest.raises(LegacyTruncatedError):
        open_legacy(tmp_path / "old.pcof", type="null")


def test_damaged_encrypted_record_is_an_integrity_error(tmp_path):
    data = bytearray(fixture("bank").read_bytes())
    data[-100] ^= 1  # inside the last record of the container
    (tmp_path / "old.pcof").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="damaged"):
        open_legacy(tmp_path / "old.pcof", type="bank", **keys_of("bank"))


@pytest.mark.parametrize("store", [False, True])
def test_names_that_would_escape_are_skipped_reported_and_never_written_outside(store, tmp_path):
    key = bytes(range(32)) if store else None
    source = tmp_path / "old.pcof"
    craft(
        source,
        [
            ("../escaped.txt", b"evil"),
            ("/tmp/absolute.txt", b"evil"),
            ("deep/../../escaped2.txt", b"evil"),
            ("link", "/etc/passwd"),
            ("ok/fine.txt", b"good"),
        ],
        store_key=key,
    )
    legacy_type, keys = ("store", {"coffer_key": key}) if store else ("null", {})
    work = tmp_path / "work"
    work.mkdir()
    report = migrate(source, work / "new.coffer", legacy_type=legacy_type, legacy_params=keys, type="null")
    assert [m.name for m in report.members] == ["ok/fine.txt"]
    skipped = {entry.name: entry.reason for entry in report.skipped}
    assert set(skipped) == {"../escaped.txt", "/tmp/absolute.txt", "deep/../../escaped2.txt", "link"}
    assert "absolute" in skipped["/tmp/absolute.txt"] and ".." in skipped["../escaped.txt"]
    assert "symbolic link" in skipped["link"]
    assert "../escaped.txt" in report.summary()
    with open_legacy(source, type=legacy_type, **keys) as old:
        old.extractall(work / "out")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        ["old.pcof", "work/new.coffer", "work/new.coffer.lock", "work/out/ok/fine.txt"]
    )
    assert not Path("/tmp/absolute.txt").exists() or Path("/tmp/absolute.txt").read_bytes() != b"evil"


def test_a_repeated_name_keeps_the_last_entry_as_the_old_library_did(tmp_path):
    craft(tmp_path / "old.pcof", [("a.txt", b"first"), ("b.txt", b"b"), ("a.txt", b"second")])
    with open_legacy(tmp_path / "old.pcof", type="null") as old:
        assert old.read("a.txt") == b"second"
        assert [entry.name for entry in old.skipped] == ["a.txt"]
    migrate(tmp_path / "old.pcof", tmp_path / "new.coffer", legacy_type="null", type="null")
    with Coffer.open(tmp_path / "new.coffer", "r", type="null") as new:
        assert new.read("a.txt") == b"second"


# ---------------------------------------------------------------- key files

INI = """\
[DEFAULT]
default_backup = .backup
default_coffer = confidential
default_location = ~/
default_type = bank

[confidential]
type = bank
backup = .backup
coffer_key = {coffer_key}
secure_key = {secure_key}
location = {location}

[other]
type = store
coffer_key = {store_key}
location = /somewhere/else.pcof
"""


def _ini(tmp_path: Path, location: Path) -> Path:
    b64 = {k: base64.b64encode(v).decode() for k, v in keys_of("bank").items()}
    path = tmp_path / "pycofferrc"
    path.write_text(INI.format(location=location, store_key=base64.b64encode(keys_of("store")["coffer_key"]).decode(), **b64))
    return path


@pytest.mark.parametrize("legacy_type", LEGACY_TYPES)
def test_the_config_the_old_library_generated_gives_the_type_and_keys(legacy_type):
    # <type>.pycofferrc was printed by the old library's own Config.generate;
    # pycoffer 0.0.x wrote "type = bank" for its Fernet bank too.
    keys = read_legacy_keys(FIXTURES / f"{legacy_type}.pycofferrc")
    assert (keys.type, keys.keys) == (legacy_type, keys_of(legacy_type))


def test_old_ini_config_section_is_found_by_its_location(tmp_path):
    keys = read_legacy_keys(_ini(tmp_path, fixture("bank")), coffer=fixture("bank"))
    assert (keys.type, keys.section, keys.keys) == ("bank", "confidential", keys_of("bank"))


def test_old_ini_config_with_several_coffers_asks_for_a_section(tmp_path):
    path = _ini(tmp_path, tmp_path / "elsewhere.pcof")
    with pytest.raises(InvalidArgumentError, match="section"):
        read_legacy_keys(path, coffer=fixture("bank"))
    assert read_legacy_keys(path, section="other").keys == keys_of("store")


def test_flat_json_of_base64_keys_is_read(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in keys_of("market").items()}))
    assert read_legacy_keys(path).keys == keys_of("market")


def test_the_fernet_bank_of_0_0_x_is_told_apart_by_its_key(tmp_path):
    path = tmp_path / "rc"
    fernet = {k: base64.b64encode(v).decode() for k, v in keys_of("bank-fernet").items()}
    path.write_text(f"[old]\ntype = bank\ncoffer_key = {fernet['coffer_key']}\nsecure_key = {fernet['secure_key']}\n")
    assert read_legacy_keys(path).type == "bank-fernet"
