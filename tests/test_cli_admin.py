"""pycoffer info, verify, compact, types, --version, --help, and how errors look, in-process."""

from __future__ import annotations

import io
import json

import click
import pytest
from rich.console import Console

from pycoffer_core import Coffer, CofferType, MemberNotFoundError, PlainLayer, hookimpl
from pycoffer_core.cli import cli, progress
from pycoffer_core.plugins import registered
from test_cli_support import (  # noqa: F401  (fixtures)
    aead_coffer,
    assert_one_line_error,
    null_coffer,
    run,
    with_passphrase,
)

# ------------------------------------------------------------------ info


def test_info_shows_type_format_members_sizes_and_dead_space(null_coffer):
    result = run("info", null_coffer)
    assert result.exit_code == 0, result.stderr
    facts = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert facts["type"].strip().startswith("null (pycoffer-null ")
    assert facts["format version"].strip() == "1"
    assert facts["members"].strip() == "3"
    assert facts["plain size"].strip() == "817 bytes"
    assert "dead space" in facts and "key slots" in facts


def test_info_json_counts_dead_space_that_compact_reclaims(null_coffer):
    assert run("rm", null_coffer, "notes", "-r").exit_code == 0
    before = json.loads(run("info", null_coffer, "--json").stdout)
    assert before["members"] == 1
    assert before["dead_bytes"] > 0
    assert run("compact", null_coffer).exit_code == 0
    after = json.loads(run("info", null_coffer, "--json").stdout)
    assert after["dead_bytes"] == 0
    assert after["file_bytes"] < before["file_bytes"]
    assert run("cat", null_coffer, "readme.txt").stdout_bytes == b"read me\n"


def test_info_lists_the_key_slots_of_a_passphrase_coffer(aead_coffer):
    facts = json.loads(run("info", aead_coffer, "--json", env=with_passphrase()).stdout)
    assert [slot["kdf"] for slot in facts["key_slots"]] == ["argon2id"]
    assert "1 (argon2id" in run("info", aead_coffer, env=with_passphrase()).stdout


# ------------------------------------------------------------------ verify


def test_verify_of_an_intact_coffer_exits_0_and_says_so(null_coffer):
    result = run("verify", null_coffer)
    assert result.exit_code == 0
    assert "intact" in result.stdout
    assert run("verify", null_coffer, "-q").stdout == ""


def test_verify_of_a_damaged_coffer_exits_1_naming_the_damage(null_coffer):
    data = bytearray(null_coffer.read_bytes())
    where = data.find(b"buy milk")
    assert where > 0
    data[where] ^= 0x20
    null_coffer.write_bytes(bytes(data))
    assert_one_line_error(run("verify", null_coffer), "damaged")


def test_verify_of_an_encrypted_coffer_with_a_wrong_passphrase_is_not_called_damage(aead_coffer):
    result = run("verify", aead_coffer, env=with_passphrase("wrong"))
    assert_one_line_error(result, "wrong passphrase")
    assert "damaged" not in result.stderr


# ------------------------------------------------------------------ types, version, help


def test_types_lists_each_type_with_distribution_version_and_description():
    result = run("types")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split() == ["TYPE", "DISTRIBUTION", "VERSION", "DESCRIPTION"]
    null = next(line for line in result.stdout.splitlines() if line.startswith("null "))
    assert "pycoffer-null" in null and "not encrypted" in null
    listed = {item["name"]: item for item in json.loads(run("types", "--json").stdout)}
    assert listed["null"]["distribution"] == "pycoffer-null"
    assert listed["null"]["keys"] == []


def test_version_names_the_program_and_its_version():
    from importlib.metadata import version

    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pycoffer {version('pycoffer-core')}"


def _all_commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*path, name))


def test_help_lists_every_command_with_a_summary():
    result = run("--help")
    assert result.exit_code == 0
    for name in cli.commands:
        assert f"  {name} " in result.stdout


@pytest.mark.parametrize("path", [p for p, _ in _all_commands(cli)], ids=" ".join)
def test_every_command_help_describes_it_and_every_option(path):
    command = dict(_all_commands(cli))[path]
    extra = ["FILE"] if path[0] == "keys" and len(path) > 1 else []
    result = run(*path[:1], *extra, *path[1:], "--help")
    assert result.exit_code == 0, result.stderr
    assert command.help and len(command.help) > 40
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, (path, param.name)
            assert param.opts[-1] in result.stdout


