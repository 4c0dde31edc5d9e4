"""`expert-cli verify PACKAGE|NAME`."""

from __future__ import annotations

import json
from pathlib import Path

from package_helpers import write_expert

from expert_cli.core import paths
from expert_cli.packages.build import build_package


def test_verify_package_and_installed_expert(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    package = build_package(write_expert(tmp_path / "e", tiny_adapter), tmp_path).path
    unsigned = cli("verify", package)
    assert unsigned.exit_code == 1 and "is not signed" in unsigned.stderr
    pair = json.loads(cli("keygen", "--json").stdout)
    cli("sign", package)
    cli("trust", "add", pair["public_key"])
    result = cli("verify", package, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["signature_valid"] and document["trust"] == "trusted" and document["sidecar"] == "ok"
    assert document["files_checked"] == 6
    cli("install", package)
    installed = cli("verify", "demo", "--json")
    assert installed.exit_code == 0 and json.loads(installed.stdout)["kind"] == "installed"
    (paths.install_dir("expert-demo", "0.1.0") / "grammar.gbnf").write_text("root ::= \"evil\"\n")
    tampered = cli("verify", "demo")
    assert tampered.exit_code == 1 and "`grammar.gbnf` in `expert-demo@0.1.0` does not match" in tampered.stderr


def test_a_folder_or_a_missing_file_is_not_taken_for_an_expert_name(cli, tmp_path: Path) -> None:
    folder = cli("verify", tmp_path)
    assert folder.exit_code == 2 and folder.stdout == ""
    assert folder.stderr.splitlines() == [
        f"error: `{tmp_path}` is a folder; `verify` checks a `.expert` file or an installed expert",
        f"hint: check an expert folder with `expert-cli validate {tmp_path}`"]
    missing = cli("verify", tmp_path / "gone.expert")
    assert missing.exit_code == 1 and missing.stderr.startswith(f"error: no package at `{tmp_path / 'gone.expert'}`")
