"""The manifest's ``training.generation`` block (``expert-cli dataset generate``) in the bundled JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

from expert_cli.manifest.model import manifest_from_dict
from expert_cli.manifest.rules import strict_problems

REPO = Path(__file__).resolve().parents[2]


def problems_with(generation: dict) -> list[tuple[str, str]]:
    data = json.loads((REPO / "experts" / "expert-sql" / "manifest.json").read_text(encoding="utf-8"))
    data["training"]["generation"] = generation
    return [(p.path, p.message) for p in strict_problems(manifest_from_dict(data))
            if p.path.startswith("training.generation")]


def test_a_full_generation_block_is_valid():
    assert problems_with({
        "task": "Text to SQLite", "seeds": "data/seeds.jsonl", "prompt_template": "{examples}\nWrite {n}.",
        "model": "gpt-4o-mini", "base_url": "http://127.0.0.1:8000/v1", "out": "data/generated.jsonl",
        "temperature": 0.7, "max_tokens": 512, "concurrency": 8, "timeout_s": 60, "max_retries": 5,
        "examples_per_prompt": 3, "rows_per_request": 2, "validators": ["sql", "my_checks:row_ok"],
        "sql_dialect": "postgres", "near_duplicate_threshold": 0.85, "_comment": "notes"}) == []


def test_wrong_generation_settings_are_named():
    found = dict(problems_with({"temperature": 5, "validators": ["sql", "not a validator"], "count": 3,
                                "near_duplicate_threshold": 0}))
    assert set(found) == {"training.generation", "training.generation.temperature",
                          "training.generation.validators[1]", "training.generation.near_duplicate_threshold"}
    assert found["training.generation"].startswith("'count' does not match")  # an unknown key
