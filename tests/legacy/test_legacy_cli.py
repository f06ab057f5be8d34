"""``pycoffer migrate``: an old coffer into a new one from the command line, in-process."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from pycoffer_core import Coffer
from pycoffer_core.cli import cli, keyfile, progress
from pycoffer_core.cli.errors import ReportingGroup
from pycoffer_core.cli.migrate_command import migrate as migrate_command
from pycoffer_core.keyslots import INSECURE_FAST_ENV

FIXTURES = Path(__file__).parent / "fixtures"
CLI_ENV = ("PYCOFFER_PASSPHRASE", "PYCOFFER_NEW_PASSPHRASE", "PYCOFFER_KEY_FILE", "PYCOFFER_DEBUG")


def _group() -> ReportingGroup:
    """The real group, with ``migrate`` added if it is not wired in yet."""
    if "migrate" in cli.commands:
        return cli  # type: ignore[return-value]
    group = ReportingGroup(name="pycoffer", commands=dict(cli.commands), params=cli.params, callback=cli.callback)
    group.add_command(migrate_command)
    return group


def run(*args: object, env: dict[str, str] | None = None) -> Result:
    full_env: dict[str, str | None] = dict.fromkeys(CLI_ENV)
    full_env[INSECURE_FAST_ENV] = "1"
    full_env.update(env or {})
    return CliRunner().invoke(_group(), [str(a) for a in args], env=full_env)


def expected(legacy_type: str) -> dict[str, dict]:
    document = json.loads((FIXTURES / f"{legacy_type}.expected.json").read_text())
    return {m["name"]: m for m in document["members"]}


def assert_same_members(coffer: Coffer, legacy_type: str) -> None:
    want = expected(legacy_type)
    assert sorted(info.name for info in coffer.getmembers()) == sorted(want)
    for name, member in want.items():
        assert hashlib.sha256(coffer.read(name)).hexdigest() == member["sha256"]


@pytest.fixture
def old_config(tmp_path: Path) -> Path:
    """The bank fixture's keys as the old library's INI config held them (mode 0600)."""
    keys = json.loads((FIXTURES / "bank.keys.json").read_text())["keys"]
    path = tmp_path / "pycofferrc"
    path.write_text(
        "[DEFAULT]\ndefault_type = bank\n\n"
        f"[confidential]\ntype = bank\ncoffer_key = {keys['coffer_key']}\nsecure_key = {keys['secure_key']}\n"
        f"location = {FIXTURES / 'bank.pcof'}\n"
    )
    path.chmod(0o600)
    return path


def test_migrate_with_the_old_ini_config_into_a_passphrase_coffer(old_config, tmp_path):
    new = tmp_path / "vault.coffer"
    result = run(
        "migrate", FIXTURES / "bank.pcof", new, "--from", "bank", "--legacy-key-file", old_config, "--type", "bank",
        env={"PYCOFFER_PASSPHRASE": "new passphrase"},
    )
    assert result.exit_code == 0, result.stderr
    assert "migrated 8 members" in result.stdout and ".plugins/passwd" in result.stdout
    with Coffer.open(new, "r", type="bank", password="new passphrase") as coffer:
        assert_same_members(coffer, "bank")


def test_migrate_a_fernet_bank_with_the_config_0_0_x_wrote(tmp_path):
    new = tmp_path / "vault.coffer"
    result = run("migrate", FIXTURES / "bank-fernet.pcof", new, "--legacy-key-file", FIXTURES / "bank-fernet.pycofferrc",
                 "--type", "null")
    assert result.exit_code == 0, result.stderr
    assert "legacy bank-fernet" in result.stdout
    with Coffer.open(new, "r", type="null") as coffer:
        assert_same_members(coffer, "bank-fernet")


def test_migrate_takes_the_type_from_the_key_file_and_writes_new_keys(tmp_path):
    new, keys = tmp_path / "vault.coffer", tmp_path / "vault.key"
    result = run(
        "migrate", FIXTURES / "market.pcof", new, "--legacy-key-file", FIXTURES / "market.keys.json",
        "--type", "bank", "--key-file", keys,
    )
    assert result.exit_code == 0, result.stderr
    type_name, params = keyfile.read(keys)
    with Coffer.open(new, "r", type=type_name, **params) as coffer:
        assert_same_members(coffer, "market")


def test_migrate_a_null_coffer_needs_no_keys_and_can_report_json(tmp_path):
    result = run("migrate", FIXTURES / "null.pcof", tmp_path / "new.coffer", "--from", "null", "--type", "null", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["plugin_data"] == [".plugins/passwd"]
    assert len(report["members"]) == 8 and report["skipped"] == []


def test_a_wrong_legacy_key_is_one_line_and_leaves_nothing_behind(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"coffer_key": base64.b64encode(bytes(16)).decode(), "secure_key": base64.b64encode(bytes(32)).decode()}))
    bad.chmod(0o600)
    new, keys = tmp_path / "vault.coffer", tmp_path / "vault.key"
    result = run("migrate", FIXTURES / "bank.pcof", new, "--from", "bank", "--legacy-key-file", bad, "--type", "bank", "--key-file", keys)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pycoffer: ") and "coffer_key does not open" in lines[0]
    assert not new.exists() and not keys.exists()


def test_a_wrong_legacy_type_says_which_type_it_looks_like(tmp_path):
    result = run("migrate", FIXTURES / "null.pcof", tmp_path / "n.coffer", "--from", "market",
                 "--legacy-key-file", FIXTURES / "market.keys.json", "--type", "null")
    assert result.exit_code == 1
    assert "looks like a legacy null coffer" in result.stderr


def test_missing_old_keys_say_how_to_give_them(tmp_path):
    result = run("migrate", FIXTURES / "bank.pcof", tmp_path / "n.coffer", "--from", "bank", "--type", "null")
    assert result.exit_code == 1 and "--legacy-key-file" in result.stderr
    assert not (tmp_path / "n.coffer").exists()


def test_a_key_file_of_another_type_is_refused(tmp_path):
    result = run("migrate", FIXTURES / "bank.pcof", tmp_path / "n.coffer", "--from", "store",
                 "--legacy-key-file", FIXTURES / "bank.keys.json", "--type", "null")
    assert result.exit_code == 1
    assert "holds keys of a bank coffer" in result.stderr


def test_a_key_file_others_can_read_gets_a_warning_not_a_refusal(tmp_path):
    # the old library never checked its config's mode: refusing would strand users
    keys = tmp_path / "market.json"
    keys.write_bytes((FIXTURES / "market.keys.json").read_bytes())
    keys.chmod(0o644)
    result = run("migrate", FIXTURES / "market.pcof", tmp_path / "n.coffer", "--legacy-key-file", keys, "--type", "null")
    assert result.exit_code == 0, result.stderr
    assert "may be read by others" in result.stderr and "chmod 600" in result.stderr


def test_an_existing_destination_is_never_overwritten(tmp_path):
    new = tmp_path / "vault.coffer"
    new.write_bytes(b"precious")
    result = run("migrate", FIXTURES / "null.pcof", new, "--from", "null", "--type", "null")
    assert result.exit_code == 1 and "exists" in result.stderr
    assert new.read_bytes() == b"precious"


def test_progress_is_drawn_on_a_terminal(tmp_path, monkeypatch):
    drawn = io.StringIO()
    monkeypatch.setattr(progress, "_console", lambda: Console(file=drawn, force_terminal=True, width=120))
    result = run("migrate", FIXTURES / "null.pcof", tmp_path / "new.coffer", "--from", "null", "--type", "null")
    assert result.exit_code == 0, result.stderr
    assert "migrating" in drawn.getvalue()
