"""`expert-cli trust add|list|rm`."""

from __future__ import annotations

import json
from pathlib import Path


def test_add_list_rm(cli, tmp_path: Path) -> None:
    pair = json.loads(cli("keygen", "-o", tmp_path / "acme.pem", "--json").stdout)
    added = cli("trust", "add", pair["public_key"], "--json")
    assert added.exit_code == 0 and json.loads(added.stdout)["name"] == "acme"
    again = cli("trust", "add", pair["public_key"], "--json")
    assert json.loads(again.stdout)["added"] is False
    listed = json.loads(cli("trust", "list", "--json").stdout)
    assert [(k["name"], k["fingerprint"]) for k in listed] == [("acme", pair["fingerprint"])]
    table = cli("trust", "list")
    assert "acme" in table.stdout and pair["fingerprint"] in table.stdout
    assert cli("trust", "rm", pair["fingerprint"]).exit_code == 0
    assert json.loads(cli("trust", "list", "--json").stdout) == []


def test_inline_key_and_errors(cli) -> None:
    result = cli("trust", "add", "ed25519:" + "11" * 32, "--name", "inline", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["name"] == "inline"
    bad = cli("trust", "add", "ed25519:xyz")
    assert bad.exit_code == 1 and "is not an Ed25519 public key" in bad.stderr
    missing = cli("trust", "rm", "nobody")
    assert missing.exit_code == 2 and "no trusted key `nobody` (trusted: `inline`)" in missing.stderr


def test_add_into_an_unusable_expert_home_is_one_error_line(cli, tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home-is-a-file"
    home.write_text("not a folder")
    monkeypatch.setenv("EXPERT_HOME", str(home))
    result = cli("trust", "add", "ed25519:" + "11" * 32)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: cannot create the folder `{home / 'trusted-keys'}`")


def test_key_files_that_are_not_public_keys_are_named_not_echoed(cli, tmp_path: Path) -> None:
    pair = json.loads(cli("keygen", "-o", tmp_path / "acme.pem", "--json").stdout)
    private = cli("trust", "add", pair["private_key"])
    assert private.exit_code == 1 and "BEGIN" not in private.stderr
    assert private.stderr.startswith(f"error: `{pair['private_key']}` holds a private key, not a public key")
    (tmp_path / "notes.txt").write_text("secret words\n")
    other = cli("trust", "add", tmp_path / "notes.txt")
    assert other.exit_code == 1 and "secret" not in other.stderr
    assert other.stderr.startswith(f"error: `{tmp_path / 'notes.txt'}` does not hold an Ed25519 public key")
    assert json.loads(cli("trust", "list", "--json").stdout) == []


def test_rm_marks_installed_experts_untrusted_and_pin_moves_a_name(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    from package_helpers import write_expert

    from expert_cli.packages.build import build_package

    pair = json.loads(cli("keygen", "-o", tmp_path / "acme.pem", "--json").stdout)
    other = json.loads(cli("keygen", "-o", tmp_path / "other.pem", "--json").stdout)
    package = build_package(write_expert(tmp_path / "e", tiny_adapter, rows=0), tmp_path).path
    cli("sign", package, "--key", pair["private_key"])
    cli("trust", "add", pair["public_key"])
    assert cli("install", package).exit_code == 0
    assert "trusted" in cli("list", "-v").stdout
    assert cli("trust", "rm", "acme").exit_code == 0
    listed = json.loads(cli("list", "--json").stdout)
    assert listed[0]["integrity"]["trust"] == "untrusted"
    assert "untrusted" in cli("list", "-v").stdout
    pinned = cli("trust", "pin", "demo", other["public_key"], "--json")
    assert pinned.exit_code == 0, pinned.stderr
    document = json.loads(pinned.stdout)
    assert (document["name"], document["pubkey"], document["previous_pubkey"]) == (
        "expert-demo", other["pubkey"], pair["pubkey"])
