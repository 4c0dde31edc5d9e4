"""Adapters as the plain LoRA folders vLLM loads: the same logits under stock PEFT, refusals named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from expert_factory import make_adapter

from expert_cli.core.errors import ExportError
from expert_cli.runtime.lora_export import export_plain_lora

IDS = [[1, 5, 9, 20, 3, 7, 11, 2]]


def peft_logits(base: Path, adapter: Path | None) -> torch.Tensor:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    with torch.no_grad():
        return model.eval()(torch.tensor(IDS)).logits


@pytest.mark.parametrize(("kind", "rewritten"), [("adalora", True), ("rslora", True), ("lora", False)])
def test_the_exported_folder_gives_the_same_logits_with_stock_peft(tiny_model: Path, tmp_path: Path, kind,
                                                                   rewritten):
    source = make_adapter(tiny_model, tmp_path / kind, kind, seed=3)
    plain = export_plain_lora(source, tmp_path / "plain", kind)
    config = json.loads((plain.folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and plain.rewritten is rewritten
    assert not config.get("rank_pattern") and not config.get("alpha_pattern") and "init_r" not in config
    expected = peft_logits(tiny_model, source)
    assert not torch.allclose(expected, peft_logits(tiny_model, None), atol=1e-3)  # the adapter does something
    torch.testing.assert_close(peft_logits(tiny_model, plain.folder), expected, atol=1e-5, rtol=1e-5)


def test_adalora_becomes_one_rank_with_its_scale_in_b(tiny_model: Path, tmp_path: Path):
    from safetensors.torch import load_file

    plain = export_plain_lora(make_adapter(tiny_model, tmp_path / "ada", "adalora", seed=1), tmp_path / "out", "ada")
    config = json.loads((plain.folder / "adapter_config.json").read_text())
    assert config["r"] == config["lora_alpha"] == plain.rank == 4 and config["use_rslora"] is False
    tensors = load_file(str(plain.folder / "adapter_model.safetensors"))
    assert all(key.endswith((".lora_A.weight", ".lora_B.weight")) for key in tensors)
    assert {tensor.shape[0] for key, tensor in tensors.items() if key.endswith("lora_A.weight")} == {4}


def test_a_plain_lora_is_copied_byte_for_byte(tiny_model: Path, tmp_path: Path):
    source = make_adapter(tiny_model, tmp_path / "lora", "lora", seed=2)
    plain = export_plain_lora(source, tmp_path / "out", "lora")
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (plain.folder / name).read_bytes() == (source / name).read_bytes()


@pytest.mark.parametrize(("kind", "reason"), [
    ("dora", "vLLM does not support DoRA (`use_dora`)"),
    ("ia3", "IA3 rescales activations"),
    ("lokr", "a LoKr update is a Kronecker product"),
    ("prompt_tuning", "vLLM loads LoRA adapters only (its prompt adapters"),
])
def test_what_vllm_cannot_load_is_refused_by_name(tiny_model: Path, tmp_path: Path, kind, reason):
    source = make_adapter(tiny_model, tmp_path / kind, kind)
    with pytest.raises(ExportError) as caught:
        export_plain_lora(source, tmp_path / "out", f"expert-{kind}@0.1.0")
    assert caught.value.message.startswith(f"`expert-{kind}@0.1.0` cannot be served by vLLM: {reason}")
    assert not (tmp_path / "out").exists()


def test_modules_to_save_and_biases_are_refused(tiny_model: Path, tmp_path: Path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    saved = "no `modules_to_save` (fully trained `lm_head`)"
    for name, options, reason in (("saved", {"modules_to_save": ["lm_head"]}, saved),
                                  ("bias", {"bias": "lora_only"}, "no adapter biases (`bias: lora_only`)")):
        model = AutoModelForCausalLM.from_pretrained(tiny_model)
        get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], **options)).save_pretrained(tmp_path / name)
        with pytest.raises(ExportError, match=rf"vLLM loads {reason.replace('(', '.').replace(')', '.')}"):
            export_plain_lora(tmp_path / name, tmp_path / f"{name}-out", name)
