"""The model card (README.md), build_info.json and checksums.json written next to the saved model."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

CHECKSUMS_FILE = "checksums.json"

CARD = """\
---
license: mit
library_name: transformers
pipeline_tag: text-generation
tags: [qwen3, tiny, demo, offline, expert-cli]
---

# tiny-qwen3 (`builtin:tiny-qwen3`)

A very small Qwen3-architecture causal language model shipped inside `expert-cli` so that training,
packaging, routing and chatting work offline on a laptop CPU. It is a **demo base**: it knows some English,
the ChatML chat format, and the syntax of SQL, Cypher, JSON and Python, but it was never shown a natural
language question paired with the SQL or Cypher that answers it. The reference experts teach that mapping
with LoRA in about two CPU minutes. For real work use `Qwen/Qwen3-0.6B`.

## Architecture

| | |
|---|---|
| class | `Qwen3ForCausalLM` |
| parameters | {parameters:,} (embeddings tied with the output layer) |
| hidden size / layers | {hidden_size} / {num_layers} |
| attention heads / KV heads / head dim | {num_heads} / {num_kv_heads} / {head_dim} |
| MLP intermediate size | {intermediate_size} |
| vocabulary | {vocab_size} (byte-level BPE, Qwen2 pre-tokenizer pattern, NFC) |
| context | trained on {seq_len}-token windows; `max_position_embeddings` {max_position_embeddings}, RoPE theta {rope_theta:g} |
| special tokens | `<|endoftext|>` (pad, document separator), `<|im_start|>`, `<|im_end|>` (eos), `<think>`, `</think>` |

The chat template follows Qwen3: `system` / `user` / `assistant` turns in ChatML; the last assistant turn
carries a `<think>...</think>` block; `add_generation_prompt=True` opens an assistant turn and
`enable_thinking=False` pre-fills the empty `<think>\\n\\n</think>\\n\\n` block.

## Pretraining corpus (generated on the spot, nothing downloaded)

| source | tokens | share |
|---|---:|---:|
{corpus_rows}

- `docstring`: docstrings (with signatures) of the Python {python_version} standard library, found with
  `inspect`, and the language-reference topics that `help()` shows (`pydoc_data.topics`).
- `python_source`: short pure-Python functions of the standard library.
- `docstring_chat`, `chit_chat`: ChatML chats (what does `x` do; greetings, capitals, arithmetic, thanks).
- `code_task`: ChatML natural-language-to-code requests that are **not** SQL or Cypher (Python
  comprehensions over lists of dicts, pandas, JSON objects, shell, regular expressions).
- `sql_script`, `cypher_script`: random schemas (`CREATE TABLE` / graph schema comments) followed by
  random statements (SELECT/WHERE/JOIN/GROUP BY/HAVING/ORDER BY/LIMIT/aggregates/subqueries/INSERT/UPDATE/
  DELETE; MATCH/WHERE/RETURN/ORDER BY/LIMIT/relationships/paths/WITH/CREATE/MERGE/SET/DELETE), with no
  natural-language questions. 60% of the schemas (and half of the `code_task` records) use open-vocabulary
  names: words of the docstrings, two of them run together, or made-up pronounceable words, so the model
  learns to copy names it has never seen from the schema into the statement (see `scripts/demo_base/names.py`).
- `sql_schema_chat`, `cypher_schema_chat`: ChatML chats whose system message is `Dialect: sql\\nSchema:\\n...`
  or `Dialect: cypher\\nSchema:\\n...`, paired with chores other than writing a query from a question
  (list tables/labels/columns/properties, column types, show a CREATE TABLE, reformat or repeat a query).
- `json`: random JSON records.

## Training

| | |
|---|---|
| seed | {seed} (corpus, tokenizer, initialisation, data order) |
| steps | {steps} x {batch_size} sequences x {seq_len} tokens = {train_tokens:,} tokens, one pass |
| optimizer | AdamW (betas 0.9/0.95, weight decay {weight_decay} on matrices), peak LR {lr:g}, {warmup_steps} warm-up steps, cosine to {min_lr_ratio:g}x, grad clip 1.0 |
| precision / threads | fp32 on CPU, `torch.set_num_threads({threads})` |
| final training loss | {final_loss:.3f} (mean of the last 25 steps) |
| held-out loss | {eval_loss:.3f} ({eval_sequences} sequences from a differently seeded corpus) |
| training time | {train_minutes:.1f} min of {wall_minutes:.1f} min wall time on {machine} (shared CPU) |
| software | Python {python_version}, torch {torch_version}, transformers {transformers_version}, tokenizers {tokenizers_version} |

Greedy samples right after training (thinking off):

{samples}

## Rebuild

```
.venv/bin/python scripts/build_demo_base.py --seed {seed} --steps {steps}
```

The build is deterministic for a given seed, Python, torch version and thread count. `checksums.json`
records the SHA-256 of every file here; `expert_cli.models.resolve.verify_builtin("builtin:tiny-qwen3")`
checks them.

## Limits

About {parameters_m:.1f} M parameters: replies are short and often wrong; it is a fixture for demos and tests.
"""


def _software_versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    return {"python_version": platform.python_version(), "torch_version": torch.__version__,
            "transformers_version": transformers.__version__, "tokenizers_version": tokenizers.__version__}


def write_model_card(out: Path, config, result) -> None:
    """README.md (human) and build_info.json (machine-readable) with the measured figures."""
    total = sum(result.corpus_tokens_by_kind.values())
    rows = "\n".join(f"| {kind} | {tokens:,} | {100 * tokens / total:.1f}% |"
                     for kind, tokens in result.corpus_tokens_by_kind.items())
    samples = "\n".join(f"- {prompt!r} -> {reply!r}" for prompt, reply in result.samples)
    values = {**config.to_dict(), **_software_versions(), "parameters": result.parameters,
              "parameters_m": result.parameters / 1e6, "head_dim": config.hidden_size // config.num_heads,
              "corpus_rows": rows, "train_tokens": result.train_tokens, "final_loss": result.final_loss,
              "eval_loss": result.eval_loss, "train_minutes": result.train_seconds / 60,
              "wall_minutes": result.wall_seconds / 60, "machine": f"{platform.machine()} Linux",
              "samples": samples}
    (out / "README.md").write_text(CARD.format(**values), encoding="utf-8")
    info = {"name": "builtin:tiny-qwen3", "config": config.to_dict(), **_software_versions(),
            "parameters": result.parameters, "train_tokens": result.train_tokens,
            "final_loss": result.final_loss, "eval_loss": result.eval_loss,
            "train_seconds": round(result.train_seconds, 1), "wall_seconds": round(result.wall_seconds, 1),
            "corpus_tokens_by_kind": result.corpus_tokens_by_kind, "loss_curve": result.loss_curve}
    (out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(out: Path) -> None:
    """``checksums.json``: {"algorithm": "sha256", "files": {relative path: hex digest}} for every other file."""
    files = {p.relative_to(out).as_posix(): sha256_file(p) for p in sorted(out.rglob("*"))
             if p.is_file() and p.name != CHECKSUMS_FILE}
    (out / CHECKSUMS_FILE).write_text(json.dumps({"algorithm": "sha256", "files": files}, indent=2) + "\n",
                                      encoding="utf-8")
