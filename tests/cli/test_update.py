"""`expert-cli update`: only Git installs can be updated; the message says what to do otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from package_helpers import BASE, write_expert


def test_update_of_a_folder_install_is_an_error_with_a_hint(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    cli("install", write_expert(tmp_path / "e", tiny_adapter, rows=0), "--allow-unsigned")
    result = cli("update", "demo")
    assert result.exit_code == 1 and "not from Git" in result.stderr
    assert "hint: reinstall it with `expert-cli install <source> --force`" in result.stderr


def test_update_of_an_unknown_expert(cli) -> None:
    result = cli("update", "nothing")
    assert result.exit_code == 1 and "`expert-nothing` is not installed" in result.stderr


def test_update_keeps_the_base_model_of_the_installed_copy(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = write_expert(tmp_path / "repo", tiny_adapter, models=[BASE, "Qwen/Qwen3-0.6B"], rows=0)
    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "v0.1.0"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    installed = cli("install", f"git+file://{repo}@main", "--model", "tiny-qwen3", "--allow-unsigned")
    assert installed.exit_code == 0, installed.stderr
    result = cli("update", "demo", "--allow-unsigned", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "up-to-date"
