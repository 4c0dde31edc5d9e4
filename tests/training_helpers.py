"""Build tiny expert folders (manifest + dataset) for training tests on the ``tiny_model`` fixture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LORA = {"type": "lora", "target_modules": ["q_proj", "v_proj"], "r": 4, "alpha": 8, "dropout": 0.0}


def chat_rows(count: int, answer: str = "SELECT name FROM users;") -> list[dict[str, Any]]:
    return [{"messages": [{"role": "user", "content": f"show the users {i}"},
                          {"role": "assistant", "content": answer}]} for i in range(count)]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def make_expert(folder: Path, base_model: Path | str, rows: list[Any] | None = None, *,
                adapter: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                dataset: dict[str, Any] | None = None, soft_prompts: list[dict[str, Any]] | None = None,
                capabilities: list[str] | None = None, prompt_template: str | None = None) -> Path:
    """An expert folder whose manifest trains ``adapter`` on ``rows`` (``data/train.jsonl``) for a few steps."""
    folder.mkdir(parents=True, exist_ok=True)
    if rows is not None:
        write_jsonl(folder / "data" / "train.jsonl", rows)
    entry: dict[str, Any] = {"name": str(base_model), "adapters": [adapter or LORA]}
    if prompt_template:
        entry["prompt_template"] = prompt_template
    manifest = {
        "name": "expert-tiny",
        "version": "0.1.0",
        "schema_version": "2.0",
        "description": "a tiny test expert",
        "capabilities": capabilities or ["database:sql"],
        "base_models": [entry],
        "constraints": {"load_order": 0, "incompatible_with": [], "requires": []},
        "soft_prompts": soft_prompts or [],
        "training": {
            "dataset": dataset or {"path": "data/train.jsonl"},
            "config": {"method": "sft", "learning_rate": 0.01, "batch_size": 4, "epochs": 1,
                       "logging_steps": 1, **(config or {})},
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return folder


def build_learnable_model(out: Path, hidden: int = 32) -> Path:
    """A tiny Qwen3 whose (frozen) embeddings are large enough to express confident answers.

    The session ``tiny_model`` keeps transformers' 0.02 init, so its tied output layer can barely move the
    logits whatever an adapter does; a pretrained base has grown its embeddings, and so does this one.
    """
    import torch
    from tiny_model import build_tokenizer
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=hidden // 2,
                         max_position_embeddings=512, tie_word_embeddings=True, initializer_range=0.3,
                         bos_token_id=None, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tokenizer.pad_token_id)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id,
                                               do_sample=False)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
