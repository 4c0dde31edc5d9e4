"""`model list`'s catalog: the Hugging Face cache's models, with fingerprints read from blob names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from expert_cli.models.catalog import count_parameters, hf_cache_models
from expert_cli.models.pull import default_name
from expert_cli.models.store import weights_fingerprint


@pytest.fixture
def hf_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    return cache


def cache_model(cache: Path, repo: str, files: dict[str, bytes]) -> Path:
    """A model in the HF cache's layout: blobs named by their SHA-256, snapshot files linking to them."""
    root = cache / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    for name, data in files.items():
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(blob)
    return snapshot


def test_hf_cache_models_are_listed_with_the_fingerprint_of_their_weights(hf_cache, tiny_model):
    weights = (tiny_model / "model.safetensors").read_bytes()
    cache_model(hf_cache, "tiny/qwen3", {"config.json": (tiny_model / "config.json").read_bytes(),
                                         "model.safetensors": weights})
    cache_model(hf_cache, "some/dataset-like", {"README.md": b"no config"})
    [entry] = hf_cache_models(hf_cache)
    assert (entry.name, entry.kind, entry.architecture) == ("tiny/qwen3", "hf-cache", "qwen3")
    digest = hashlib.sha256(weights).hexdigest()
    assert entry.fingerprint == hashlib.sha256(f"{digest}  model.safetensors\n".encode()).hexdigest()
    assert entry.fingerprint == weights_fingerprint({"model.safetensors": digest, "config.json": "x" * 64})
    assert entry.source.startswith("hf:tiny/qwen3@0123456789ab")


def test_parameters_are_counted_from_the_safetensors_header(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert count_parameters(tiny_model) == sum(p.numel() for p in model.parameters())
    assert json.loads((tiny_model / "config.json").read_text())["tie_word_embeddings"] is True


@pytest.mark.parametrize(("file", "name"), [
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct"),
    ("qwen3-0.6b-q4_k_m.gguf", "qwen3-0.6b"),
    ("Llama 3.2 1B F16.gguf", "llama-3.2-1b-f16"),
    ("model.bf16.gguf", "model"),
])
def test_default_names_drop_the_quantization_suffix(file, name):
    assert default_name(Path(file)) == name
