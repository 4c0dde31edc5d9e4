"""`expert-cli uninstall NAME[@VERSION]`."""

from __future__ import annotations

import json
from pathlib import Path

from package_helpers import tree, write_expert

from expert_cli.core import paths


def test_uninstall_version_then_all(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    for version in ("0.1.0", "0.2.0", "0.3.0"):
        assert cli("install", write_expert(tmp_path / version, tiny_adapter, version=version, rows=0),
                   "--allow-unsigned").exit_code == 0
    one = cli("uninstall", "demo@0.2.0", "--json")
    assert one.exit_code == 0
    assert [r["version"] for r in json.loads(one.stdout)["removed"]] == ["0.2.0"]
    assert tree(paths.experts_dir() / "expert-demo")[:2] == ["0.1.0", "0.1.0/LICENSE"]
    rest = cli("uninstall", "expert-demo")
    assert rest.exit_code == 0 and "uninstalled expert-demo@0.3.0, expert-demo@0.1.0" in rest.stderr
    assert tree(paths.experts_dir()) == [] and json.loads(cli("list", "--json").stdout) == []


def test_uninstall_unknown_lists_installed(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    cli("install", write_expert(tmp_path / "e", tiny_adapter, rows=0), "--allow-unsigned")
    result = cli("uninstall", "sql")
    assert result.exit_code == 1
    assert "error: `expert-sql` is not installed (installed: `expert-demo@0.1.0`)" in result.stderr


def test_uninstall_when_the_folder_is_already_gone(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    import shutil

    cli("install", write_expert(tmp_path / "e", tiny_adapter, rows=0), "--allow-unsigned")
    shutil.rmtree(paths.install_dir("expert-demo", "0.1.0"))
    result = cli("uninstall", "demo", "--json")  # no "lies outside the install folder" warning for it
    assert result.exit_code == 0 and json.loads(result.stdout)["kept_files"] == []
    assert json.loads(cli("list", "--json").stdout) == []
