"""Data-parallel training (``--processes``): the per-process batch, and two real CPU processes (gloo) whose
loss curve follows the one-process run with the same global batch, with resume and one adapter folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_helpers import chat_rows, make_expert

from expert_cli.core.errors import TrainingError
from expert_cli.manifest.model import model_slug
from expert_cli.training.ranks import split_global_batch

CONFIG = {"batch_size": 8, "epochs": 2, "logging_steps": 1}  # the LoRA has no dropout: runs can agree


def batches(batch: int, accumulation: int) -> dict:
    return {"per_device_train_batch_size": batch, "per_device_eval_batch_size": batch,
            "gradient_accumulation_steps": accumulation}


@pytest.mark.parametrize(("before", "processes", "after"), [
    ((8, 1), 2, (4, 1)), ((8, 2), 4, (2, 2)), ((3, 4), 2, (3, 2)), ((8, 1), 1, (8, 1))])
def test_the_manifests_batch_stays_the_global_batch(before, processes, after):
    args = batches(*before)
    split_global_batch(args, processes)
    assert (args["per_device_train_batch_size"], args["gradient_accumulation_steps"]) == after


def test_a_batch_that_cannot_be_split_evenly_is_refused():
    with pytest.raises(TrainingError, match="cannot be split evenly over 2 processes"):
        split_global_batch(batches(3, 1), 2)


def test_processes_must_be_at_least_one(cli, tmp_path):
    result = cli("train", tmp_path, "--processes", "0")
    assert result.exit_code == 2 and "`--processes` must be from 1 to 64" in result.stderr


def losses(run_dir: Path, step: int) -> list[float]:
    state = json.loads((run_dir / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def assert_loads_with_stock_peft(base: Path, adapter: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)
    assert model(input_ids=torch.tensor([[5, 6, 7, 8]])).logits.shape[:2] == (1, 4)


@pytest.mark.slow
def test_two_cpu_processes_follow_the_single_process_loss_curve_and_resume(tmp_path, tiny_model):
    from expert_cli.sdk.training import TrainRequest, train_expert

    single = make_expert(tmp_path / "single", tiny_model, chat_rows(32), config=CONFIG)
    double = make_expert(tmp_path / "double", tiny_model, chat_rows(32), config=CONFIG)
    alone = train_expert(TrainRequest(target=single, device="cpu"))
    shared = train_expert(TrainRequest(target=double, device="cpu"), processes=2)
    run_dir = double / "weights" / model_slug(str(tiny_model))
    assert shared.steps == alone.steps == 8
    assert any("2 processes share each global batch of 8 rows: 4 rows" in note for note in shared.notes)
    assert (run_dir / "checkpoints" / "checkpoint-8" / "rng_state_1.pth").is_file()  # rank 1 really trained
    assert losses(run_dir, 8) == pytest.approx(losses(single / "weights" / model_slug(str(tiny_model)), 8),
                                               abs=0.01)
    assert_loads_with_stock_peft(tiny_model, shared.adapter_dir)
    uninterrupted = losses(run_dir, 8)
    resumed = train_expert(TrainRequest(target=double, device="cpu",
                                        resume_from=run_dir / "checkpoints" / "checkpoint-4"), processes=2)
    assert resumed.resumed_from.endswith("checkpoint-4") and resumed.steps == 8
    assert losses(run_dir, 8) == pytest.approx(uninterrupted, abs=1e-4)  # steps 5-8 again, as they went
    assert json.loads((run_dir / "training_summary.json").read_text())["resumed_from"].endswith("checkpoint-4")
