"""The SDK: Expert.load from folders, packages and installed names; ExpertManager with LRU eviction."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytest.importorskip("torch")

from expert_factory import make_expert

from expert_cli.core.errors import (
    InferenceError,
    ManifestError,
    NotInstalledError,
    PackageError,
    SignatureError,
    UsageError,
)

GREEDY = {"temperature": 0, "max_tokens": 6}


@pytest.fixture(scope="module")
def experts(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sdk-experts")
    return {
        "a": make_expert(tiny_model, root / "a", "expert-a", "lora", 1),
        "b": make_expert(tiny_model, root / "b", "expert-b", "lora", 2, layout="dev"),
        "c": make_expert(tiny_model, root / "c", "expert-c", "ia3", 3),
    }


@pytest.fixture(autouse=True)
def fresh_pool(monkeypatch: pytest.MonkeyPatch):
    """Each test gets its own process-wide pool, so base loads can be counted."""
    from expert_cli.runtime import pool as runtime

    pool = runtime.BasePool()
    monkeypatch.setattr(runtime, "_DEFAULT_POOL", pool)
    return pool


def test_sdk_imports_without_the_ml_stack():
    code = ("import sys; from expert_cli import Expert, ExpertManager, Result; import expert_cli.sdk.expert; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'peft')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_expert_from_a_folder_generates_a_result(experts, fresh_pool):
    from expert_cli import Expert

    expert = Expert.load(experts["a"], device="cpu")
    result = expert.generate("List the users", schema="CREATE TABLE users (id INT)", **GREEDY)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["experts"] == ["expert-a@0.1.0"] and data["tokens"] == len(data["token_ids"]) > 0
    assert data["latency_s"] > 0 and data["finish_reason"] in ("stop", "stop_sequence", "length")
    assert expert.memory_bytes > 0 and expert.device == "cpu"
    expert.unload()
    with pytest.raises(InferenceError, match="unloaded"):
        expert.generate("again")
    Expert.load(experts["a"], device="cpu").unload()
    assert fresh_pool.load_count == 2  # nothing else held the base: it was freed, so it loads again


def test_expert_stream_and_batch(experts):
    from expert_cli import Expert

    expert = Expert.load(experts["b"], device="cpu")  # development layout: weights/<slug>/adapter
    single = [expert.generate(p, **GREEDY) for p in ("hi", "The quick brown fox")]
    batch = expert.generate_batch(["hi", "The quick brown fox"], **GREEDY)
    assert [r.token_ids for r in batch] == [r.token_ids for r in single]
    stream = expert.generate_stream("The quick brown fox", **GREEDY)
    assert "".join(stream) == stream.result.text == single[1].text


def test_expert_from_a_package_is_extracted_once_into_the_cache(experts, tmp_path, expert_home):
    from expert_cli import Expert

    package = tmp_path / "expert-a-tiny.v0.1.0.expert"
    with tarfile.open(package, "w:gz") as tar:
        for file in sorted(experts["a"].iterdir()):
            tar.add(file, arcname=file.name)
    with pytest.raises(SignatureError, match="is not signed"):  # the policy `install` applies (issue 16)
        Expert.load(package, device="cpu")
    first = Expert.load(package, device="cpu", allow_unsigned=True)
    cached = list((expert_home / "cache" / "packages").iterdir())
    assert len(cached) == 1 and len(cached[0].name) == 64 and first.bundle.folder == cached[0]
    second = Expert.load(package, device="cpu", allow_unsigned=True)
    assert second.bundle.folder == first.bundle.folder and second.base is first.base
    assert second.slot == first.slot  # the same files: one adapter slot, shared
    assert first.generate("hi", **GREEDY).token_ids == Expert.load(experts["a"], device="cpu").generate(
        "hi", **GREEDY).token_ids


def test_expert_by_installed_name(experts):
    from expert_cli import Expert
    from expert_cli.packages.registry import InstalledExpert, registry_transaction

    with registry_transaction() as registry:
        registry.add(InstalledExpert(name="expert-a", version="0.1.0", path=str(experts["a"])))
    assert Expert.load("a@0.1.0", device="cpu").name == "expert-a"
    with pytest.raises(NotInstalledError):
        Expert.load("nope", device="cpu")
    with pytest.raises(PackageError, match="no expert folder or package"):
        Expert.load("./missing/expert-x.expert", device="cpu")


def test_experts_share_one_base(experts, fresh_pool):
    from expert_cli import Expert

    loaded = [Expert.load(experts[k], device="cpu") for k in ("a", "b", "c")]
    assert len({id(e.base) for e in loaded}) == 1 and fresh_pool.load_count == 1
    assert set(loaded[0].base.adapters) == {"expert-a@0.1.0", "expert-b@0.1.0", "expert-c@0.1.0"}


def test_manager_lru_evicts_and_reloads_transparently(experts, tiny_model, fresh_pool):
    from expert_cli import ExpertManager

    manager = ExpertManager(max_loaded_experts=2, device="cpu")
    manager.load_expert("a", experts["a"])
    before = manager.generate("a", "hi", **GREEDY)
    manager.load_expert("b", experts["b"])
    manager.generate("a", "hi", **GREEDY)  # a is now the most recently used
    manager.load_expert("c", experts["c"])
    assert [info.name for info in manager.list_loaded_experts()] == ["a", "c"]  # b evicted
    manager.load_expert("b", experts["b"])
    assert [info.name for info in manager.list_loaded_experts()] == ["c", "b"]  # a evicted
    again = manager.generate("a", "hi", **GREEDY)  # reloaded on use, evicting c
    assert again.token_ids == before.token_ids
    assert [info.name for info in manager.list_loaded_experts()] == ["b", "a"]
    assert manager.loads == 5 and manager.evictions == 3 and fresh_pool.load_count == 1
    info = manager.list_loaded_experts()[-1].to_dict()
    assert info["base_model"] == str(tiny_model) and info["device"] == "cpu"
    assert info["memory_bytes"] > 0 and info["last_used"].endswith("Z")


def test_manager_composition_mixed_batch_and_unload(experts):
    from expert_cli import ExpertManager

    manager = ExpertManager(device="cpu")
    for key in ("a", "b"):
        manager.load_expert(key, experts[key])
    alone = manager.generate("a", "The quick", **GREEDY)
    both = manager.generate(["a", "b"], "The quick", **GREEDY)
    assert both.experts == ["expert-a@0.1.0", "expert-b@0.1.0"]
    rows = [["a"], ["b"], None, {"a": 1.0, "b": 0.5}]
    prompts = ["The quick", "hi", "hello", "SELECT"]
    mixed = manager.generate_batch(prompts, row_experts=rows, **GREEDY)
    singles = [manager.generate(r, p, **GREEDY) for r, p in zip(rows, prompts)]
    assert [m.token_ids for m in mixed] == [s.token_ids for s in singles]
    assert mixed[0].token_ids == alone.token_ids and mixed[2].experts == []
    assert both.token_ids != alone.token_ids or both.raw_text != alone.raw_text
    manager.unload_expert("a")
    with pytest.raises(InferenceError, match="`a` is not loaded"):
        manager.generate("a", "hi")
    with pytest.raises(UsageError, match="row_experts"):
        manager.generate_batch(["x"], row_experts=[["b"], ["b"]])


def test_experts_on_different_bases_each_get_their_own(experts, tiny_model, tmp_path, fresh_pool):
    from tiny_model import build_tiny_model

    from expert_cli import ExpertManager

    other_base = build_tiny_model(tmp_path / "other-base", seed=1)
    other = make_expert(other_base, tmp_path / "other", "expert-other", "lora", 9)
    manager = ExpertManager(device="cpu")
    manager.load_expert("a", experts["a"])
    manager.load_expert("other", other)
    assert fresh_pool.load_count == 2
    assert manager.generate("other", "hi", **GREEDY).base_model == str(other_base.resolve())
    with pytest.raises(InferenceError, match="different base models"):
        manager.generate(["a", "other"], "hi")


def test_a_failed_load_leaves_the_manager_unchanged(experts, tmp_path):
    from expert_cli import ExpertManager

    manager = ExpertManager(device="cpu")
    manager.load_expert("a", experts["a"])
    (tmp_path / "broken").mkdir()
    with pytest.raises(ManifestError, match="no manifest"):
        manager.load_expert("broken", tmp_path / "broken")
    assert [info.name for info in manager.list_loaded_experts()] == ["a"]
    with pytest.raises(InferenceError, match="`broken` is not loaded"):
        manager.generate("broken", "hi")


def test_soft_prompt_files_are_found_at_their_path_flattened_or_missing(tiny_model, tmp_path):
    from expert_cli.runtime.bundle import open_expert

    folder = make_expert(tiny_model, tmp_path / "styled", "expert-styled")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["soft_prompts"] = [{"name": "kept", "path": "soft_prompts/kept.pt", "tokens": 2},
                                {"name": "flat", "path": "soft_prompts/ts_style_48.bin", "tokens": 48},
                                {"name": "gone", "path": "soft_prompts/gone.pt", "tokens": 2}]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "soft_prompts").mkdir()
    (folder / "soft_prompts" / "kept.pt").write_bytes(b"x")
    (folder / "ts_style_48.bin").write_bytes(b"y")  # the original's v2 packages flatten the path
    bundle = open_expert(folder)
    assert bundle.soft_prompt_files == (folder / "soft_prompts" / "kept.pt", folder / "ts_style_48.bin")
