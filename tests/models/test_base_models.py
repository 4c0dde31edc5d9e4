"""Base-model resolution (built-in, local folder, Hugging Face cache) and the shipped demo base itself."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from expert_cli.core.errors import ExpertError, ModelNotFoundError
from expert_cli.models import resolve as base_models
from expert_cli.models.resolve import (
    BUILTIN_PREFIX,
    builtin_models,
    is_builtin,
    resolve_base_model,
    verify_builtin,
    verify_model_folder,
)

TINY = "builtin:tiny-qwen3"
SHIPPED = Path(base_models.__file__).resolve().parent / "tiny-qwen3"


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point huggingface_hub at an empty cache (its constants are read when snapshot_download runs)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def tampered_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "tiny-qwen3"
    shutil.copytree(SHIPPED, copy)
    return copy


def test_builtin_models_lists_the_shipped_demo_base():
    models = builtin_models()
    assert models[TINY] == SHIPPED
    assert all(name.startswith(BUILTIN_PREFIX) for name in models)


def test_is_builtin_recognises_the_prefix_only():
    assert is_builtin(TINY)
    assert not is_builtin("Qwen/Qwen3-0.6B")
    assert not is_builtin("tiny-qwen3")


def test_resolve_builtin_gives_the_shipped_folder():
    folder = resolve_base_model(TINY)
    assert folder == SHIPPED
    assert (folder / "config.json").is_file()


def test_unknown_builtin_is_refused_naming_it_and_the_known_ones():
    with pytest.raises(ModelNotFoundError, match="builtin:nope") as info:
        resolve_base_model("builtin:nope")
    assert TINY in str(info.value)


def test_an_existing_local_folder_resolves_to_itself(tmp_path: Path):
    assert resolve_base_model(str(tmp_path)) == tmp_path


def test_a_relative_folder_named_like_a_hub_id_is_used_before_the_cache(tmp_path, monkeypatch):
    (tmp_path / "Qwen" / "Qwen3-0.6B").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve_base_model("Qwen/Qwen3-0.6B") == Path("Qwen/Qwen3-0.6B")


@pytest.mark.parametrize("missing", ["/no/such/model", "./models/Qwen3-0.6B", "~/no-such-model-dir",
                                     "F:/Node/hivellm/expert/models/Qwen3-0.6B", r"C:\models\Qwen3-0.6B",
                                     "a/b/c"])
def test_a_missing_local_path_is_refused_naming_it(missing: str, empty_hf_cache: Path):
    with pytest.raises(ModelNotFoundError, match="does not exist") as info:
        resolve_base_model(missing)
    assert missing in info.value.message


def test_a_hub_id_not_in_the_cache_names_the_download_command(empty_hf_cache: Path):
    with pytest.raises(ModelNotFoundError) as info:
        resolve_base_model("Qwen/Qwen3-0.6B")
    assert "`Qwen/Qwen3-0.6B`" in info.value.message
    assert "hf download Qwen/Qwen3-0.6B" in info.value.hint
    assert "HF_HUB_OFFLINE" in info.value.hint


def test_a_hub_id_in_the_cache_resolves_to_its_snapshot(empty_hf_cache: Path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = empty_hf_cache / "models--Qwen--Qwen3-0.6B"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    assert resolve_base_model("Qwen/Qwen3-0.6B").resolve() == snapshot.resolve()


def test_the_shipped_files_match_their_checksums():
    verify_builtin(TINY)


def test_the_recorded_sha256_of_the_weights_is_the_real_one():
    recorded = json.loads((SHIPPED / "checksums.json").read_text())["files"]
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
            "generation_config.json", "README.md"} <= set(recorded)
    weights = (SHIPPED / "model.safetensors").read_bytes()
    assert recorded["model.safetensors"] == hashlib.sha256(weights).hexdigest()


def test_a_changed_byte_in_the_weights_is_caught(tampered_copy: Path):
    weights = tampered_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ExpertError, match="model.safetensors"):
        verify_model_folder(tampered_copy)


def test_a_missing_file_is_caught(tampered_copy: Path):
    (tampered_copy / "tokenizer.json").unlink()
    with pytest.raises(ExpertError, match="tokenizer.json` is missing"):
        verify_model_folder(tampered_copy)


def test_an_added_file_is_caught(tampered_copy: Path):
    (tampered_copy / "modeling_evil.py").write_text("import os\n")
    with pytest.raises(ExpertError, match="modeling_evil.py` is not listed"):
        verify_model_folder(tampered_copy)


def test_verify_builtin_refuses_a_name_that_is_not_builtin():
    with pytest.raises(ModelNotFoundError):
        verify_builtin("Qwen/Qwen3-0.6B")


def test_resolution_imports_neither_torch_nor_the_hub():
    code = ("import sys; from expert_cli.models.resolve import resolve_base_model; "
            "resolve_base_model('builtin:tiny-qwen3'); "
            "print(sorted(m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def loaded_tiny():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_base_model(TINY)
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def test_the_shipped_model_is_a_small_qwen3(loaded_tiny):
    model, tokenizer = loaded_tiny
    assert model.config.model_type == "qwen3"
    assert model.config.tie_word_embeddings
    assert 500_000 < sum(p.numel() for p in model.parameters()) < 3_000_000
    assert model.config.vocab_size == len(tokenizer)


def test_the_tokenizer_has_single_chatml_and_think_tokens(loaded_tiny):
    _, tokenizer = loaded_tiny
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>"):
        assert tokenizer.encode(token, add_special_tokens=False) == [tokenizer.convert_tokens_to_ids(token)]
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"


def test_the_chat_template_renders_qwen3_style_prompts(loaded_tiny):
    _, tokenizer = loaded_tiny
    messages = [{"role": "system", "content": "Dialect: sql\nSchema:\nCREATE TABLE t (id INTEGER);"},
                {"role": "user", "content": "List the tables."}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                           enable_thinking=False)
    assert prompt == ("<|im_start|>system\nDialect: sql\nSchema:\nCREATE TABLE t (id INTEGER);<|im_end|>\n"
                      "<|im_start|>user\nList the tables.<|im_end|>\n"
                      "<|im_start|>assistant\n<think>\n\n</think>\n\n")
    thinking = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert thinking.endswith("<|im_start|>user\nList the tables.<|im_end|>\n<|im_start|>assistant\n")
    finished = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": "t"}], tokenize=False)
    assert finished.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\nt<|im_end|>\n")


def test_greedy_generation_closes_the_assistant_turn(loaded_tiny):
    import torch

    model, tokenizer = loaded_tiny
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           tokenize=False, add_generation_prompt=True, enable_thinking=False)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=40, do_sample=False)
    new_tokens = out[0, inputs["input_ids"].shape[1]:].tolist()
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in new_tokens
    assert tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


@pytest.mark.parametrize("document", ['["not", "a", "checksum", "list"]', '{"algorithm": "md5", "files": {"a": "b"}}',
                                      "{broken"])
def test_a_folder_without_a_usable_checksum_list_has_no_fingerprint(document, tmp_path):
    from expert_cli.models.resolve import base_fingerprint

    (tmp_path / "checksums.json").write_text(document)
    assert base_fingerprint(tmp_path) is None
    assert base_fingerprint(tmp_path / "missing") is None


def test_the_fingerprint_is_the_sha256sum_lines_of_the_weight_files(tmp_path):
    from expert_cli.models.resolve import base_fingerprint

    files = {"model.safetensors": "a" * 64, "config.json": "b" * 64, "model-2.safetensors": "c" * 64}
    (tmp_path / "checksums.json").write_text(json.dumps({"algorithm": "sha256", "files": files}))
    lines = f"{'c' * 64}  model-2.safetensors\n{'a' * 64}  model.safetensors\n"
    assert base_fingerprint(tmp_path) == hashlib.sha256(lines.encode()).hexdigest()
