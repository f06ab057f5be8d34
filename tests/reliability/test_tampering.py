"""3. Tampering: flips, truncations, swapped, replayed and spliced records.

For a small coffer of each type whose container layer authenticates, every
change is detected (a ``CofferError`` on open, read or verify) and nothing
read before the error differs from what was written; a truncation may
instead open at an earlier committed state, exactly.

Bounded: every byte of the records is flipped (XOR 0x01), every 8th byte of
the header and key-slot area; truncation within 12 bytes of every record
edge, at every 7th offset of the records and every 64th before them.
``PYCOFFER_RELIABILITY_FULL=1``: every byte, with XOR 0x01 and 0xFF.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import harness
from pycoffer_core import Coffer, CofferError
from pycoffer_core.container.framing import KIND_DATA, SLOT_COPY_SIZE
from pycoffer_core.memberio import CHUNK_SIZE, MAX_IN_FLIGHT

FULL = os.environ.get("PYCOFFER_RELIABILITY_FULL") == "1"
Truth = dict[str, tuple[bytes, int, int]]


def _history(path: Path, type_name: str, keys: dict[str, Any]) -> list[tuple[int, Truth]]:
    """Make a small coffer commit by commit; (file size, members) after each commit."""
    steps = [
        lambda c: c.write("a", b"alpha " * 20),
        lambda c: c.write("b", harness.pattern(300, 1)),
        lambda c: c.append("a", b"more"),
        lambda c: c.delete("b"),
        lambda c: c.write("dir/c", b""),
        lambda c: c.rename("a", "dir/a"),
    ]
    history = []
    with Coffer.open(path, "w", type=type_name, auto_flush=True, **keys) as coffer:
        for step in steps:
            step(coffer)
            history.append((coffer.stats()["file_size"], _truth(coffer)))  # the file may run on in zeros
    return history


def _truth(coffer: Coffer) -> Truth:
    return {i.name: (coffer.read(i.name), i.filesize, i.mtime_ns) for i in coffer.getmembers()}


def _examine(path: Path, type_name: str, keys: dict[str, Any]) -> tuple[CofferError | None, Truth]:
    """Open, list, read everything, verify; the first CofferError, and what was read before it."""
    seen: Truth = {}
    try:
        with Coffer.open(path, "r", type=type_name, lock_type="w", **keys) as coffer:
            for info in coffer.getmembers():
                seen[info.name] = (coffer.read(info.name), info.filesize, info.mtime_ns)
            coffer.verify()
    except CofferError as exc:
        return exc, seen
    return None, seen


def _assert_no_wrong_data(seen: Truth, truth: Truth, what: str) -> None:
    wrong = {name: value for name, value in seen.items() if truth.get(name) != value}
    assert not wrong, f"{what}: returned data that was never written: {sorted(wrong)}"


@pytest.fixture
def small(tmp_path, sealed_type):
    keys = harness.Coffer.gen_params(sealed_type)
    path = tmp_path / "small.coffer"
    history = _history(path, sealed_type, keys)
    return path, sealed_type, keys, history, path.read_bytes()


def test_flipping_any_byte_is_detected_and_never_returns_wrong_data(small):
    path, type_name, keys, history, pristine = small
    truth = history[-1][1]
    start = harness.records_start(pristine)
    offsets = [o for o in range(len(pristine)) if FULL or o >= start or o % 8 == 0]
    masks = (0x01, 0xFF) if FULL else (0x01,)
    undetected = []
    for offset in offsets:
        for mask in masks:
            damaged = bytearray(pristine)
            damaged[offset] ^= mask
            path.write_bytes(bytes(damaged))
            error, seen = _examine(path, type_name, keys)
            _assert_no_wrong_data(seen, truth, f"byte {offset} ^ {mask:#x}")
            if error is None:
                undetected.append(offset)
    assert not undetected, f"flips at these offsets went unnoticed: {undetected}"


def test_truncating_at_any_offset_opens_an_earlier_committed_state_or_raises(small):
    path, type_name, keys, history, pristine = small
    start = harness.records_start(pristine)
    near_edges = {edge + d for o, l, _ in harness.records(pristine) for edge in (o, o + l) for d in range(-12, 13)}
    for cut in range(len(pristine)):
        if not FULL and not (cut in near_edges or (cut >= start and cut % 7 == 0) or cut % 64 == 0):
            continue
        path.write_bytes(pristine[:cut])
        error, seen = _examine(path, type_name, keys)
        committed = [truth for size, truth in history if size <= cut]
        if error is not None:
            assert not committed or cut < history[0][0], f"cut at {cut}: {error!r} though a commit is whole"
            continue
        assert committed and seen == committed[-1], f"cut at {cut}: not the last whole commit"


def test_swapping_two_records_is_detected_or_changes_nothing(small):
    path, type_name, keys, history, pristine = small
    truth = history[-1][1]
    spans = harness.records(pristine)
    harmless = 0
    for i in range(len(spans)):
        for j in range(i + 1, len(spans)):
            (oi, li, _), (oj, lj, _) = spans[i], spans[j]
            swapped = pristine[:oi] + pristine[oj : oj + lj] + pristine[oi + li : oj] + pristine[oi : oi + li] + pristine[oj + lj :]
            path.write_bytes(swapped)
            error, seen = _examine(path, type_name, keys)
            _assert_no_wrong_data(seen, truth, f"records {i} and {j} swapped")
            if error is None:
                # Only two dead records of one length may trade places unseen: nothing reads them.
                assert seen == truth and li == lj and spans[i][2] == spans[j][2] == KIND_DATA
                harmless += 1
    assert harmless < len(spans)


def test_records_spliced_from_another_coffer_with_the_same_keys_are_detected(small, tmp_path):
    path, type_name, keys, history, pristine = small
    truth = history[-1][1]
    other = tmp_path / "other.coffer"
    _history(other, type_name, keys)  # same keys, same steps: records of the same kinds and sizes
    foreign = other.read_bytes()
    for oi, li, kind in harness.records(pristine):
        for oj, lj, other_kind in harness.records(foreign):
            if other_kind != kind:
                continue
            path.write_bytes(pristine[:oi] + foreign[oj : oj + lj] + pristine[oi + li :])
            error, seen = _examine(path, type_name, keys)
            _assert_no_wrong_data(seen, truth, f"record at {oi} replaced by the other coffer's at {oj}")
            assert error is not None, f"a record from another coffer at offset {oi} went unnoticed"


def test_an_older_commit_record_replayed_over_a_newer_one_is_detected(small):
    path, type_name, keys, history, pristine = small
    truth = history[-1][1]
    commits = [span for span in harness.records(pristine) if span[2] != KIND_DATA]
    assert len(commits) == len(history)
    for oi, li, _ in commits[1:]:
        for oj, lj, _ in commits:
            if oj >= oi:
                break
            path.write_bytes(pristine[:oi] + pristine[oj : oj + lj] + pristine[oi + li :])
            error, seen = _examine(path, type_name, keys)
            _assert_no_wrong_data(seen, truth, f"commit at {oj} replayed at {oi}")
            assert error is not None, f"commit record from {oj} replayed at {oi} went unnoticed"


def test_bytes_of_the_file_before_compaction_spliced_into_the_compacted_file_are_detected(tmp_path, sealed_type):
    keys = Coffer.gen_params(sealed_type)
    path = tmp_path / "c.coffer"
    _history(path, sealed_type, keys)
    before = path.read_bytes()
    with Coffer.open(path, "a", type=sealed_type, auto_flush=True, **keys) as coffer:
        coffer.compact()
        coffer.write("after", b"after compaction")
        truth = _truth(coffer)
    after = path.read_bytes()
    for offset, length, _ in harness.records(before):
        if offset + length > len(after) or before[offset : offset + length] == after[offset : offset + length]:
            continue
        path.write_bytes(after[:offset] + before[offset : offset + length] + after[offset + length :])
        error, seen = _examine(path, sealed_type, keys)
        _assert_no_wrong_data(seen, truth, f"pre-compaction record at {offset}")
        if error is None:
            assert seen == truth  # a dead region overwritten by equally valid bytes
    for cut in {offset for offset, _, _ in harness.records(before)} | {len(before)}:
        if cut < len(after):  # the old file's head, the new file's tail
            path.write_bytes(before[:cut] + after[cut:])
            error, seen = _examine(path, sealed_type, keys)
            _assert_no_wrong_data(seen, truth, f"old file up to {cut}")


def test_a_replayed_key_slot_area_brings_back_the_old_passphrase_but_never_wrong_data(tmp_path, sealed_type, fast_kdf):
    """A known limit (as in LUKS): slots live in the file, so an old copy of them opens the
    coffer with the old passphrase. The data stays authenticated."""
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "x", type=sealed_type, password="old") as coffer:
        coffer.write("a", b"1")
    old = path.read_bytes()
    with Coffer.open(path, "a", type=sealed_type, password="old") as coffer:
        coffer.change_password("old", "new")
        coffer.write("b", b"2")
    new = path.read_bytes()
    header = int.from_bytes(new[10:12], "big")
    slots = slice(header, header + 2 * SLOT_COPY_SIZE)
    path.write_bytes(new[: slots.start] + old[slots] + new[slots.stop :])
    assert harness.snapshot(path, sealed_type, password="old") == {"a": b"1", "b": b"2"}


# REL-3 (found by the tests below, fixed in 92b6411): an append that is aborted after
# storing full chunks leaves sealed records for (member id, chunk n); the next append of
# that member seals (member id, n) again, so the dead record can replace the live one unseen
# (log.py _chunk_context, memberio.MemberWriter)


def test_a_chunk_from_an_aborted_append_replayed_over_the_committed_one_is_detected(tmp_path, sealed_type):
    keys = Coffer.gen_params(sealed_type)
    path = tmp_path / "c.coffer"
    count = MAX_IN_FLIGHT + 2  # more than the writer seals ahead: some reach the file before the abort
    first = harness.pattern(CHUNK_SIZE, 1)
    with Coffer.open(path, "w", type=sealed_type, **keys) as coffer:
        coffer.write("m", first)
        coffer.flush()
        aborted_from = path.stat().st_size
        with pytest.raises(KeyboardInterrupt):
            with coffer.file("m", "ab") as f:
                for n in range(count):
                    f.write(harness.pattern(CHUNK_SIZE, 100 + n))
                raise KeyboardInterrupt  # the caller gives up: the member must stay as it was
        coffer.append("m", b"".join(harness.pattern(CHUNK_SIZE, 200 + n) for n in range(count)))
        truth = _truth(coffer)
    data = path.read_bytes()
    spans = [span for span in harness.records(data) if span[0] >= aborted_from and span[2] == KIND_DATA]
    dead = [span for span in spans if not any(span[0] == c.offset for c in _chunks(path, sealed_type, keys))]
    live = [span for span in spans if span not in dead]
    assert dead and live
    offset, length, _ = live[0]
    dead_offset, dead_length, _ = dead[0]
    assert length == dead_length
    path.write_bytes(data[:offset] + data[dead_offset : dead_offset + length] + data[offset + length :])
    error, seen = _examine(path, sealed_type, keys)
    _assert_no_wrong_data(seen, truth, "an aborted append's chunk in place of the committed one")
    assert error is not None


def _chunks(path: Path, type_name: str, keys: dict[str, Any]) -> list[Any]:
    with Coffer.open(path, "r", type=type_name, lock_type="w", **keys) as coffer:
        return [chunk for entry in coffer._container.entries.values() for chunk in entry.chunks]
