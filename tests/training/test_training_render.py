"""Rendering examples the way the runtime prompts, and the loss on the answer only."""

from __future__ import annotations

import pytest

from expert_cli.training.formats import FieldMapping, convert_row
from expert_cli.training.render import render_example, to_hf_dataset


def example(row, fmt):
    return convert_row(row, fmt, "f:1", FieldMapping())


def tokenizer_of(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_instruction_rows_get_the_runtime_prompt(tiny_model):
    from expert_cli.prompts.templates import build_prompt

    tokenizer = tokenizer_of(tiny_model)
    row = example({"instruction": "list users", "input": "CREATE TABLE users (id INT);", "output": "SELECT"},
                  "instruction")
    rendered = render_example(row, tokenizer, "qwen3", ["database:sql"])
    assert rendered["prompt"] == build_prompt(tokenizer, "list users", "qwen3", capabilities=["database:sql"],
                                              schema="CREATE TABLE users (id INT);")
    assert rendered["prompt"].startswith("<|im_start|>system\nDialect: sql\nSchema:\nCREATE TABLE users")
    assert rendered["prompt"].endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert rendered["completion"] == "SELECT"


def test_an_answer_that_thinks_gets_no_empty_think_block(tiny_model):
    row = example({"messages": [{"role": "user", "content": "q"},
                                {"role": "assistant", "content": "<think>\nhm\n</think>\nA"}]}, "messages")
    rendered = render_example(row, tokenizer_of(tiny_model), None, None)
    assert rendered["prompt"] == "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"


def test_the_legacy_template_closes_answers_with_end(tiny_model):
    row = example({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "A"}]},
                  "messages")
    rendered = render_example(row, tokenizer_of(tiny_model), "chatml", None)
    assert rendered["prompt"].endswith("<|user|>\nq\n<|end|>\n<|assistant|>\n")
    assert rendered["completion"] == "A\n<|end|>"


def test_only_answer_tokens_carry_loss(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from expert_cli.training.config import make_sft_config, resolve_settings

    tokenizer = tokenizer_of(tiny_model)
    rows = [example({"messages": [{"role": "user", "content": "show users"},
                                  {"role": "assistant", "content": "SELECT name FROM users;"}]}, "messages")]
    dataset = to_hf_dataset(rows, tokenizer, None, ["database:sql"])
    settings = resolve_settings({}, output_dir=tmp_path, on_cuda=False, has_eval=False)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model), train_dataset=dataset,
                         args=make_sft_config(settings, use_cpu=True), processing_class=tokenizer)
    labels = trainer.train_dataset[0]["labels"]
    prompt_tokens = len(tokenizer(dataset[0]["prompt"])["input_ids"])
    assert all(label == -100 for label in labels[:prompt_tokens])
    answer = tokenizer.decode([t for t in labels if t != -100])
    assert answer == "SELECT name FROM users;<|im_end|>"


def test_the_lean_cpu_loss_equals_trl_loss(tiny_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from expert_cli.training.config import make_sft_config, resolve_settings
    from expert_cli.training.sft import lean_trainer_class

    tokenizer = tokenizer_of(tiny_model)
    rows = [example({"messages": [{"role": "user", "content": f"show users {i}"},
                                  {"role": "assistant", "content": "SELECT name FROM users;" * (i + 1)}]}, "messages")
            for i in range(3)]
    dataset = to_hf_dataset(rows, tokenizer, None, None)
    settings = resolve_settings({}, output_dir=tmp_path, on_cuda=False, has_eval=False)
    losses = []
    for cls in (SFTTrainer, lean_trainer_class()):
        trainer = cls(model=AutoModelForCausalLM.from_pretrained(tiny_model), train_dataset=dataset,
                      args=make_sft_config(settings, use_cpu=True), processing_class=tokenizer)
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        with torch.no_grad():
            losses.append(float(trainer.compute_loss(trainer.model, batch, num_items_in_batch=None)))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
