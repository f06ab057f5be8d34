"""Each hook, overridden by a small in-test plugin."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from pycoffer_core import (
    Coffer,
    CofferType,
    DuplicateTypeError,
    PlainLayer,
    UnknownTypeError,
    hookimpl,
    hookspecs,
)
from pycoffer_core.container.log import LogContainer
from pycoffer_core.plugins import registered

HOOKS_TESTED = set()


def covers(hook: str):
    HOOKS_TESTED.add(hook)
    return lambda test: test


class RecordingLock:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def acquire(self) -> None:
        self.calls.append("acquire")

    def release(self) -> None:
        self.calls.append("release")


@covers("pycoffer_lock")
def test_a_lock_plugin_replaces_the_default_file_lock(tmp_path):
    lock = RecordingLock()

    class LockPlugin:
        @hookimpl
        def pycoffer_lock(self, path, lock_timeout):
            assert (path, lock_timeout) == (tmp_path / "c.coffer", 2.5)
            return lock

    with registered(LockPlugin()):
        with Coffer.open(tmp_path / "c.coffer", "w", type="null", lock_timeout=2.5) as coffer:
            assert lock.calls == ["acquire"]
            coffer.write("a", b"1")
    assert lock.calls == ["acquire", "release"]
    assert not Path(f"{tmp_path / 'c.coffer'}.lock").exists()


@covers("pycoffer_temp_dir")
def test_a_temp_dir_plugin_chooses_where_scratch_space_goes(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    class TempPlugin:
        @hookimpl
        def pycoffer_temp_dir(self, path, requested):
            return scratch

    with registered(TempPlugin()):
        with Coffer.open(tmp_path / "c.coffer", "w", type="null", temp_dir=tmp_path) as coffer:
            private = coffer.temp_dir
            assert private.parent == scratch
            assert private.stat().st_mode & 0o777 == 0o700
    assert not private.exists()


def test_the_default_temp_dir_is_the_temp_dir_argument(tmp_path):
    with Coffer.open(tmp_path / "c.coffer", "w", type="null", temp_dir=tmp_path) as coffer:
        assert coffer.temp_dir.parent == tmp_path


@covers("pycoffer_before_commit")
@covers("pycoffer_after_commit")
def test_a_flush_listener_sees_every_commit(tmp_path):
    events = []

    class Listener:
        @hookimpl
        def pycoffer_before_commit(self, event):
            events.append(("before", event.seq, event.changed, event.deleted, event.compaction))

        @hookimpl
        def pycoffer_after_commit(self, event):
            events.append(("after", event.seq, event.changed, event.deleted, event.compaction))

    with registered(Listener()):
        with Coffer.open(tmp_path / "c.coffer", "w", type="null", auto_flush=True) as coffer:
            coffer.write("a", b"1")
            coffer.write("b", b"2")
            coffer.delete("a")
            coffer.compact()
    assert events == [
        ("before", 1, ("a",), (), False),
        ("after", 1, ("a",), (), False),
        ("before", 2, ("b",), (), False),
        ("after", 2, ("b",), (), False),
        ("before", 3, (), ("a",), False),
        ("after", 3, (), ("a",), False),
        ("before", 4, (), (), True),
        ("after", 4, (), (), True),
    ]


def test_a_before_commit_listener_that_raises_aborts_the_commit(tmp_path):
    path = tmp_path / "c.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a", b"1")

    class Veto:
        @hookimpl
        def pycoffer_before_commit(self, event):
            raise PermissionError("audit log unavailable")

    class Leave(Exception):
        """Leaves the ``with`` block, which then closes without committing."""

    before = path.read_bytes()
    with registered(Veto()), pytest.raises(Leave):
        with Coffer.open(path, "a", type="null") as coffer:
            coffer.write("b", b"2")
            with pytest.raises(PermissionError):
                coffer.flush()
            assert coffer.modified
            raise Leave
    assert path.read_bytes() == before


@covers("pycoffer_container")
def test_a_container_plugin_chooses_the_container(tmp_path):
    commits = []

    class CountingContainer(LogContainer):
        def commit(self, **options) -> int:
            commits.append(self.path.name)
            return super().commit(**options)

    class ContainerPlugin:
        @hookimpl
        def pycoffer_container(self, path, coffer_type):
            return CountingContainer if coffer_type.name == "null" else None

    with registered(ContainerPlugin()):
        with Coffer.open(tmp_path / "c.coffer", "w", type="null", auto_flush=True) as coffer:
            coffer.write("a", b"1")
            coffer.write("b", b"2")
    assert commits.count("c.coffer") >= 2


class Thing(CofferType):
    name = "thing"
    description = "an in-test type"

    def container_layer(self):
        return PlainLayer()

    def member_layer(self):
        return PlainLayer()


@covers("pycoffer_types")
def test_a_types_plugin_adds_a_type(tmp_path):
    class TypesPlugin:
        @hookimpl
        def pycoffer_types(self):
            return [Thing]

    with registered(TypesPlugin()):
        assert "thing" in {info.name for info in Coffer.types()}
        with Coffer.open(tmp_path / "t.coffer", "w", type="thing") as coffer:
            coffer.write("a", b"1")
        assert Coffer.type_of(tmp_path / "t.coffer") == "thing"
    with pytest.raises(UnknownTypeError, match="pip install pycoffer-thing"):
        Coffer.open(tmp_path / "t.coffer", "r", type="thing")


def test_types_lists_distribution_and_version_of_installed_plugins():
    (null,) = [info for info in Coffer.types() if info.name == "null"]
    assert null.distribution == "pycoffer-null"
    assert null.version == "0.1.0"
    assert null.auto_flush is False
    assert null.description


def test_two_plugins_registering_one_type_name_is_an_error_naming_both():
    class One:
        @hookimpl
        def pycoffer_types(self):
            return [Thing]

    class Other(Thing):
        pass

    class Two:
        @hookimpl
        def pycoffer_types(self):
            return [Other]

    with registered(One(), name="one"), registered(Two(), name="two"):
        with pytest.raises(DuplicateTypeError, match="one.*two|two.*one"):
            Coffer.types()


def test_unknown_type_lists_installed_types_and_the_distribution_to_install(tmp_path):
    with pytest.raises(UnknownTypeError) as caught:
        Coffer.open(tmp_path / "x.coffer", "w", type="bank-of-nowhere")
    message = str(caught.value)
    assert "null" in message and "pip install pycoffer-bank-of-nowhere" in message
    assert isinstance(caught.value, LookupError)


def test_every_hook_spec_has_a_contract_and_a_test():
    specs = [
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("pycoffer_")
    ]
    assert specs
    for name in specs:
        assert getattr(hookspecs, name).__doc__, name
    assert set(specs) == HOOKS_TESTED
