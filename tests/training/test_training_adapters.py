"""PEFT configs built exactly from the manifest's adapter entry (and ``training.config`` for gaps)."""

from __future__ import annotations

import pytest

from expert_cli.core.errors import TrainingError
from expert_cli.manifest.model import AdapterSpec, SoftPromptSpec
from expert_cli.training.peft_configs import build_peft_config, build_prompt_tuning_config, plan_adapter


def spec(**data):
    return AdapterSpec.from_dict({"target_modules": ["q_proj", "v_proj"], **data})


def test_lora_takes_rank_alpha_dropout_and_targets_from_the_entry():
    config = build_peft_config(plan_adapter(spec(type="lora", r=12, alpha=24, dropout=0.1), {}))
    assert (config.r, config.lora_alpha, config.lora_dropout) == (12, 24, 0.1)
    assert set(config.target_modules) == {"q_proj", "v_proj"} and config.use_dora is False


def test_dora_is_lora_with_use_dora():
    config = build_peft_config(plan_adapter(spec(type="dora", r=8, alpha=16), {}))
    assert config.use_dora is True and config.lora_dropout == 0.05


def test_training_config_fills_gaps_and_conflicts_are_noted():
    notes: list[str] = []
    plan = plan_adapter(spec(type="lora", r=8, alpha=16), {"rank": 4, "dropout": 0.2}, notes)
    assert (plan.r, plan.alpha, plan.dropout) == (8, 16, 0.2)
    assert notes == ["adapter `r` is `8` in `base_models[].adapters[]` but `4` in `training.config`; using `8`"]


def test_ia3_uses_the_manifest_feedforward_modules_and_needs_no_rank():
    plan = plan_adapter(AdapterSpec.from_dict({"type": "ia3", "target_modules": ["k_proj", "v_proj", "down_proj"],
                                               "feedforward_modules": ["down_proj"]}), {})
    config = build_peft_config(plan)
    assert config.feedforward_modules == {"down_proj"}
    assert config.target_modules == {"k_proj", "v_proj", "down_proj"}


def test_ia3_feedforward_modules_must_be_targets():
    plan = plan_adapter(AdapterSpec.from_dict({"type": "ia3", "target_modules": ["k_proj"],
                                               "feedforward_modules": ["down_proj"]}), {})
    with pytest.raises(TrainingError, match="must also be in `target_modules`"):
        build_peft_config(plan)


def test_lokr_gets_its_alpha():
    config = build_peft_config(plan_adapter(spec(type="lokr", r=4, alpha=8), {}))
    assert (config.r, config.alpha) == (4, 8)


def test_adalora_needs_the_step_count():
    plan = plan_adapter(spec(type="adalora", r=8, alpha=16), {})
    assert build_peft_config(plan, total_steps=50).total_step == 50
    with pytest.raises(TrainingError, match="known number of steps"):
        build_peft_config(plan)


def test_a_lora_without_rank_is_refused():
    with pytest.raises(TrainingError, match="needs `r` and `alpha`"):
        plan_adapter(spec(type="lora"), {})


@pytest.mark.parametrize("method, init", [("random", "RANDOM"), ("vocab_sample", "SAMPLE_VOCAB")])
def test_prompt_tuning_init_methods(method, init):
    config = build_prompt_tuning_config(SoftPromptSpec("style", "sp.bin", 16, method), "/models/base")
    assert config.num_virtual_tokens == 16 and config.prompt_tuning_init.value == init


def test_prompt_tuning_from_text():
    config = build_prompt_tuning_config(SoftPromptSpec("style", "sp.bin", 8, "text", "Write SQL"), "/models/base")
    assert config.prompt_tuning_init_text == "Write SQL" and config.tokenizer_name_or_path == "/models/base"
    with pytest.raises(TrainingError, match="no `init_text`"):
        build_prompt_tuning_config(SoftPromptSpec("style", "sp.bin", 8, "text"), "/models/base")
