"""The CPU trainer's loss: the cross-entropy of the labelled tokens, computed on their positions only."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def lora_model(tiny_model: Path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    return get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))


def batch() -> dict:
    """Three right-padded rows: prompts of different lengths (label -100) before their answers."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 300, (3, 16), generator=generator)
    mask = torch.ones_like(ids)
    mask[2, 11:] = 0
    labels = ids.clone()
    labels[0, :9] = labels[1, :4] = labels[2, :7] = -100
    labels[2, 11:] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_the_lean_loss_equals_the_models_own_loss_and_its_gradient(lora_model):
    from expert_cli.training.sft import keeps_labelled_positions, labelled_loss

    assert keeps_labelled_positions(lora_model)
    inputs = batch()
    lora_model.zero_grad()
    reference = lora_model(**inputs).loss
    reference.backward()
    expected = [p.grad.clone() for p in lora_model.parameters() if p.requires_grad]
    lora_model.zero_grad()
    loss, outputs = labelled_loss(lora_model, inputs)
    loss.backward()
    got = [p.grad for p in lora_model.parameters() if p.requires_grad]
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(expected, got))
    labelled = int((inputs["labels"][:, 1:] != -100).sum())
    assert outputs.logits.shape[0] == labelled < inputs["input_ids"].numel() // 2  # only the answers' positions


def test_the_lean_loss_divides_by_the_trainers_token_count(lora_model):
    from expert_cli.training.sft import labelled_loss

    inputs = batch()
    mean, _ = labelled_loss(lora_model, inputs)
    labelled = int((inputs["labels"][:, 1:] != -100).sum())
    over_step, _ = labelled_loss(lora_model, inputs, num_items_in_batch=torch.tensor(labelled * 4))
    assert over_step.item() == pytest.approx(mean.item() / 4, rel=1e-5)


def test_positions_kept_are_those_followed_by_a_label():
    from expert_cli.training.sft import labelled_positions

    labels = torch.tensor([[-100, -100, 7, 8, -100], [-100, 5, 6, 7, 8]])
    assert labelled_positions(labels).tolist() == [[False, True, True, False, False],
                                                   [True, True, True, True, False]]


def test_prompt_tuning_keeps_the_full_loss(tiny_model: Path):
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from expert_cli.training.sft import keeps_labelled_positions

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    assert not keeps_labelled_positions(model)
