"""`expert-cli keygen`: a 0600 PEM private key and an ed25519:<hex> public key."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from expert_cli.core import paths


def test_keygen_default_location_and_json(cli) -> None:
    result = cli("keygen", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    private = Path(document["private_key"])
    assert private == paths.keys_dir() / "publisher.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert Path(document["public_key"]).read_text().strip() == document["pubkey"]
    assert document["pubkey"].startswith("ed25519:") and len(document["fingerprint"]) == 16


def test_keygen_refuses_to_overwrite(cli, tmp_path: Path) -> None:
    assert cli("keygen", "-o", tmp_path / "k.pem").exit_code == 0
    again = cli("keygen", "-o", tmp_path / "k.pem")
    assert again.exit_code == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert cli("keygen", "-o", tmp_path / "k.pem", "--force").exit_code == 0


def test_keygen_into_an_unusable_expert_home_is_one_error_line(cli, tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home-is-a-file"
    home.write_text("not a folder")
    monkeypatch.setenv("EXPERT_HOME", str(home))
    result = cli("keygen")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: cannot create the folder `{home / 'keys'}`: a file stands where a folder should be",
        f"hint: check that `EXPERT_HOME` (`{home}`) is a writable folder with free space, or set it to one",
    ]
    assert home.read_text() == "not a folder"


def test_keygen_onto_a_folder_is_a_usage_error(cli, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    result = cli("keygen", "-o", folder, "--force")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: `{folder}` is a folder; `-o` names the private key file to write",
                                          f"hint: e.g. `-o {folder / 'publisher.pem'}`"]
    monkeypatch.chdir(tmp_path)
    empty = cli("keygen", "-o", "")  # the current folder: was a ValueError traceback
    assert empty.exit_code == 2 and empty.stderr.startswith("error: `.` is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"] and list(folder.iterdir()) == []


def test_the_public_key_is_readable_by_others_the_private_one_is_not(cli, tmp_path: Path) -> None:
    import os

    old_mask = os.umask(0o022)
    try:
        assert cli("keygen", "-o", tmp_path / "k.pem").exit_code == 0
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k.pub").stat().st_mode) == 0o644
