"""The registry: grouped shape, semver order, legacy load, corrupt files, atomic writes and the lock."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from expert_cli.core import paths
from expert_cli.core.errors import NotInstalledError, RegistryError
from expert_cli.packages.registry import (
    InstalledExpert,
    read_registry,
    registry_lock,
    registry_transaction,
)


def entry(name: str = "expert-sql", version: str = "0.3.0", **fields) -> InstalledExpert:
    defaults = {"base_model": "Qwen/Qwen3-0.6B", "path": f"/x/{name}/{version}", "source": "file.expert",
                "installed_at": "2025-01-02T03:04:05.000000Z"}
    return InstalledExpert(name=name, version=version, **{**defaults, **fields})


def stored() -> dict:
    return json.loads(paths.registry_path().read_text(encoding="utf-8"))


def leftovers() -> list[str]:
    """Anything in the registry folder besides the registry and its lock (temp files, backups)."""
    keep = {paths.REGISTRY_FILE, paths.REGISTRY_FILE + ".lock"}
    return sorted(p.name for p in paths.expert_home().iterdir() if p.name not in keep)


# -- add / replace / remove --------------------------------------------------------------------------------------
def test_missing_file_is_an_empty_registry():
    assert read_registry().experts() == []
    assert not paths.registry_path().exists()


def test_add_get_and_save():
    with registry_transaction() as registry:
        registry.add(entry())
    loaded = read_registry().get("expert-sql")
    assert loaded == entry()
    assert stored()["experts"] == [{"name": "expert-sql", "versions": [entry().version_dict()]}]
    assert stored()["version"] == "1.0" and stored()["last_updated"]


def test_add_same_version_replaces_it():
    with registry_transaction() as registry:
        registry.add(entry(path="/old"))
    with registry_transaction() as registry:
        registry.add(entry(path="/new"))
    assert [(e.version, e.path) for e in read_registry().experts()] == [("0.3.0", "/new")]


def test_same_version_of_another_expert_is_not_replaced():
    with registry_transaction() as registry:
        registry.add(entry("expert-sql", "1.0.0"))
        registry.add(entry("expert-neo4j", "1.0.0"))
    assert [e.spec for e in read_registry().experts()] == ["expert-neo4j@1.0.0", "expert-sql@1.0.0"]


def test_remove_one_version_then_all():
    with registry_transaction() as registry:
        for version in ("0.2.1", "0.3.0"):
            registry.add(entry(version=version))
        registry.add(entry("expert-neo4j", "1.0.0"))
    with registry_transaction() as registry:
        assert [e.version for e in registry.remove("expert-sql", "0.2.1")] == ["0.2.1"]
    assert [e.spec for e in read_registry().experts()] == ["expert-neo4j@1.0.0", "expert-sql@0.3.0"]
    with registry_transaction() as registry:
        assert [e.version for e in registry.remove("expert-sql")] == ["0.3.0"]
    assert [record["name"] for record in stored()["experts"]] == ["expert-neo4j"]  # no empty record left


def test_remove_or_get_a_missing_expert_lists_what_is_installed():
    with registry_transaction() as registry:
        registry.add(entry())
    registry = read_registry()
    for call in (lambda: registry.get("expert-json"), lambda: registry.remove("expert-json"),
                 lambda: registry.remove("expert-sql", "9.9.9")):
        with pytest.raises(NotInstalledError) as caught:
            call()
        assert "`expert-sql@0.3.0`" in caught.value.message
        assert caught.value.hint
    assert registry.find("expert-json") is None and registry.find("expert-sql", "9.9.9") is None


def test_a_failing_transaction_saves_nothing():
    with registry_transaction() as registry:
        registry.add(entry())
    before = paths.registry_path().read_bytes()
    with pytest.raises(RuntimeError), registry_transaction() as registry:
        registry.add(entry(version="9.0.0"))
        raise RuntimeError("boom")
    assert paths.registry_path().read_bytes() == before


# -- version order ---------------------------------------------------------------------------------------------
def test_versions_newest_first_by_semver():
    shuffled = ["0.2.1", "1.0.0-alpha", "0.10.0", "1.0.0", "0.3.0", "1.0.0-alpha.10", "0.9.0", "1.0.0-rc.1",
                "1.0.0-alpha.2"]
    with registry_transaction() as registry:
        for version in shuffled:
            registry.add(entry(version=version))
    expected = ["1.0.0", "1.0.0-rc.1", "1.0.0-alpha.10", "1.0.0-alpha.2", "1.0.0-alpha", "0.10.0", "0.9.0",
                "0.3.0", "0.2.1"]
    assert [e.version for e in read_registry().experts()] == expected
    assert [v["version"] for v in stored()["experts"][0]["versions"]] == expected
    assert read_registry().get("expert-sql").version == "1.0.0"  # latest = first


def test_experts_sorted_by_name_then_newest_version():
    with registry_transaction() as registry:
        for name, version in [("expert-sql", "0.2.1"), ("expert-neo4j", "0.1.0"), ("expert-sql", "0.3.0"),
                              ("expert-json", "2.0.0")]:
            registry.add(entry(name, version))
    assert [e.spec for e in read_registry().experts()] == [
        "expert-json@2.0.0", "expert-neo4j@0.1.0", "expert-sql@0.3.0", "expert-sql@0.2.1",
    ]


# -- shapes: legacy, unknown keys ------------------------------------------------------------------------------
def write_raw(document) -> bytes:
    path = paths.registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = document if isinstance(document, str) else json.dumps(document, indent=4)
    path.write_text(text, encoding="utf-8")
    return path.read_bytes()


def test_legacy_flat_shape_loads_and_is_written_back_grouped():
    write_raw({"experts": [
        {"name": "expert-sql", "version": "0.2.1", "base_model": "Qwen3-0.6B", "path": "/a", "source": "s1",
         "installed_at": "2024-01-01T00:00:00Z"},
        {"name": "expert-sql", "version": "0.3.0", "base_model": "Qwen3-0.6B", "path": "/b", "source": "s2",
         "installed_at": "2024-02-01T00:00:00Z"},
        {"name": "expert-neo4j", "version": "1.0.0", "path": "/c"},
    ]})
    assert [e.spec for e in read_registry().experts()] == ["expert-neo4j@1.0.0", "expert-sql@0.3.0", "expert-sql@0.2.1"]
    with registry_transaction():
        pass
    document = stored()
    assert [r["name"] for r in document["experts"]] == ["expert-neo4j", "expert-sql"]
    sql = document["experts"][1]
    assert set(sql) == {"name", "versions"}
    assert [(v["version"], v["path"], v["source"]) for v in sql["versions"]] == [("0.3.0", "/b", "s2"),
                                                                                  ("0.2.1", "/a", "s1")]
    assert all("name" not in v for v in sql["versions"])


def test_null_fields_read_as_empty():
    write_raw({"experts": [{"name": "expert-sql", "versions": [
        {"version": "0.3.0", "path": None, "adapters": None, "capabilities": None, "dependencies": None}]}]})
    loaded = read_registry().get("expert-sql")
    assert (loaded.path, loaded.adapters, loaded.capabilities, loaded.dependencies) == ("", [], [], [])


def test_unknown_keys_are_kept():
    write_raw({
        "version": "1.0", "mirror": {"url": "https://example.org"},
        "base_models": [{"name": "Qwen3-0.6B", "path": "/models/q", "sha256": None}],
        "experts": [{"name": "expert-sql", "versions": [
            {"version": "0.3.0", "path": "/p", "signature_fingerprint": "ab12", "pinned": True}]}],
    })
    loaded = read_registry().get("expert-sql")
    assert loaded.extra == {"signature_fingerprint": "ab12", "pinned": True}
    with registry_transaction() as registry:
        registry.add(entry("expert-neo4j", "1.0.0"))
    document = stored()
    assert document["mirror"] == {"url": "https://example.org"}
    assert document["base_models"] == [{"name": "Qwen3-0.6B", "path": "/models/q", "sha256": None}]
    sql_version = document["experts"][1]["versions"][0]
    assert sql_version["signature_fingerprint"] == "ab12" and sql_version["pinned"] is True
    assert entry().to_dict()["name"] == "expert-sql"


# -- corrupt files are reported and never overwritten ------------------------------------------------------------
CORRUPT = {
    "bad-json": '{"experts": [',
    "empty-file": "",
    "a-list": "[]",
    "experts-not-a-list": '{"experts": {"expert-sql": {}}}',
    "record-without-name": '{"experts": [{"versions": []}]}',
    "record-not-an-object": '{"experts": [1]}',
    "versions-not-a-list": '{"experts": [{"name": "expert-sql", "versions": "0.3.0"}]}',
    "version-not-an-object": '{"experts": [{"name": "expert-sql", "versions": ["0.3.0"]}]}',
    "capabilities-not-a-list": '{"experts": [{"name": "expert-sql", "versions": [{"version": "0.3.0", "capabilities": 5}]}]}',
    "adapters-not-a-list": '{"experts": [{"name": "expert-sql", "versions": [{"version": "0.3.0", "adapters": "x"}]}]}',
    "path-not-a-string": '{"experts": [{"name": "expert-sql", "versions": [{"version": "0.3.0", "path": ["a"]}]}]}',
    "version-missing": '{"experts": [{"name": "expert-sql", "versions": [{"path": "/p"}]}]}',
    # found by the fuzz suite (tests/fuzz): each crashed `list`, `list -v` or `uninstall` with a traceback
    "capability-not-a-string": '{"experts": [{"name": "e", "versions": [{"version": "1.0.0", "capabilities": [5]}]}]}',
    "dependency-not-an-object": '{"experts": [{"name": "e", "versions": [{"version": "1.0.0", "dependencies": [5]}]}]}',
    "huge-integer": '{"experts": [], "version": ' + "9" * 5000 + "}",
    "nan": '{"experts": [{"name": "e", "versions": [{"version": NaN}]}]}',
    "deep-nesting": '{"experts": ' + "[" * 5000 + "]" * 5000 + "}",
    "lone-surrogate": '{"experts": [{"name": "\\ud800", "versions": [{"version": "1.0.0"}]}]}',
    "publisher-keys-not-strings": '{"experts": [], "publisher_keys": {"e": 5}}',
}


@pytest.mark.parametrize("text", CORRUPT.values(), ids=CORRUPT.keys())
def test_corrupt_registry_is_an_error_and_left_byte_for_byte(text: str):
    before = write_raw(text)
    with pytest.raises(RegistryError) as caught:
        read_registry()
    assert str(paths.registry_path()) in caught.value.message and caught.value.hint
    with pytest.raises(RegistryError), registry_transaction() as registry:
        registry.add(entry())  # pragma: no cover - never reached
    assert paths.registry_path().read_bytes() == before
    assert leftovers() == []


def test_bad_json_error_names_line_and_column():
    write_raw('{\n  "experts": [,]\n}')
    with pytest.raises(RegistryError, match=r"line 2, column"):
        read_registry()


# -- atomic writes ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("crash_in", ["replace", "fsync"])
def test_a_crash_mid_write_leaves_the_old_file_and_no_temp_files(monkeypatch: pytest.MonkeyPatch, crash_in: str):
    with registry_transaction() as registry:
        registry.add(entry())
    before = paths.registry_path().read_bytes()

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, crash_in, crash)
        with pytest.raises(RegistryError, match="cannot write the registry"), registry_transaction() as registry:
            registry.add(entry(version="9.9.9"))
    assert paths.registry_path().read_bytes() == before
    assert leftovers() == []


def test_the_file_is_replaced_not_rewritten_in_place():
    with registry_transaction() as registry:
        registry.add(entry())
    inode = paths.registry_path().stat().st_ino
    with registry_transaction() as registry:
        registry.add(entry(version="0.4.0"))
    assert paths.registry_path().stat().st_ino != inode
    assert leftovers() == []


# -- the lock ----------------------------------------------------------------------------------------------------
def test_a_thread_holding_the_lock_blocks_a_transaction():
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with registry_lock():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(RegistryError, match="locked") as caught, registry_transaction(timeout=0.2):
            pass  # pragma: no cover - never reached
        assert caught.value.hint
    finally:
        release.set()
        holder.join(10)
    with registry_transaction(timeout=0.2) as registry:  # free again once released
        registry.add(entry())
    assert read_registry().get("expert-sql")


def test_another_process_holding_the_lock_blocks_a_transaction():
    script = ("import sys\nfrom expert_cli.packages.registry import registry_lock\n"
              "with registry_lock():\n    print('locked', flush=True)\n    sys.stdin.readline()\n")
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=os.environ.copy())
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RegistryError, match="locked"), registry_transaction(timeout=0.2):
            pass  # pragma: no cover - never reached
    finally:
        holder.communicate("\n", timeout=10)
    assert holder.returncode == 0
    assert not paths.registry_path().exists()


def add_in_a_process(name: str, versions: list[str]) -> None:
    for version in versions:
        with registry_transaction(timeout=30) as registry:
            registry.add(entry(name, version))


def test_concurrent_transactions_from_several_processes_keep_every_entry():
    context = multiprocessing.get_context("fork")
    names = [f"expert-p{index}" for index in range(8)]
    workers = [context.Process(target=add_in_a_process, args=(name, ["0.1.0", "0.2.0"])) for name in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0] * len(workers)
    assert sorted(e.spec for e in read_registry().experts()) == sorted(
        f"{name}@{version}" for name in names for version in ("0.1.0", "0.2.0"))
    assert leftovers() == []


def test_registry_path_follows_expert_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EXPERT_HOME", str(tmp_path / "other"))
    with registry_transaction() as registry:
        registry.add(entry())
    assert (tmp_path / "other" / "expert-registry.json").is_file()


def test_a_registry_that_is_not_utf8_is_corrupt_and_left_alone():
    paths.registry_path().parent.mkdir(parents=True, exist_ok=True)
    paths.registry_path().write_bytes(b"\xff\xfe{}")
    with pytest.raises(RegistryError, match="is corrupt: not UTF-8"):
        read_registry()
    assert paths.registry_path().read_bytes() == b"\xff\xfe{}"


def test_an_unusable_home_cannot_be_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    monkeypatch.setenv("EXPERT_HOME", str(home))
    with pytest.raises(RegistryError, match="cannot lock the registry") as caught, registry_transaction():
        pass
    assert "EXPERT_HOME" in (caught.value.hint or "")
