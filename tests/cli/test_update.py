"""`expert-cli update`: only Git installs can be updated; the message says what to do otherwise."""

from __future__ import annotations

from pathlib import Path

from package_helpers import write_expert


def test_update_of_a_folder_install_is_an_error_with_a_hint(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    cli("install", write_expert(tmp_path / "e", tiny_adapter, rows=0))
    result = cli("update", "demo")
    assert result.exit_code == 1 and "not from Git" in result.stderr
    assert "hint: reinstall it with `expert-cli install <source> --force`" in result.stderr


def test_update_of_an_unknown_expert(cli) -> None:
    result = cli("update", "nothing")
    assert result.exit_code == 1 and "`expert-nothing` is not installed" in result.stderr
