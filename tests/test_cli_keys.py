"""Passphrases, key files, passwd, keys, encrypt and decrypt, in-process."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import click
import pytest

from pycoffer_core.cli import cli
from test_cli_support import (  # noqa: F401  (fixtures)
    PASSPHRASE,
    aead_coffer,
    assert_one_line_error,
    prompts,
    run,
    with_passphrase,
)


def opens_with(coffer: Path, passphrase: str) -> bool:
    return run("ls", coffer, env=with_passphrase(passphrase)).exit_code == 0


# ------------------------------------------------------------------ passphrases


def test_init_takes_the_passphrase_from_the_environment(aead_coffer):
    result = run("cat", aead_coffer, "a.txt", env=with_passphrase())
    assert result.stdout_bytes == b"alpha\n"


def test_a_wrong_passphrase_is_one_line_naming_the_coffer(aead_coffer):
    assert_one_line_error(run("ls", aead_coffer, env=with_passphrase("wrong")), "wrong passphrase", str(aead_coffer))


def test_init_asks_twice_without_echo(tmp_path, aead_type, prompts):
    coffer = tmp_path / "v.coffer"
    result = run("init", coffer, "--type", aead_type, input="s3cret-phrase\ns3cret-phrase\n")
    assert result.exit_code == 0, result.stderr
    assert "Repeat" in result.stderr
    assert "s3cret-phrase" not in result.output
    assert opens_with(coffer, "s3cret-phrase")


def test_init_with_two_different_answers_creates_nothing(tmp_path, aead_type, prompts):
    coffer = tmp_path / "v.coffer"
    result = run("init", coffer, "--type", aead_type, input="one\ntwo\n")
    assert result.exit_code == 1
    assert "differ" in result.stderr.splitlines()[-1]
    assert not coffer.exists()


def test_without_a_terminal_or_the_variable_it_says_how_to_give_a_passphrase(tmp_path, aead_type, monkeypatch):
    monkeypatch.setattr("pycoffer_core.cli.passphrases.can_prompt", lambda: False)
    result = run("init", tmp_path / "v.coffer", "--type", aead_type)
    assert_one_line_error(result, "PYCOFFER_PASSPHRASE", "--key-file")
    assert not (tmp_path / "v.coffer").exists()


def test_opening_asks_again_after_a_wrong_passphrase(aead_coffer, prompts):
    result = run("cat", aead_coffer, "a.txt", input=f"wrong\n{PASSPHRASE}\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b"alpha\n"
    assert "try again" in result.stderr


def test_opening_gives_up_after_three_wrong_passphrases(aead_coffer, prompts):
    result = run("ls", aead_coffer, input="one\ntwo\nthree\n")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("pycoffer: ")
    assert "wrong passphrase" in result.stderr.splitlines()[-1]


def test_an_empty_passphrase_variable_is_refused(aead_coffer):
    assert_one_line_error(run("ls", aead_coffer, env={"PYCOFFER_PASSPHRASE": ""}), "PYCOFFER_PASSPHRASE", "empty")


def test_no_option_takes_a_key_or_passphrase_as_a_value():
    def commands(group: click.Group):
        for command in group.commands.values():
            yield command
            if isinstance(command, click.Group):
                yield from commands(command)

    for command in commands(cli):
        for param in command.params:
            if isinstance(param, click.Option) and not param.is_flag:
                name = param.name or ""
                assert not any(word in name for word in ("pass", "secret", "password")), (command.name, name)
                if "key" in name:  # key files are paths, never the keys themselves
                    assert name.endswith("key_file") and isinstance(param.type, click.Path), (command.name, name)


# ------------------------------------------------------------------ key files


@pytest.fixture
def keyed(tmp_path, aead_type) -> tuple[Path, Path]:
    coffer, key_file = tmp_path / "k.coffer", tmp_path / "k.json"
    result = run("init", coffer, "--type", aead_type, "--key-file", key_file)
    assert result.exit_code == 0, result.stderr
    return coffer, key_file


def test_init_key_file_writes_fresh_keys_only_the_owner_can_read(keyed):
    coffer, key_file = keyed
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    document = json.loads(key_file.read_text())
    assert document["type"] == "test-aead"
    assert set(document["keys"]) == {"container_key", "member_key"}
    assert run("put", coffer, "x", "--key-file", key_file, input=b"x").exit_code == 0
    assert run("cat", coffer, "x", env={"PYCOFFER_KEY_FILE": str(key_file)}).stdout_bytes == b"x"


def test_init_refuses_to_overwrite_a_key_file_and_creates_no_coffer(tmp_path, aead_type):
    key_file = tmp_path / "k.json"
    key_file.write_text("precious")
    result = run("init", tmp_path / "v.coffer", "--type", aead_type, "--key-file", key_file)
    assert_one_line_error(result, str(key_file), "overwrite")
    assert key_file.read_text() == "precious"
    assert not (tmp_path / "v.coffer").exists()


def test_init_removes_the_key_file_when_the_coffer_cannot_be_made(tmp_path, aead_type):
    key_file = tmp_path / "k.json"
    result = run("init", tmp_path / "missing" / "v.coffer", "--type", aead_type, "--key-file", key_file)
    assert_one_line_error(result, "does not exist")
    assert not key_file.exists()


def test_a_key_file_others_can_read_is_refused(keyed):
    coffer, key_file = keyed
    key_file.chmod(0o644)
    assert_one_line_error(run("ls", coffer, "--key-file", key_file), "chmod 600", "0644")


def test_a_key_file_of_another_type_is_refused(keyed, tmp_path):
    coffer, key_file = keyed
    document = json.loads(key_file.read_text())
    document["type"] = "bank"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))
    other.chmod(0o600)
    assert_one_line_error(run("ls", coffer, "--key-file", other), "bank", "test-aead")


def test_a_missing_or_malformed_key_file_is_one_line(keyed, tmp_path):
    coffer, _ = keyed
    assert_one_line_error(run("ls", coffer, "--key-file", tmp_path / "none.json"), "no key file")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    bad.chmod(0o600)
    assert_one_line_error(run("ls", coffer, "--key-file", bad), "not a pycoffer key file")


def test_the_wrong_key_file_is_a_wrong_key(keyed, tmp_path, aead_type):
    coffer, _ = keyed
    other = tmp_path / "other.json"
    run("init", tmp_path / "other.coffer", "--type", aead_type, "--key-file", other)
    result = run("ls", coffer, "--key-file", other)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr


def test_a_type_without_keys_takes_no_key_file(tmp_path):
    assert_one_line_error(run("init", tmp_path / "v.coffer", "--type", "null", "--key-file", tmp_path / "k"), "no keys")
    assert not (tmp_path / "k").exists()


# ------------------------------------------------------------------ passwd and keys


def test_passwd_replaces_the_passphrase(aead_coffer):
    result = run("passwd", aead_coffer, env=with_passphrase(PYCOFFER_NEW_PASSPHRASE="new phrase"))
    assert result.exit_code == 0, result.stderr
    assert opens_with(aead_coffer, "new phrase")
    assert not opens_with(aead_coffer, PASSPHRASE)


def test_passwd_asks_for_the_current_and_twice_for_the_new(aead_coffer, prompts):
    result = run("passwd", aead_coffer, input=f"{PASSPHRASE}\nnew phrase\nnew phrase\n")
    assert result.exit_code == 0, result.stderr
    assert "Current passphrase" in result.stderr and "Repeat" in result.stderr
    assert opens_with(aead_coffer, "new phrase")


def test_passwd_with_a_wrong_current_passphrase_changes_nothing(aead_coffer):
    result = run("passwd", aead_coffer, env=with_passphrase("wrong", PYCOFFER_NEW_PASSPHRASE="new"))
    assert_one_line_error(result, "wrong passphrase")
    assert opens_with(aead_coffer, PASSPHRASE)


def test_keys_add_list_and_remove(aead_coffer):
    assert run("keys", aead_coffer, "add", env=with_passphrase(PYCOFFER_NEW_PASSPHRASE="second")).exit_code == 0
    assert opens_with(aead_coffer, "second") and opens_with(aead_coffer, PASSPHRASE)
    slots = json.loads(run("keys", aead_coffer, "list", "--json", env=with_passphrase()).stdout)
    assert [slot["index"] for slot in slots] == [0, 1]
    assert {slot["kdf"] for slot in slots} == {"argon2id"}
    table = run("keys", aead_coffer, "list", env=with_passphrase()).stdout
    assert "argon2id" in table and "SLOT" in table
    assert run("keys", aead_coffer, "remove", env=with_passphrase()).exit_code == 0
    assert not opens_with(aead_coffer, PASSPHRASE)
    assert opens_with(aead_coffer, "second")


def test_keys_remove_by_slot_revokes_a_forgotten_passphrase(aead_coffer):
    assert run("keys", aead_coffer, "add", env=with_passphrase(PYCOFFER_NEW_PASSPHRASE="known")).exit_code == 0
    result = run("keys", aead_coffer, "remove", "--slot", "0", env=with_passphrase("known"))
    assert result.exit_code == 0, result.stderr
    assert not opens_with(aead_coffer, PASSPHRASE)
    assert opens_with(aead_coffer, "known")
    assert_one_line_error(run("keys", aead_coffer, "remove", "--slot", "0", env=with_passphrase("known")), "last")
    assert_one_line_error(run("keys", aead_coffer, "remove", "--slot", "7", env=with_passphrase("known")), "slot")


def test_keys_remove_refuses_the_last_passphrase(aead_coffer):
    assert_one_line_error(run("keys", aead_coffer, "remove", env=with_passphrase()), "last passphrase")
    assert opens_with(aead_coffer, PASSPHRASE)


def test_keys_add_to_a_key_file_coffer_then_remove_it_again(keyed):
    coffer, key_file = keyed
    result = run("keys", coffer, "add", "--key-file", key_file, env={"PYCOFFER_NEW_PASSPHRASE": "phrase"})
    assert result.exit_code == 0, result.stderr
    assert opens_with(coffer, "phrase")
    result = run("keys", coffer, "remove", "--key-file", key_file, env=with_passphrase("phrase"))
    assert result.exit_code == 0, result.stderr
    assert not opens_with(coffer, "phrase")


def test_keys_of_a_type_without_keys_is_an_error(tmp_path):
    coffer = tmp_path / "v.coffer"
    run("init", coffer, "--type", "null")
    assert_one_line_error(run("keys", coffer, "list"), "no keys")


# ------------------------------------------------------------------ encrypt and decrypt


def test_encrypt_then_decrypt_round_trips_an_external_file(aead_coffer, tmp_path):
    plain = tmp_path / "report.pdf"
    plain.write_bytes(os.urandom(700_000))
    sealed, back = tmp_path / "report.sealed", tmp_path / "back.pdf"
    assert run("encrypt", aead_coffer, plain, sealed, env=with_passphrase()).exit_code == 0
    assert plain.read_bytes()[:1000] not in sealed.read_bytes()
    assert run("decrypt", aead_coffer, sealed, back, env=with_passphrase()).exit_code == 0
    assert back.read_bytes() == plain.read_bytes()
    assert stat.S_IMODE(back.stat().st_mode) == 0o600


def test_encrypt_from_stdin_and_decrypt_to_stdout(aead_coffer, tmp_path):
    sealed = tmp_path / "s"
    assert run("encrypt", aead_coffer, "-", sealed, input=b"piped", env=with_passphrase()).exit_code == 0
    assert run("decrypt", aead_coffer, sealed, "-", env=with_passphrase()).stdout_bytes == b"piped"


def test_decrypt_of_a_tampered_file_fails_and_writes_nothing(aead_coffer, tmp_path):
    plain, sealed, back = tmp_path / "p", tmp_path / "s", tmp_path / "back"
    plain.write_bytes(b"a" * 10_000)
    run("encrypt", aead_coffer, plain, sealed, env=with_passphrase())
    data = bytearray(sealed.read_bytes())
    data[-20] ^= 1
    sealed.write_bytes(bytes(data))
    result = run("decrypt", aead_coffer, sealed, back, env=with_passphrase())
    assert_one_line_error(result)
    assert not back.exists()
    assert [p.name for p in tmp_path.iterdir() if "part" in p.name] == []


def test_encrypt_and_decrypt_refuse_to_overwrite_unless_force(aead_coffer, tmp_path):
    plain, sealed = tmp_path / "p", tmp_path / "s"
    plain.write_bytes(b"data")
    sealed.write_bytes(b"keep me")
    assert_one_line_error(run("encrypt", aead_coffer, plain, sealed, env=with_passphrase()), "--force")
    assert sealed.read_bytes() == b"keep me"
    assert run("encrypt", aead_coffer, plain, sealed, "--force", env=with_passphrase()).exit_code == 0
    assert_one_line_error(run("decrypt", aead_coffer, sealed, plain, env=with_passphrase()), "--force")


def test_encrypt_with_a_type_that_does_not_encrypt_is_refused(tmp_path):
    coffer, plain = tmp_path / "v.coffer", tmp_path / "p"
    run("init", coffer, "--type", "null")
    plain.write_bytes(b"x")
    assert_one_line_error(run("encrypt", coffer, plain, tmp_path / "s"), "does not encrypt")
    assert not (tmp_path / "s").exists()


def test_encrypt_of_a_missing_source_is_one_line(aead_coffer, tmp_path):
    result = run("encrypt", aead_coffer, tmp_path / "none", tmp_path / "s", env=with_passphrase())
    assert_one_line_error(result, "none")
    assert not (tmp_path / "s").exists()


def test_decrypt_into_a_missing_folder_names_the_folder(aead_coffer, tmp_path):
    plain, sealed = tmp_path / "p", tmp_path / "s"
    plain.write_bytes(b"data")
    run("encrypt", aead_coffer, plain, sealed, env=with_passphrase())
    result = run("decrypt", aead_coffer, sealed, tmp_path / "missing" / "p", env=with_passphrase())
    assert_one_line_error(result, "folder", "missing", "does not exist")


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_encrypt_and_decrypt_never_replace_the_coffer_even_with_force(aead_coffer, tmp_path, command):
    plain, sealed = tmp_path / "p", tmp_path / "s"
    plain.write_bytes(b"data")
    assert run("encrypt", aead_coffer, plain, sealed, env=with_passphrase()).exit_code == 0
    source = plain if command == "encrypt" else sealed
    link = tmp_path / "link.coffer"
    link.symlink_to(aead_coffer)
    assert Path(f"{aead_coffer}.lock").exists()  # left by the opens above
    for named in (aead_coffer, link):  # the coffer named through a link: its lock is beside the file
        for own in (Path(aead_coffer), Path(f"{aead_coffer}.lock")):
            if not own.exists():
                continue
            before = own.read_bytes()
            result = run(command, named, source, own, "--force", env=with_passphrase())
            assert_one_line_error(result, "refusing")
            assert own.read_bytes() == before


def test_encrypt_and_decrypt_write_to_the_longest_names_in_bytes(aead_coffer, tmp_path):
    # The part file's name beside the output is cut by bytes, as an
    # extracted member's is: 244 bytes of "é" once overflowed it.
    plain, sealed = tmp_path / "p", tmp_path / ("é" * 120 + ".sealed")
    plain.write_bytes(b"data")
    assert run("encrypt", aead_coffer, plain, sealed, env=with_passphrase()).exit_code == 0
    restored = tmp_path / ("é" * 120 + ".txt")
    assert run("decrypt", aead_coffer, sealed, restored, env=with_passphrase()).exit_code == 0
    assert restored.read_bytes() == b"data"
