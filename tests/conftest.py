"""Shared fixtures: an isolated EXPERT_HOME for every test, offline Hugging Face, and a tiny Qwen3."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The test models are tiny: thread start-up costs more than it saves, and CI has 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "hivellm"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def expert_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty EXPERT_HOME; nothing touches ~/.expert or the hub."""
    home = tmp_path_factory.mktemp("expert-home")
    monkeypatch.setenv("EXPERT_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("EXPERT_NO_PROGRESS", "1")
    monkeypatch.delenv("EXPERT_DEBUG", raising=False)
    return home


@pytest.fixture
def runner():
    """A Typer CliRunner; stdout and stderr are kept apart (``result.stdout`` / ``result.stderr``)."""
    from typer.testing import CliRunner

    return CliRunner()


@pytest.fixture
def cli(runner):
    """Invoke ``expert-cli`` with a list of arguments."""
    from expert_cli.cli import app

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Qwen3 (a few thousand parameters) with a ChatML tokenizer and chat template."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        if os.environ.get("CI"):  # CI has them: a missing folder there is a broken checkout, not a skip
            pytest.fail(f"shared fixtures not found at {FIXTURES}")
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real PEFT LoRA adapter for ``tiny_model`` (adapter_config.json + adapter_model.safetensors),
    randomly initialised so it changes the model's output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("tiny-adapter")
    get_peft_model(model, config).save_pretrained(out)
    return out
