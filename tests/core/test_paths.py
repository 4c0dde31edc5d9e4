"""`EXPERT_HOME` is read on every call, never frozen at import; every path hangs off it."""

from __future__ import annotations

from pathlib import Path

import pytest

from expert_cli.core import paths


def test_expert_home_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EXPERT_HOME", str(tmp_path / "one"))
    assert paths.expert_home() == tmp_path / "one"
    monkeypatch.setenv("EXPERT_HOME", str(tmp_path / "two"))
    assert paths.expert_home() == tmp_path / "two"
    assert paths.registry_path() == tmp_path / "two" / "expert-registry.json"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_default_is_dot_expert_in_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value):
    monkeypatch.setenv("HOME", str(tmp_path))
    if value is None:
        monkeypatch.delenv("EXPERT_HOME", raising=False)
    else:
        monkeypatch.setenv("EXPERT_HOME", value)
    assert paths.expert_home() == tmp_path / ".expert"


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("EXPERT_HOME", "~/experts-home")
    assert paths.expert_home() == tmp_path / "experts-home"


def test_every_location_is_under_expert_home(expert_home: Path):
    assert paths.registry_path() == expert_home / "expert-registry.json"
    assert paths.experts_dir() == expert_home / "experts"
    assert paths.install_dir("expert-sql", "0.3.0") == expert_home / "experts" / "expert-sql" / "0.3.0"
    assert paths.keys_dir() == expert_home / "keys"
    assert paths.trusted_keys_dir() == expert_home / "trusted-keys"
    assert paths.cache_dir() == expert_home / "cache"
    assert paths.models_dir() == expert_home / "models"
    assert paths.tmp_dir() == expert_home / "tmp"


def test_asking_for_a_path_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EXPERT_HOME", str(tmp_path / "fresh"))
    for location in (paths.registry_path, paths.experts_dir, paths.keys_dir, paths.cache_dir, paths.tmp_dir):
        location()
    assert not (tmp_path / "fresh").exists()
