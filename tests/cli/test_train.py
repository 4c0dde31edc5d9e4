"""``expert-cli train``: JSON summary on stdout, `error:` lines for bad input, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from training_helpers import chat_rows, make_expert


def test_train_prints_a_json_summary(cli, tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(6))
    result = cli("train", expert, "--max-steps", "2", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["steps"] == 2 and summary["tokens"] > 0 and summary["tokens_per_second"] > 0
    assert summary["train_loss"] is not None and summary["wall_seconds"] > 0
    assert Path(summary["adapter_dir"], "adapter_model.safetensors").is_file()
    assert summary["dataset"]["train_examples"] == 6 and summary["adapter"]["type"] == "lora"


def test_train_without_json_says_what_it_wrote_on_stderr(cli, tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(4), config={"use_unsloth": True})
    result = cli("train", expert / "manifest.json", "--max-steps", "1", "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "warning: `training.config.use_unsloth` is ignored" in result.stderr
    assert "Trained expert-tiny@0.1.0" in result.stderr and "adapter:" in result.stderr


def test_a_bad_row_is_one_error_line_with_file_and_line(cli, tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(1) + [{"prompt": "only a prompt"}])
    result = cli("train", expert, "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert "train.jsonl:2`: `messages` must be a non-empty list" in result.stderr
    assert result.stderr.startswith("error: ") and "hint: run `expert-cli dataset validate" in result.stderr


def test_bad_flags_are_usage_errors(cli, tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(4))
    assert cli("train", expert, "--epochs", "0").exit_code == 2
    assert cli("train", expert, "--max-steps", "-3").exit_code == 2
    result = cli("train", expert, "--device", "tpu")
    assert result.exit_code == 2 and "error: unknown device `tpu`" in result.stderr


def test_a_base_model_that_is_nowhere_is_named(cli, tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(4))
    result = cli("train", expert, "--base-model", "nobody/not-a-model")
    assert result.exit_code == 1 and "`nobody/not-a-model`" in result.stderr


def test_a_missing_dataset_says_how_to_pass_one(cli, tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, None)
    result = cli("train", expert)
    assert result.exit_code == 1 and "does not exist" in result.stderr and "--dataset" in result.stderr


def test_a_base_model_given_by_its_slug_loads_the_manifest_entry(cli, tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(4))
    slug = json.loads((expert / "manifest.json").read_text())["base_models"][0]["name"]
    from expert_cli.manifest.model import model_slug

    result = cli("train", expert, "--base-model", model_slug(slug), "--max-steps", "1", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert Path(summary["adapter_dir"]) == expert / "weights" / model_slug(slug) / "adapter"
    config = json.loads((Path(summary["adapter_dir"]) / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model)


def test_an_output_below_a_file_fails_before_training_and_writes_nothing(cli, tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(4))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    result = cli("train", expert, "--output", blocker / "w", "--max-steps", "1", "--json")
    assert result.exit_code == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: cannot create the folder `{blocker / 'w'}")
    assert "a file stands where a folder should be" in result.stderr
    assert not (expert / "weights").exists() and blocker.read_text() == "a file"
