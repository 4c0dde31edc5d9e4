"""build_package: layout, naming, reproducibility, the packaged manifest, weights lookup, exemplars."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from package_helpers import BASE, sha256, write_expert

from expert_cli.core.errors import ManifestError, PackageError, UsageError
from expert_cli.manifest.exemplars import extract_user_prompt, sample_routing_exemplars
from expert_cli.manifest.model import load_manifest
from expert_cli.packages.build import build_package, package_file_name

FIXTURE_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hivellm" / "datasets"


def _names(package: Path) -> list[str]:
    with tarfile.open(package) as tar:
        return tar.getnames()


def _manifest(package: Path) -> dict:
    with tarfile.open(package) as tar:
        return json.loads(tar.extractfile("manifest.json").read())


def test_package_layout_name_and_sidecar(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter, with_tests=True)
    result = build_package(expert, tmp_path, include_tests=True)
    assert result.path.name == "expert-demo-tiny-qwen3.v0.1.0.expert"
    assert _names(result.path) == ["manifest.json", "LICENSE", "README.md", "adapter_config.json",
                                   "adapter_model.safetensors", "grammar.gbnf", "routing_exemplars.json",
                                   "tests/test_cases.json"]
    assert result.sidecar.read_text() == f"{sha256(result.path)}  {result.path.name}\n"
    assert result.weights_dir == expert / "weights" / "tiny-qwen3" / "adapter"


def test_packaged_manifest_is_the_authors_plus_files(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter)
    original = json.loads((expert / "manifest.json").read_text())
    packaged = _manifest(build_package(expert, tmp_path).path)
    files = packaged.pop("files")
    recorded = packaged["base_models"][0].pop("sha256")
    assert packaged == original  # unknown keys, _comment and quality_metrics survive untouched
    assert recorded == builtin_weights_fingerprint()  # the base the adapter goes with, by its weights
    assert files["adapter_model.safetensors"] == sha256(tiny_adapter / "adapter_model.safetensors")
    assert set(files) == {"LICENSE", "README.md", "adapter_config.json", "adapter_model.safetensors",
                          "grammar.gbnf", "routing_exemplars.json"}


def builtin_weights_fingerprint() -> str:
    """``sha256sum`` of the built-in base's weight files, hashed again: the fingerprint, computed here."""
    from expert_cli.models.resolve import resolve_base_model

    folder = resolve_base_model(BASE)
    lines = "".join(f"{sha256(path)}  {path.name}\n" for path in sorted(folder.glob("*.safetensors")))
    return hashlib.sha256(lines.encode()).hexdigest()


def test_a_base_fingerprint_the_author_wrote_is_kept_and_an_unknown_base_gets_none(tiny_adapter: Path,
                                                                                   tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter, models=(BASE, "Org/not-in-any-cache"))
    data = json.loads((expert / "manifest.json").read_text())
    data["base_models"][0]["sha256"] = "f" * 64
    (expert / "manifest.json").write_text(json.dumps(data))
    assert _manifest(build_package(expert, tmp_path, model=BASE).path)["base_models"][0]["sha256"] == "f" * 64
    unknown = _manifest(build_package(expert, tmp_path, model="Org/not-in-any-cache").path)["base_models"][0]
    assert "sha256" not in unknown


def test_packaging_twice_gives_identical_bytes(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter)
    first = build_package(expert, tmp_path / "a.expert")
    (expert / "LICENSE").touch()
    second = build_package(expert, tmp_path / "b.expert")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256


def test_v2_with_two_models_needs_model_and_keeps_only_that_one(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter, models=[BASE, "Qwen/Qwen3-0.6B"])
    with pytest.raises(UsageError, match="choose one"):
        build_package(expert, tmp_path)
    result = build_package(expert, tmp_path, model="Qwen/Qwen3-0.6B")
    assert result.path.name == "expert-demo-qwen3-0-6b.v0.1.0.expert"
    assert [m["name"] for m in _manifest(result.path)["base_models"]] == ["Qwen/Qwen3-0.6B"]
    with pytest.raises(UsageError, match="no base model `llama`"):
        build_package(expert, tmp_path, model="llama")


def test_v1_manifest_packages_weights_from_the_expert_root(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter, schema="1.0", layout="root")
    result = build_package(expert, tmp_path)
    assert result.weights_dir == expert
    assert _manifest(result.path)["base_model"] == {"name": BASE, "sha256": builtin_weights_fingerprint()}


