"""GGUF import: a tiny GGUF written with the ``gguf`` package's writer becomes a model folder in the store
that gives the same logits as the model it came from; broken files and clashes give clean errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from gguf_files import build_tiny_llama, write_gguf

from expert_cli.core.errors import ModelImportError, ModelNotFoundError, UsageError
from expert_cli.models.gguf import import_gguf
from expert_cli.models.resolve import resolve_base_model, verify_model_folder

IDS = [[5, 6, 7, 8, 9, 10, 11, 12]]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def llama_gguf(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gguf(tiny_llama, tmp_path_factory.mktemp("gguf") / "Tiny-Llama.F32.gguf")


def load(folder: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).eval()


def logits(folder: Path):
    with torch.inference_mode():
        return load(folder)(torch.tensor(IDS)).logits


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
def test_an_imported_gguf_gives_the_logits_of_the_model_it_came_from(kind, tiny_model, tiny_llama, tmp_path,
                                                                      expert_home):
    source = tiny_model if kind == "qwen3" else tiny_llama
    info = import_gguf(write_gguf(source, tmp_path / f"{kind}.gguf"), f"tiny-{kind}")
    folder = expert_home / "models" / f"tiny-{kind}"
    assert resolve_base_model(f"tiny-{kind}") == folder
    assert torch.allclose(logits(folder), logits(source), atol=1e-6)
    assert info.architecture == kind
    assert info.parameters == sum(p.numel() for p in load(source).parameters())


def test_the_folder_is_plain_safetensors_with_tokenizer_template_and_checksums(llama_gguf, tiny_llama, expert_home):
    from transformers import AutoTokenizer

    info = import_gguf(llama_gguf, "tiny-llama")
    folder = expert_home / "models" / "tiny-llama"
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.gguf"))
    verify_model_folder(folder)  # every file listed in checksums.json, none changed
    original, imported = AutoTokenizer.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(folder)
    text = "SELECT name FROM users WHERE age > 30;<|im_end|>"
    assert imported(text).input_ids == original(text).input_ids
    assert imported.chat_template == original.chat_template and imported.eos_token == "<|im_end|>"
    recorded = json.loads((folder / "expert-model.json").read_text())
    assert recorded["source_sha256"] == hashlib.sha256(llama_gguf.read_bytes()).hexdigest()
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert info.fingerprint == hashlib.sha256(f"{weights}  model.safetensors\n".encode()).hexdigest()


def test_bf16_halves_the_weights(llama_gguf, expert_home):
    info = import_gguf(llama_gguf, "tiny-bf16", dtype="bf16")
    config = json.loads((expert_home / "models" / "tiny-bf16" / "config.json").read_text())
    assert info.dtype == "bfloat16" and config["dtype"] == "bfloat16"


@pytest.mark.parametrize("damage", ["truncated", "header-only", "not-gguf", "empty"])
def test_a_corrupt_or_truncated_gguf_is_refused_cleanly(damage, llama_gguf, tmp_path, expert_home):
    data = llama_gguf.read_bytes()
    broken = {"truncated": data[: len(data) * 2 // 3], "header-only": data[:100],
              "not-gguf": b"PK\x03\x04 not a model" * 64, "empty": b""}[damage]
    path = tmp_path / "broken.gguf"
    path.write_bytes(broken)
    with pytest.raises(ModelImportError, match="is not a readable GGUF file") as caught:
        import_gguf(path, "broken")
    assert "download the file again" in caught.value.hint
    assert not (expert_home / "models" / "broken").exists()
    assert list((expert_home / "tmp").glob("*")) == []  # no staging folder left behind


def test_an_unsupported_architecture_names_the_supported_ones(tiny_llama, tmp_path):
    path = write_gguf(tiny_llama, tmp_path / "rwkv.gguf", architecture="rwkv7")
    with pytest.raises(ModelImportError, match="`rwkv7` model, which cannot be converted") as caught:
        import_gguf(path, "rwkv")
    assert "llama" in caught.value.hint and "qwen3" in caught.value.hint


def test_a_name_clash_is_refused_before_any_work(llama_gguf, expert_home):
    import_gguf(llama_gguf, "tiny-llama")
    before = (expert_home / "models" / "tiny-llama" / "expert-model.json").read_text()
    with pytest.raises(UsageError, match="already stored") as caught:
        import_gguf(llama_gguf, "tiny-llama")
    assert "expert-cli model rm tiny-llama" in caught.value.hint
    assert (expert_home / "models" / "tiny-llama" / "expert-model.json").read_text() == before


@pytest.mark.parametrize("name", ["Bad Name", "../escape", "builtin:x", "a/b", ""])
def test_invalid_names_are_usage_errors(name, llama_gguf):
    with pytest.raises(UsageError, match="not a valid model name"):
        import_gguf(llama_gguf, name)


def test_a_missing_file_is_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        import_gguf(tmp_path / "nothing.gguf", "nothing")


def test_an_imported_name_wins_over_a_hub_id_of_the_same_spelling(llama_gguf, expert_home):
    import_gguf(llama_gguf, "gpt2")
    assert resolve_base_model("gpt2") == expert_home / "models" / "gpt2"
