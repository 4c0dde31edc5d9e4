"""Examples -> ``{"prompt", "completion"}`` text, rendered the way the runtime will prompt the expert.

- instruction and multi-task rows carry no chat structure of their own, so their prompt is built by the
  runtime's own :func:`~expert_cli.prompts.templates.build_prompt` (same system message, dialect from the
  capabilities, schema placement and template): the expert is trained on exactly what it will be sent;
- ``messages`` rows keep their own turns and are rendered with the manifest's ``prompt_template`` (or the
  tokenizer's chat template);
- ``text`` and plain ``prompt_completion`` rows are already text and stay as they are.

An answer that starts with ``<think>`` is rendered with thinking on (no empty think block prefilled).
The loss covers the completion only (TRL's completion mask); TRL appends the EOS token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from expert_cli.prompts.templates import LEGACY_TEMPLATES, build_prompt, render_prompt
from expert_cli.training.formats import Example

LEGACY_END = "\n<|end|>"


def render_example(example: Example, tokenizer: Any, template: str | None,
                   capabilities: list[str] | None) -> dict[str, str]:
    """``{"prompt": ..., "completion": ...}`` for one example."""
    if not example.messages:
        return {"prompt": example.prompt, "completion": example.completion}
    answer = example.messages[-1]["content"]
    thinking = answer.lstrip().startswith("<think>")
    if example.format in ("instruction", "multitask"):
        prompt = build_prompt(tokenizer, example.messages[0]["content"], template, capabilities=capabilities,
                              schema=example.schema, enable_thinking=thinking)
    else:
        prompt = render_prompt(tokenizer, list(example.messages[:-1]), template, enable_thinking=thinking)
    return {"prompt": prompt, "completion": answer + end_of_turn(template)}


def end_of_turn(template: str | None) -> str:
    """What closes an answer before EOS: the legacy format's ``<|end|>``; ChatML's end is the EOS itself."""
    return LEGACY_END if (template or "").strip().lower() in LEGACY_TEMPLATES else ""


def to_hf_dataset(examples: Iterable[Example], tokenizer: Any, template: str | None,
                  capabilities: list[str] | None):
    """A ``datasets.Dataset`` with ``prompt`` and ``completion`` columns."""
    from datasets import Dataset

    rows = [render_example(example, tokenizer, template, capabilities) for example in examples]
    return Dataset.from_list(rows) if rows else None
