"""What ``expert-cli dataset generate`` asks for, and how: settings from flags, the environment and the manifest's
``training.generation`` block (in that order), the prompt sent per request, and the rows read back from a reply.

The manifest block keeps a generated dataset reproducible::

    "generation": {"task": "...", "seeds": "data/seeds.jsonl", "prompt_template": "...{examples}...{n}...",
                   "temperature": 0.7, "max_tokens": 512, "examples_per_prompt": 3, "rows_per_request": 1,
                   "validators": ["sql"], "sql_dialect": "sqlite", "near_duplicate_threshold": 0.85,
                   "model": "gpt-4o-mini", "base_url": "https://...", "out": "data/generated.jsonl"}
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.errors import UsageError
from expert_cli.core.jsonlines import parse_json
from expert_cli.manifest.model import Manifest

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OUT = "data/generated.jsonl"
SYSTEM_PROMPT = ("You write training examples for a specialised model.\nTask: {task}\n"
                 "Answer with {n} new example(s): one JSON object per line, with exactly the keys and the format of "
                 "the examples. Vary the content and never copy an example. No prose, no code fences.")
USER_TEMPLATE = "Examples:\n{examples}\n\nWrite {n} new example(s)."
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^```[\w-]*\s*$")


@dataclass
class GenerationSettings:
    """One run: where to ask, how much, and where the rows go."""

    expert: Path
    count: int
    model: str
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    out: Path = Path(DEFAULT_OUT)
    concurrency: int = 4
    resume: bool = False
    temperature: float = 0.7
    max_tokens: int = 512
    max_tokens_total: int | None = None
    max_requests: int | None = None
    timeout_s: float = 120.0
    max_retries: int = 5
    seeds: Path | None = None
    examples_per_prompt: int = 3
    rows_per_request: int = 1
    task: str = ""
    prompt_template: str = USER_TEMPLATE
    seed: int | None = None


def resolve_settings(manifest: Manifest, count: int, **flags: Any) -> GenerationSettings:
    """Flags (None = not given) win over ``EXPERT_GENERATE_*``/``OPENAI_*`` variables, then the manifest."""
    block = manifest.training.get("generation") if isinstance(manifest.training.get("generation"), dict) else {}
    env = os.environ

    def pick(name: str, *env_names: str, default: Any = None) -> Any:
        if flags.get(name) is not None:
            return flags[name]
        for env_name in env_names:
            if env.get(env_name):
                return env[env_name]
        return block.get(name, default)

    model = pick("model", "EXPERT_GENERATE_MODEL")
    if not model:
        raise UsageError("no model to generate with", hint="pass `--model NAME` (or set `training.generation.model`)")
    if count < 1:
        raise UsageError(f"`--count` must be at least 1, not `{count}`")
    root = manifest.root or Path(".")
    out = Path(pick("out", default=DEFAULT_OUT))
    seeds = pick("seeds") or manifest.dataset.get("path")
    settings = GenerationSettings(
        expert=root, count=count, model=str(model), out=out if out.is_absolute() or flags.get("out") else root / out,
        base_url=str(pick("base_url", "OPENAI_BASE_URL", default=DEFAULT_BASE_URL)),
        api_key=flags.get("api_key") or env.get("EXPERT_GENERATE_API_KEY") or env.get("OPENAI_API_KEY") or None,
        concurrency=int(pick("concurrency", default=4)), resume=bool(flags.get("resume")),
        temperature=float(pick("temperature", default=0.7)), max_tokens=int(pick("max_tokens", default=512)),
        max_tokens_total=flags.get("max_tokens_total"), timeout_s=float(pick("timeout_s", default=120.0)),
        max_retries=int(pick("max_retries", default=5)),
        seeds=(Path(seeds) if Path(str(seeds)).is_absolute() or flags.get("seeds") else root / str(seeds)) if seeds else None,
        examples_per_prompt=int(block.get("examples_per_prompt", 3)),
        rows_per_request=int(block.get("rows_per_request", 1)),
        task=str(block.get("task") or manifest.description or manifest.name),
        prompt_template=str(block.get("prompt_template") or USER_TEMPLATE), seed=flags.get("seed"))
    settings.max_requests = flags.get("max_requests") or 10 * count + 10
    if settings.concurrency < 1 or settings.max_tokens < 1 or settings.rows_per_request < 1:
        raise UsageError("`--concurrency`, `max_tokens` and `rows_per_request` must be at least 1")
    return settings


def request_body(settings: GenerationSettings, seeds: list[dict[str, Any]], index: int) -> dict[str, Any]:
    """The chat request for request number ``index``: a few seeds drawn for it, the task, the count."""
    rng = random.Random((settings.seed or 0) * 1_000_003 + index)
    shown = rng.sample(seeds, min(settings.examples_per_prompt, len(seeds)))
    examples = "\n".join(json.dumps(_shown(row), ensure_ascii=False) for row in shown)
    n = str(settings.rows_per_request)
    fill = {"{task}": settings.task, "{examples}": examples, "{n}": n}
    user = settings.prompt_template
    for key, value in fill.items():
        user = user.replace(key, value)
    body: dict[str, Any] = {
        "model": settings.model, "temperature": settings.temperature, "max_tokens": settings.max_tokens,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT.replace("{task}", settings.task).replace("{n}", n)},
                     {"role": "user", "content": user}],
    }
    if settings.seed is not None:
        body["seed"] = settings.seed + index
    return body


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("meta", "setup")}


def rows_in_reply(text: str) -> list[Any]:
    """The rows a reply holds: one JSON value per line (fences and ``<think>`` blocks ignored), else the whole
    reply as JSON (a list gives its items). A line that looks like a row but does not parse stays a string,
    and a reply with no row at all is returned whole, so the parse gate reports both."""
    body = "\n".join(line for line in _THINK.sub("", text).splitlines() if not _FENCE.match(line.strip())).strip()
    rows: list[Any] = []
    for line in body.splitlines():
        if line.strip().startswith("{"):
            try:
                rows.append(parse_json(line))
            except ValueError:
                rows.append(line.strip())
    if rows and any(not isinstance(row, str) for row in rows):
        return rows
    try:
        whole = parse_json(body)
    except ValueError:
        return rows or [text]
    return whole if isinstance(whole, list) and whole else [whole]
