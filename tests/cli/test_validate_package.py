"""`expert-cli validate FILE.expert`: archive, sidecar, manifest, hashes and signature as numbered checks."""

from __future__ import annotations

import json
from pathlib import Path

from package_helpers import extract_plain, flip_byte, repack, write_expert

from expert_cli.packages.build import build_package


def _checks(result) -> dict[str, str]:
    return {c["name"]: c["status"] for c in json.loads(result.stdout)["checks"]}


def test_valid_unsigned_package_warns_about_the_signature(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    package = build_package(write_expert(tmp_path / "e", tiny_adapter), tmp_path).path
    result = cli("validate", package, "--json")
    assert result.exit_code == 0, result.stdout
    checks = _checks(result)
    assert checks["archive is a safe gzip tar"] == "pass" and checks["checksum file (.sha256)"] == "pass"
    assert checks["file hashes"] == "pass" and checks["signature"] == "warn"
    assert checks["training dataset"] == "skip" and checks["adapter weights"] == "pass"
    assert json.loads(result.stdout)["target"] == str(package)


def test_tampered_package_fails_the_hash_check(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    package = build_package(write_expert(tmp_path / "e", tiny_adapter), tmp_path).path
    folder = extract_plain(package, tmp_path / "x")
    flip_byte(folder / "adapter_model.safetensors")
    repack(folder, tmp_path / "t.expert")
    result = cli("validate", tmp_path / "t.expert")
    assert result.exit_code == 1
    assert "✗ file hashes: `adapter_model.safetensors` in `t.expert` does not match" in result.stdout
    assert "INVALID" in result.stdout


def test_hostile_package_fails_the_first_check(cli, tmp_path: Path) -> None:
    (tmp_path / "h.expert").write_bytes(b"not a tar")
    result = cli("validate", tmp_path / "h.expert", "--json")
    assert result.exit_code == 1
    assert _checks(result) == {"archive is a safe gzip tar": "fail"}
