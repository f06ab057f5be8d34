"""A member being written when something goes wrong: nothing half-written is ever stored.

A written member appears whole when its writer finishes, or not at all: a
write that failed, a coffer closed or compacted under an open writer, a bad
``file()`` argument, or an interrupt in the middle of a commit must never
leave a member with a hole, a truncated member, or a change the caller was
told had failed.
"""

from __future__ import annotations

import errno
import os
import threading

import pytest

from pycoffer_core import (
    ClosedCofferError,
    Coffer,
    CofferBrokenError,
    InvalidArgumentError,
)
from pycoffer_core.memberio import CHUNK_SIZE, MAX_IN_FLIGHT

TYPES = ("null", "aes")


def _disk_fills_once(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """``os.pwrite`` fails once with ENOSPC after ``state["armed"]`` is set."""
    real = os.pwrite
    state = {"armed": 0, "fired": 0}

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        if state["armed"] and not state["fired"]:
            state["fired"] += 1
            raise OSError(errno.ENOSPC, "injected: no space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    return state


@pytest.mark.parametrize("type_name", TYPES)
def test_a_store_failing_in_the_last_flush_leaves_the_member_as_it_was(tmp_path, monkeypatch, type_name):
    path = tmp_path / "c.coffer"
    keys = Coffer.gen_params(type_name)
    with Coffer.open(path, "w", type=type_name, auto_flush=True, **keys) as coffer:
        coffer.write("m", b"old")
        state = _disk_fills_once(monkeypatch)
        with pytest.raises(OSError):
            with coffer.file("m", "wb") as stream:
                stream.write(os.urandom((MAX_IN_FLIGHT + 2) * CHUNK_SIZE - 10))
                stream.write(b"z" * 20)  # held by the buffer until the block exits
                state["armed"] = 1  # the disk fills as the block's last bytes go out
        assert state["fired"] == 1
        assert coffer.read("m") == b"old"
        coffer.write("after", b"the coffer still works")
    with Coffer.open(path, "r", type=type_name, **keys) as coffer:
        coffer.verify()
        assert coffer.read("m") == b"old"
        assert coffer.read("after") == b"the coffer still works"


def test_a_write_retried_after_a_failed_one_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "c.coffer"
    blocks = [os.urandom(CHUNK_SIZE) for _ in range(MAX_IN_FLIGHT + 3)]
    state = _disk_fills_once(monkeypatch)
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        coffer.write("m", b"old")
        with pytest.raises(ClosedCofferError, match="'m' failed"):
            with coffer.file("m", "wb") as stream:
                for number, block in enumerate(blocks):
                    if number == MAX_IN_FLIGHT + 1:
                        state["armed"] = 1  # a chunk already sent can't be stored
                    try:
                        stream.write(block)
                    except OSError:
                        stream.write(block)  # the retry: refused, the chunk before it is lost
        assert state["fired"] == 1
        assert coffer.read("m") == b"old"
    with Coffer.open(path, "r", type="null") as coffer:
        coffer.verify()
        assert coffer.read("m") == b"old"


def test_a_failed_write_leaves_no_writer_behind(tmp_path, monkeypatch):
    """The member's last chunks fail as ``write()`` finishes it: afterwards
    nothing counts as still being written (compact() would refuse)."""
    path = tmp_path / "c.coffer"
    state = _disk_fills_once(monkeypatch)
    with Coffer.open(path, "w", type="null", auto_flush=True) as coffer:
        coffer.write("kept", b"x")
        state["armed"] = 1
        with pytest.raises(OSError):
            coffer.write("big", os.urandom(3 * CHUNK_SIZE))
        assert "big" not in coffer
        coffer.compact()
        assert coffer.read("kept") == b"x"


def test_closing_the_coffer_inside_a_file_block_stores_nothing_of_it(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null", auto_flush=False) as coffer:
        coffer.write("m", b"old content")
        coffer.write("pending", b"committed by close")
        block = coffer.file("m", "wb")
        stream = block.__enter__()
        stream.write(b"new content, the block not finished")
        coffer.close()
        with pytest.raises(ClosedCofferError, match="closed before member 'm' was finished"):
            block.__exit__(None, None, None)
    with Coffer.open(path, "r", type="null") as coffer:
        assert coffer.read("m") == b"old content"
        assert coffer.read("pending") == b"committed by close"


def test_closing_the_coffer_from_another_thread_stores_nothing_of_a_member_being_written(tmp_path):
    path = tmp_path / "c.coffer"
    coffer = Coffer.open(path, "w", type="null", auto_flush=True)
    coffer.write("other", b"kept")
    half_written, closed = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write_member() -> None:
        try:
            with coffer.file("m", "wb") as stream:
                stream.write(os.urandom(3 * CHUNK_SIZE))
                half_written.set()
                closed.wait(30)
                stream.write(os.urandom(3 * CHUNK_SIZE))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write_member)
    thread.start()
    assert half_written.wait(30)
    coffer.close()
    closed.set()
    thread.join(30)
    assert len(errors) == 1 and isinstance(errors[0], ClosedCofferError), errors
    with Coffer.open(path, "r", type="null") as coffer:
        coffer.verify()
        assert "m" not in coffer
        assert coffer.read("other") == b"kept"


@pytest.mark.parametrize("type_name", TYPES)
def test_an_unknown_text_encoding_changes_nothing(tmp_path, type_name):
    path = tmp_path / "c.coffer"
    keys = Coffer.gen_params(type_name)
    with Coffer.open(path, "w", type=type_name, **keys) as coffer:
        coffer.write("notes.txt", b"precious notes")
    with Coffer.open(path, "a", type=type_name, **keys) as coffer:
        with pytest.raises(LookupError):
            with coffer.file("notes.txt", "wt", encoding="no-such-codec"):
                pass
        coffer.compact()  # nothing counts as being written
    with Coffer.open(path, "r", type=type_name, **keys) as coffer:
        assert coffer.read("notes.txt") == b"precious notes"


@pytest.mark.parametrize("type_name", TYPES)
def test_compact_is_refused_while_a_member_is_being_written(tmp_path, type_name):
    path = tmp_path / "c.coffer"
    keys = Coffer.gen_params(type_name)
    big = os.urandom((MAX_IN_FLIGHT + 4) * CHUNK_SIZE)  # some chunks are stored before compact()
    with Coffer.open(path, "w", type=type_name, auto_flush=True, **keys) as coffer:
        coffer.write("m", os.urandom(CHUNK_SIZE))
        coffer.write("dead", os.urandom(CHUNK_SIZE))
        coffer.delete("dead")
        with coffer.file("big", "wb") as stream, coffer.file("m", "ab") as tail:
            stream.write(big)
            tail.write(b"more")
            with pytest.raises(InvalidArgumentError, match="being written"):
                coffer.compact()
        assert coffer.read("big") == big
        before = coffer.stats()["dead_bytes"]
        coffer.compact()
        assert before > 0 and coffer.stats()["dead_bytes"] == 0
    with Coffer.open(path, "r", type=type_name, **keys) as coffer:
        coffer.verify()
        assert coffer.read("big") == big
        assert coffer.read("m").endswith(b"more")


def test_an_interrupt_once_the_commit_is_out_keeps_it_and_refuses_further_changes(tmp_path, monkeypatch):
    """An interrupt in the commit's sync: the record may be durable, and
    cutting it off would not be, so the commit stays and the coffer object
    asks to be reopened."""
    path = tmp_path / "c.coffer"
    coffer = Coffer.open(path, "w", type="null", auto_flush=True)
    coffer.write("first", b"1")
    real = os.fdatasync

    def interrupted(fd: int) -> None:
        real(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fdatasync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        coffer.write("second", b"2")
    monkeypatch.setattr(os, "fdatasync", real)
    with pytest.raises(CofferBrokenError, match="KeyboardInterrupt"):
        coffer.write("third", b"3")
    coffer.close()
    with Coffer.open(path, "r", type="null") as coffer:
        coffer.verify()
        assert coffer.read("first") == b"1"
        assert coffer.read("second") == b"2"
        assert "third" not in coffer


def test_a_member_file_whose_own_close_failed_is_no_longer_being_written(tmp_path, monkeypatch):
    """The block closes its file itself, the close fails (the disk full as
    the last chunk is stored), the block goes on: compact() must not think
    the member is still being written."""
    path = tmp_path / "c.coffer"
    state = _disk_fills_once(monkeypatch)
    with Coffer.open(path, "w", type="null") as coffer:
        with coffer.file("m", "wb") as stream:
            stream.write(b"x" * 1000)
            state["armed"] = 1
            with pytest.raises(OSError):
                stream.close()
        assert "m" not in coffer
        coffer.write("n", b"ok")
        coffer.compact()
        assert coffer.read("n") == b"ok"