def test_packaging_checkpoint_is_honoured(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter)
    data = json.loads((expert / "manifest.json").read_text())
    data["training"]["packaging_checkpoint"] = "checkpoint-7"
    (expert / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(PackageError, match="checkpoint-7"):  # never silently another adapter
        build_package(expert, tmp_path)
    checkpoint = expert / "weights" / "tiny-qwen3" / "checkpoints" / "checkpoint-7"
    (expert / "weights" / "tiny-qwen3" / "adapter").rename(checkpoint.parent.mkdir(parents=True) or checkpoint)
    assert build_package(expert, tmp_path).weights_dir == checkpoint


def test_missing_weights_is_a_clear_error(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter)
    (expert / "weights" / "tiny-qwen3" / "adapter" / "adapter_model.safetensors").unlink()
    with pytest.raises(PackageError) as info:
        build_package(expert, tmp_path)
    assert "no trained adapter" in info.value.message and "expert-cli train" in info.value.hint


def test_manifest_path_outside_the_expert_is_refused(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter)
    (tmp_path / "secret.gbnf").write_text("root ::= x")
    data = json.loads((expert / "manifest.json").read_text())
    data["training"]["decoding"] = {"grammar_file": "../secret.gbnf"}
    (expert / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="outside its expert folder"):
        build_package(expert, tmp_path)


def test_routing_exemplars_are_deterministic_and_capped(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter, rows=300)
    manifest = load_manifest(expert)
    first = sample_routing_exemplars(manifest)
    assert len(first) == 50 and first == sample_routing_exemplars(manifest)
    assert all(p.startswith("expert-demo question ") for p in first)
    with tarfile.open(build_package(expert, tmp_path).path) as tar:
        assert json.loads(tar.extractfile("routing_exemplars.json").read()) == first


def test_no_dataset_means_no_exemplars_file(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter, rows=0)
    result = build_package(expert, tmp_path)
    assert result.exemplars == 0 and "routing_exemplars.json" not in _names(result.path)


@pytest.mark.parametrize("row, prompt", [
    ({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi there"}]}, "s\n\nhi there"),
    ({"messages": [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "x"}]}, "hi there"),
    ({"prompt": "list users", "completion": "SELECT"}, "list users"),
    ({"instruction": "Translate", "input": "hello", "output": "ola"}, "Translate\nhello"),
    ({"text": "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nshow tables<|im_end|>\n"
              "<|im_start|>assistant\nok<|im_end|>"}, "show tables"),
    ({"text": "<|system|>\nS\n<|end|>\n<|user|>\nDefine schema\n<|end|>\n<|assistant|>\n{}"}, "Define schema"),
    ({"task": "t", "input": {"instruction": "generic", "description": "blog post schema"}}, "blog post schema"),
    ({"text": "no user part here"}, None),
    ({"other": 1}, None),
])
def test_user_prompt_formats(row: dict, prompt: str | None) -> None:
    assert extract_user_prompt(row) == prompt


@pytest.mark.parametrize("file_name", ["expert-json-text_to_schema-test.chatml.jsonl",
                                       "expert-json-text_to_schema-test.multitask.jsonl"])
def test_exemplars_from_the_original_datasets(file_name: str, tmp_path: Path, fixtures_dir: Path) -> None:
    assert (FIXTURE_DATASETS / file_name).is_file()  # fixtures_dir skips locally without them, fails in CI
    data = {"name": "expert-json", "version": "0.1.0", "base_models": [{"name": BASE, "adapters": [
        {"type": "lora", "target_modules": ["q_proj"], "r": 2, "alpha": 4}]}],
        "training": {"dataset": {"path": str(FIXTURE_DATASETS / file_name)}}}
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    prompts = sample_routing_exemplars(load_manifest(tmp_path), limit=10)
    assert len(prompts) == 5  # every row of the 5-row sample, each with a distinct prompt
    assert all("schema" in p.lower() and "<|" not in p for p in prompts)


def test_package_file_name_uses_the_model_slug() -> None:
    assert package_file_name("expert-sql", "F:/models/Qwen3-0.6B", "0.3.0") == "expert-sql-qwen3-0-6b.v0.3.0.expert"


def test_a_real_manifest_stays_schema_valid_after_package_and_sign(tiny_adapter: Path, tmp_path: Path,
                                                                     fixtures_dir: Path) -> None:
    import shutil

    from expert_cli.packages.signer import sign_package
    from expert_cli.packages.signing import generate_keypair
    from expert_cli.packages.verify import validate_package

    expert = tmp_path / "expert-sql"
    expert.mkdir()
    shutil.copyfile(fixtures_dir / "expert-sql-manifest.json", expert / "manifest.json")
    shutil.copyfile(fixtures_dir / "expert-sql-grammar.gbnf", expert / "grammar.gbnf")
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copyfile(tiny_adapter / name, expert / name)
    package = build_package(expert, tmp_path).path
    assert package.name == "expert-sql-qwen3-0-6b.v0.3.0.expert"
    sign_package(package, generate_keypair(tmp_path / "k.pem").private_key)
    report = validate_package(package, strict=True)
    checks = {c.name: c.status for c in report.checks}
    assert checks["JSON Schema (strict)"] == "pass", [str(p) for c in report.checks for p in c.problems]
    assert checks["file hashes"] == "pass" and checks["signature"] == "warn"  # valid, but the key is not trusted
