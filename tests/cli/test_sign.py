"""`expert-cli sign`: signs in place, refreshes the sidecar; bad keys and tampered packages are errors."""

from __future__ import annotations

import json
from pathlib import Path

from package_helpers import extract_plain, flip_byte, repack, sha256, write_expert

from expert_cli.packages.build import build_package


def _package(adapter: Path, tmp_path: Path) -> Path:
    return build_package(write_expert(tmp_path / "expert", adapter), tmp_path / "p.expert").path


def test_sign_with_the_default_key(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    package = _package(tiny_adapter, tmp_path)
    pubkey = json.loads(cli("keygen", "--json").stdout)["pubkey"]
    result = cli("sign", package, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["pubkey"] == pubkey and document["sha256"] == sha256(package)
    assert (tmp_path / "p.expert.sha256").read_text().split()[0] == sha256(package)
    manifest = json.loads((extract_plain(package, tmp_path / "x") / "manifest.json").read_text())
    assert manifest["integrity"]["pubkey"] == pubkey


def test_sign_without_a_key_says_how_to_make_one(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    result = cli("sign", _package(tiny_adapter, tmp_path))
    assert result.exit_code == 1 and "error: cannot read the key" in result.stderr
    assert "hint: create one with `expert-cli keygen`" in result.stderr


def test_sign_refuses_a_tampered_package(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    package = _package(tiny_adapter, tmp_path)
    folder = extract_plain(package, tmp_path / "x")
    flip_byte(folder / "adapter_config.json")
    repack(folder, package)
    cli("keygen")
    before = package.read_bytes()
    result = cli("sign", package)
    assert result.exit_code == 1 and "does not match its SHA-256" in result.stderr
    assert package.read_bytes() == before


def test_signing_a_folder_says_to_package_it_first(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    folder = write_expert(tmp_path / "expert", tiny_adapter)
    cli("keygen")
    result = cli("sign", folder)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: `{folder}` is a folder, not a `.expert` file",
                                          "hint: build a package from an expert folder with `expert-cli package <folder>`"]


def test_a_public_key_given_as_the_signing_key_is_named(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    package = _package(tiny_adapter, tmp_path)
    before = sha256(package)
    pair = json.loads(cli("keygen", "-o", tmp_path / "k.pem", "--json").stdout)
    result = cli("sign", package, "--key", pair["public_key"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: `{pair['public_key']}` is a public key; signing needs the private key")
    assert sha256(package) == before
