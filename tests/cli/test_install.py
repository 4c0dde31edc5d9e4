"""`expert-cli install`: trust flags, --force, --json, and refusals that leave nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from package_helpers import flip_byte, tree, write_expert

from expert_cli.core import paths
from expert_cli.packages.build import build_package


@pytest.fixture
def package(tiny_adapter: Path, tmp_path: Path) -> Path:
    return build_package(write_expert(tmp_path / "expert", tiny_adapter), tmp_path).path


def test_signed_package_with_trust_key(cli, package: Path, tmp_path: Path) -> None:
    pair = json.loads(cli("keygen", "-o", tmp_path / "pub.pem", "--json").stdout)
    assert cli("sign", package, "--key", pair["private_key"]).exit_code == 0
    refused = cli("install", package)
    assert refused.exit_code == 1 and "not in your trusted keys" in refused.stderr
    assert "--trust-key" in refused.stderr
    result = cli("install", package, "--trust-key", pair["public_key"], "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["name"], document["trust"], document["fingerprint"]) == ("expert-demo", "trusted",
                                                                              pair["fingerprint"])
    listed = json.loads(cli("list", "--json").stdout)
    assert [(e["name"], e["version"]) for e in listed] == [("expert-demo", "0.1.0")]


def test_unsigned_package_needs_the_flag(cli, package: Path) -> None:
    refused = cli("install", package)
    assert refused.exit_code == 1 and refused.stdout == ""
    assert "is not signed" in refused.stderr and "hint:" in refused.stderr and "--allow-unsigned" in refused.stderr
    assert not paths.registry_path().exists() and tree(paths.experts_dir()) == []
    ok = cli("install", package, "--allow-unsigned")
    assert ok.exit_code == 0 and "warning:" in ok.stderr and "installed expert-demo@0.1.0" in ok.stderr


def test_reinstall_needs_force(cli, package: Path) -> None:
    assert cli("install", package, "--allow-unsigned").exit_code == 0
    again = cli("install", package, "--allow-unsigned")
    assert again.exit_code == 1 and "already installed" in again.stderr and "--force" in again.stderr
    forced = cli("install", package, "--allow-unsigned", "--force", "--json")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["replaced"] is True


def test_corrupt_download_is_caught_by_the_sidecar(cli, package: Path) -> None:
    flip_byte(package, 40)
    result = cli("install", package, "--allow-unsigned")
    assert result.exit_code == 1 and "does not match its checksum file" in result.stderr
    assert not paths.registry_path().exists()


def test_bad_source_is_a_usage_error(cli, tmp_path: Path) -> None:
    result = cli("install", tmp_path / "missing.expert")
    assert result.exit_code == 2 and result.stderr.startswith("error: ")


@pytest.mark.parametrize("argv", [["install", "{package}", "--allow-unsigned"], ["uninstall", "demo"]])
def test_an_unusable_expert_home_is_an_error_not_a_traceback(cli, package: Path, tmp_path: Path, monkeypatch,
                                                             argv: list[str]) -> None:
    home = tmp_path / "home-is-a-file"
    home.write_text("not a folder")
    monkeypatch.setenv("EXPERT_HOME", str(home))
    result = cli(*[arg.format(package=package) for arg in argv])
    assert result.exit_code == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: cannot create the folder `{home / 'tmp'}`")
    assert "hint: check that `EXPERT_HOME`" in result.stderr
    assert home.read_text() == "not a folder"


def test_a_package_for_another_base_model_than_model_is_refused(cli, package: Path) -> None:
    result = cli("install", package, "--allow-unsigned", "--model", "Qwen/Qwen3-0.6B")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[0] == (f"error: `{package.name}` is built for `builtin:tiny-qwen3`, "
                                             "not for `Qwen/Qwen3-0.6B`")
    assert not paths.registry_path().exists() and tree(paths.experts_dir()) == []
    ok = cli("install", package, "--allow-unsigned", "--model", "tiny-qwen3")
    assert ok.exit_code == 0, ok.stderr
