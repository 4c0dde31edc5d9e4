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


def _signed_versions(cli, tiny_adapter: Path, tmp_path: Path, who: str) -> dict[str, Path]:
    """expert-demo 0.1.0 and 0.2.0 signed by the key `who`, whose .pub is trusted."""
    pair = json.loads(cli("keygen", "-o", tmp_path / f"{who}.pem", "--json").stdout)
    assert cli("trust", "add", pair["public_key"]).exit_code == 0
    out = {}
    for version in ("0.1.0", "0.2.0"):
        folder = write_expert(tmp_path / f"{who}-{version}", tiny_adapter, version=version, rows=0)
        out[version] = build_package(folder, tmp_path / f"{who}-{version}.expert").path
        assert cli("sign", out[version], "--key", pair["private_key"]).exit_code == 0
    out["fingerprint"] = pair["fingerprint"]
    return out


def test_another_publisher_needs_allow_new_publisher(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    alice = _signed_versions(cli, tiny_adapter, tmp_path, "alice")
    mallory = _signed_versions(cli, tiny_adapter, tmp_path, "mallory")
    assert cli("install", alice["0.1.0"]).exit_code == 0
    before = paths.registry_path().read_bytes()
    for argv in (["install", mallory["0.2.0"]], ["install", mallory["0.1.0"], "--force"]):
        refused = cli(*argv)
        assert refused.exit_code == 1 and refused.stdout == ""
        assert refused.stderr.startswith("error: `expert-demo` is pinned to the publisher key "
                                         f"`{alice['fingerprint']}`")
        assert "hint: if its publisher really changed keys, pass `--allow-new-publisher`" in refused.stderr
        assert paths.registry_path().read_bytes() == before
    verbose = cli("list", "-v")
    assert "TRUST" in verbose.stdout and alice["fingerprint"] in verbose.stdout
    taken = cli("install", mallory["0.2.0"], "--allow-new-publisher", "--json")
    assert taken.exit_code == 0, taken.stderr
    assert json.loads(cli("verify", "demo", "--json").stdout)["pinned_fingerprint"] == mallory["fingerprint"]


def test_an_older_version_needs_allow_downgrade(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    alice = _signed_versions(cli, tiny_adapter, tmp_path, "alice")
    assert cli("install", alice["0.2.0"]).exit_code == 0
    refused = cli("install", alice["0.1.0"])
    assert refused.exit_code == 1
    assert "error: `expert-demo@0.1.0` is older than the installed `expert-demo@0.2.0`" in refused.stderr
    assert "--allow-downgrade" in refused.stderr
    assert cli("install", alice["0.1.0"], "--allow-downgrade").exit_code == 0


def test_a_folder_install_needs_allow_unsigned(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    folder = write_expert(tmp_path / "e", tiny_adapter, rows=0)
    refused = cli("install", folder)
    assert refused.exit_code == 1 and "is not signed" in refused.stderr and "--allow-unsigned" in refused.stderr
    assert not paths.registry_path().exists()
    ok = cli("install", folder, "--allow-unsigned", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["trust"] == "local"
