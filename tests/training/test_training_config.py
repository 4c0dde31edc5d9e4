"""``training.config`` -> SFTConfig: every field mapped, unknown keys reported once, fast CPU defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expert_cli.core.errors import TrainingError
from expert_cli.training.config import make_sft_config, resolve_settings

SQL_MANIFEST = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hivellm" / "expert-sql-manifest.json"


def settings_for(config, *, on_cuda=False, has_eval=True, **overrides):
    return resolve_settings(config, output_dir=Path("/tmp/out"), on_cuda=on_cuda, bf16_supported=on_cuda,
                            has_eval=has_eval, **overrides)


def test_schedule_and_batch_fields_are_mapped():
    args = settings_for({"epochs": 1.5, "learning_rate": 5e-5, "batch_size": 2, "gradient_accumulation_steps": 45,
                         "warmup_steps": 0, "warmup_ratio": 0.1, "lr_scheduler": "cosine",
                         "lr_scheduler_kwargs": {"num_cycles": 1}, "max_seq_length": 1024, "seed": 7}).args
    assert args["num_train_epochs"] == 1.5 and args["learning_rate"] == 5e-5
    assert args["per_device_train_batch_size"] == args["per_device_eval_batch_size"] == 2
    assert args["gradient_accumulation_steps"] == 45 and args["lr_scheduler_type"] == "cosine"
    assert args["warmup_steps"] == 0.1  # the ratio wins over warmup_steps, as in the original
    assert args["lr_scheduler_kwargs"] == {"num_cycles": 1}
    assert args["max_length"] == 1024 and args["seed"] == args["data_seed"] == 7


def test_num_epochs_is_understood_and_cli_overrides_win():
    assert settings_for({"num_epochs": 3}).args["num_train_epochs"] == 3.0
    args = settings_for({"epochs": 3, "max_steps": 100}, epochs=0.5, max_steps=7).args
    assert (args["num_train_epochs"], args["max_steps"]) == (0.5, 7)


def test_checkpoint_and_eval_fields_are_mapped():
    args = settings_for({"save_strategy": "steps", "save_steps": 250, "save_total_limit": 4,
                         "evaluation_strategy": "steps", "eval_steps": 250, "load_best_model_at_end": True,
                         "metric_for_best_model": "eval_loss", "greater_is_better": False, "logging_steps": 10}).args
    assert (args["save_strategy"], args["save_steps"], args["save_total_limit"]) == ("steps", 250, 4)
    assert (args["eval_strategy"], args["eval_steps"], args["load_best_model_at_end"]) == ("steps", 250, True)
    assert args["metric_for_best_model"] == "eval_loss" and args["logging_steps"] == 10


def test_best_checkpoint_by_eval_loss_is_the_default_with_eval_data():
    args = settings_for({}).args
    assert (args["eval_strategy"], args["save_strategy"], args["load_best_model_at_end"]) == ("epoch", "epoch", True)
    assert args["metric_for_best_model"] == "eval_loss" and args["greater_is_better"] is False


def test_without_eval_data_there_is_no_eval_and_a_note_says_so():
    settings = settings_for({"evaluation_strategy": "steps", "load_best_model_at_end": True}, has_eval=False)
    assert settings.args["eval_strategy"] == "no" and settings.args["load_best_model_at_end"] is False
    assert any("no evaluation data" in note for note in settings.notes)


def test_save_strategy_follows_eval_when_keeping_the_best():
    settings = settings_for({"save_strategy": "epoch", "evaluation_strategy": "steps", "eval_steps": 5})
    assert settings.args["save_strategy"] == "steps" and settings.args["save_steps"] == 5


def test_cpu_defaults_are_the_fast_ones():
    args = settings_for({}).args
    assert args["gradient_checkpointing"] is False and args["bf16"] is False and args["fp16"] is False
    assert args["dataloader_num_workers"] == 0 and args["dataloader_pin_memory"] is False
    assert args["torch_compile"] is False and "dataloader_persistent_workers" not in args


def test_gpu_settings_on_cpu_are_noted_and_dropped():
    settings = settings_for({"bf16": True, "optim": "adamw_bnb_8bit", "memory_clear_every": 100})
    assert settings.args["optim"] == "adamw_torch" and "torch_empty_cache_steps" not in settings.args
    assert len(settings.notes) == 3


def test_cuda_precision_and_memory_settings():
    args = settings_for({"bf16": True, "use_tf32": True, "memory_clear_every": 100, "optim": "adamw_bnb_8bit"},
                        on_cuda=True).args
    assert (args["bf16"], args["fp16"], args["tf32"]) == (True, False, True)
    assert args["torch_empty_cache_steps"] == 100 and args["optim"] == "adamw_bnb_8bit"


def test_gradient_checkpointing_variants():
    assert settings_for({"gradient_checkpointing": "full"}).args["gradient_checkpointing"] is True
    selective = settings_for({"gradient_checkpointing": "selective"}).args
    assert selective["gradient_checkpointing"] is True
    assert selective["gradient_checkpointing_kwargs"] == {"selective": True}


def test_dataloader_worker_options_only_with_workers():
    args = settings_for({"dataloader_num_workers": 2, "dataloader_prefetch_factor": 4,
                         "dataloader_persistent_workers": True}).args
    assert (args["dataloader_prefetch_factor"], args["dataloader_persistent_workers"]) == (4, True)


def test_only_sft_is_supported():
    with pytest.raises(TrainingError, match="`dpo` is not supported"):
        settings_for({"method": "dpo"})


def test_every_key_of_the_real_sql_config_is_accounted_for_once():
    config = json.loads(SQL_MANIFEST.read_text())["training"]["config"]
    settings = settings_for(config)
    sft = make_sft_config(settings, use_cpu=True)
    ignored = sorted(k for k in config if f"`training.config.{k}`" in " ".join(settings.notes))
    assert ignored == ["activation_checkpointing", "cuda_graph_warmup_steps", "memory_clear_every",
                       "memory_efficient_attention", "use_cuda_graphs", "use_unsloth"]
    assert len(settings.notes) == len(set(settings.notes))
    assert sft.lr_scheduler_type.value == "cosine" and sft.gradient_accumulation_steps == 45
    assert sft.save_total_limit == 4 and sft.load_best_model_at_end is True
    assert sft.get_warmup_steps(1000) == 100


def test_unknown_keys_are_reported_and_known_sft_fields_pass_through():
    settings = settings_for({"weird_knob": 1, "weight_decay": 0.05, "output_dir": "/elsewhere"})
    sft = make_sft_config(settings, use_cpu=True)
    assert sft.weight_decay == 0.05 and sft.output_dir == "/tmp/out"
    unknown = [n for n in settings.notes if "is unknown" in n]
    assert unknown == ["`training.config.weird_knob` is unknown; ignored",
                       "`training.config.output_dir` is unknown; ignored"]


def test_the_built_config_trains_in_fp32_without_checkpointing():
    sft = make_sft_config(settings_for({}), use_cpu=True)
    assert sft.bf16 is False and sft.gradient_checkpointing is False and sft.use_cpu is True
    assert sft.report_to == [] or sft.report_to == "none" or sft.report_to == ["none"]


def test_packing_is_fixed_length_rows_without_flash_attention():
    assert settings_for({"packing": True}).args["packing_strategy"] == "wrapped"
    assert "packing_strategy" not in settings_for({}).args
    chosen = settings_for({"packing": True, "packing_strategy": "bfd"})
    assert make_sft_config(chosen, use_cpu=True).packing_strategy == "bfd"
