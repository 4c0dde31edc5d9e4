"""Routing exemplars: a deterministic sample of user prompts from an expert's training data.

``package`` stores them as ``routing_exemplars.json`` (a JSON list of strings) so the router can compare a
query with what the expert was trained on. Rows are read from the local JSONL file named by
``training.dataset.path``; the formats understood are ``{"messages": [...]}`` (the first user turn),
``{"prompt": ...}``, ``{"instruction": ..., "input": ...}`` and ``{"text": ...}`` in ChatML (the user part).
A chat row's system message comes first, above a blank line: the context (a schema) a person would paste.
A missing or remote dataset gives no exemplars, silently.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from expert_cli.manifest.model import Manifest

EXEMPLARS_FILE = "routing_exemplars.json"
DEFAULT_LIMIT = 50
MAX_PROMPT_CHARS = 1000
SEED = 20250101
_USER_PATTERNS = (
    re.compile(r"<\|im_start\|>user\s*\n(.*?)(?:<\|im_end\|>|$)", re.DOTALL),
    re.compile(r"<\|user\|>\s*\n?(.*?)(?:<\|end\|>|<\|assistant\|>|$)", re.DOTALL),
    re.compile(r"(?:^|\n)### (?:Instruction|Question|Input):?\s*\n(.*?)(?:\n### |$)", re.DOTALL),
)


def dataset_file(manifest: Manifest) -> Path | None:
    """The local training file, resolved against the manifest folder; None when absent or remote."""
    source = manifest.dataset.get("path")
    if not isinstance(source, str) or not source.strip():
        return None
    local = manifest.resolve_path(source.split("::")[0])
    return local if local.is_file() else None


def sample_routing_exemplars(manifest: Manifest, limit: int = DEFAULT_LIMIT) -> list[str]:
    """Up to ``limit`` distinct user prompts, the same for the same file every time."""
    path = dataset_file(manifest)
    if path is None or limit <= 0:
        return []
    line_count = _count_lines(path)
    if line_count == 0:
        return []
    wanted = set(random.Random(SEED).sample(range(line_count), min(line_count, limit * 4)))
    prompts: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle):
            if number not in wanted:
                continue
            prompt = _prompt_from_line(line)
            if prompt and prompt not in prompts:
                prompts.append(prompt)
            if len(prompts) >= limit:
                break
    return prompts


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (0 if last == b"\n" else 1)


def _prompt_from_line(line: str) -> str | None:
    line = line.strip()
    if not line:
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    prompt = extract_user_prompt(row) if isinstance(row, dict) else None
    if not prompt:
        return None
    prompt = prompt.strip()
    return prompt[:MAX_PROMPT_CHARS] if prompt else None


def extract_user_prompt(row: dict[str, Any]) -> str | None:
    """The user's part of one training row, in any of the supported shapes."""
    messages = row.get("messages") or row.get("conversations")
    if isinstance(messages, list):
        return _first_user_turn(messages)
    if isinstance(row.get("prompt"), str):
        return row["prompt"]
    if "instruction" in row or "input" in row:
        return _instruction_prompt(row.get("instruction"), row.get("input"))
    if isinstance(row.get("text"), str):
        return _chatml_user_part(row["text"])
    return None


def _first_user_turn(messages: list[Any]) -> str | None:
    """The first user message, after the system message that precedes it (where the training data puts
    context such as a schema, which a person pastes into the prompt itself)."""
    context = ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role", message.get("from")), message.get("content", message.get("value"))
        if role == "system" and isinstance(content, str):
            context = content.strip()
        elif role in ("user", "human"):
            if not isinstance(content, str):
                return None
            return f"{context}\n\n{content}" if context else content
    return None


def _instruction_prompt(instruction: Any, given: Any) -> str | None:
    if isinstance(given, dict):  # the original's multi-task rows: the task fields say what the user asked
        fields = "\n".join(v.strip() for k, v in given.items() if k != "instruction" and isinstance(v, str))
        return fields.strip() or (given.get("instruction") if isinstance(given.get("instruction"), str) else None)
    parts = [p.strip() for p in (instruction, given) if isinstance(p, str) and p.strip()]
    return "\n".join(parts) or None


def _chatml_user_part(text: str) -> str | None:
    for pattern in _USER_PATTERNS:
        match = pattern.search(text)
        if match and match.group(1).strip():
            return match.group(1).strip()
    return None