def test_a_usage_error_exits_2():
    result = run("ls")
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


# ------------------------------------------------------------------ errors


class _GoneType(CofferType):
    name = "cli-gone"
    description = "installed only while a CLI test makes its coffer"

    def container_layer(self) -> PlainLayer:
        return PlainLayer()

    def member_layer(self) -> PlainLayer:
        return PlainLayer()


class _GonePlugin:
    @hookimpl
    def pycoffer_types(self) -> list[type[CofferType]]:
        return [_GoneType]


def test_a_coffer_of_a_type_not_installed_names_the_distribution(tmp_path):
    coffer = tmp_path / "v.coffer"
    with registered(_GonePlugin()):
        Coffer.open(coffer, "x", type="cli-gone").close()
    assert_one_line_error(run("ls", coffer), "cli-gone", "pip install pycoffer-cli-gone")


def test_a_coffer_locked_by_another_writer_names_the_lock_file(null_coffer):
    with Coffer.open(null_coffer, "a", type="null"):
        result = run("--lock-timeout", "0.1", "put", null_coffer, "x", input=b"x")
        assert_one_line_error(result, f"{null_coffer}.lock", "another process")
        reading = run("cat", null_coffer, "readme.txt")  # readers see the last commit, unblocked
        assert reading.exit_code == 0 and reading.stdout_bytes == b"read me\n"


def test_debug_lets_the_exception_through_with_its_traceback(null_coffer):
    result = run("--debug", "cat", null_coffer, "nope")
    assert isinstance(result.exception, MemberNotFoundError)
    result = run("cat", null_coffer, "nope", env={"PYCOFFER_DEBUG": "1"})
    assert isinstance(result.exception, MemberNotFoundError)


def test_an_unexpected_error_is_one_line_pointing_at_debug(null_coffer, monkeypatch):
    def broken(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(Coffer, "getmembers", broken)
    assert_one_line_error(run("ls", null_coffer), "RuntimeError", "boom", "--debug")


def test_an_os_error_is_one_line_naming_the_file(null_coffer, tmp_path):
    a_file = tmp_path / "plain.txt"
    a_file.write_bytes(b"x")
    result = run("extract", null_coffer, "-C", a_file / "out")
    assert_one_line_error(result, "plain.txt")
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ progress


@pytest.fixture
def terminal(monkeypatch) -> io.StringIO:
    """Make stderr look like a terminal to the progress bars; returns what they draw."""
    drawn = io.StringIO()
    monkeypatch.setattr(progress, "_console", lambda: Console(file=drawn, force_terminal=True, width=120))
    return drawn


def test_progress_is_drawn_on_a_terminal(null_coffer, tmp_path, terminal):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(3 << 20))
    assert run("add", null_coffer, big).exit_code == 0
    assert "adding" in terminal.getvalue()


def test_quiet_silences_progress_and_notes(null_coffer, tmp_path, terminal):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(3 << 20))
    result = run("add", null_coffer, big, "--quiet")
    assert result.exit_code == 0 and result.stderr == ""
    assert run("-q", "extract", null_coffer, "-C", tmp_path / "out").stderr == ""
    assert run("compact", null_coffer, "-q").stderr == ""
    assert terminal.getvalue() == ""


def test_no_progress_when_stderr_is_not_a_terminal(null_coffer, tmp_path):
    result = run("extract", null_coffer, "-C", tmp_path / "out")
    assert result.exit_code == 0
    assert result.stderr == "" and result.stdout == ""


def test_verify_and_info_tell_of_bytes_after_the_last_commit(null_coffer):
    with Coffer.open(null_coffer, "a", type="null") as coffer:
        coffer.write("later", b"x" * 5000)
    with open(null_coffer, "r+b") as file:
        file.truncate(file.seek(0, 2) - 10)  # the last commit cut short
    result = run("verify", null_coffer)
    assert result.exit_code == 0, result.stderr
    assert "intact (3 members" in result.stdout
    assert "after its last commit are not part of it" in result.stderr
    facts = json.loads(run("info", null_coffer, "--json").stdout)
    assert facts["ignored_bytes"] > 0
    assert "ignored:" in run("info", null_coffer).stdout


def test_verify_of_a_coffer_of_one_member_says_member(tmp_path):
    path = tmp_path / "one.coffer"
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("a", b"x")
    assert "intact (1 member," in run("verify", path).stdout
