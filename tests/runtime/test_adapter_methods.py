"""Adapter methods, one module each: the manifest's table, training's builders and the runtime's readers agree,
and what the runtime cannot apply unmerged is refused by name (tiny model, CPU)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from expert_factory import TARGETS, make_adapter

from expert_cli.core.errors import InferenceError
from expert_cli.manifest.adapter_types import ADAPTER_METHODS
from expert_cli.manifest.rules import load_schema


def schema_type_lists() -> tuple[list[set[str]], list[set[str]]]:
    """Every enum of adapter types in the bundled schema, and every list of types that require `r`/`alpha`."""
    declared, ranked = [], []

    def walk(node):
        if isinstance(node, dict):
            enum = node.get("type", {}).get("enum") if isinstance(node.get("type"), dict) else None
            if enum and "lora" in enum:
                declared.append(set(enum))
            if isinstance(node.get("if"), dict) and node.get("then", {}).get("required") == ["r", "alpha"]:
                ranked.append(set(node["if"]["properties"]["type"]["enum"]))
            for key, child in node.items():
                if key != "if":  # a condition's enum is a subset, collected as `ranked`
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(load_schema())
    return declared, ranked


def test_every_manifest_adapter_type_trains_is_served_and_is_in_the_schema():
    from expert_cli.runtime.adapters.registry import READERS
    from expert_cli.training.peft_configs import BUILDERS

    assert set(BUILDERS) == set(ADAPTER_METHODS)
    assert {method.peft_type for method in ADAPTER_METHODS.values()} <= set(READERS)
    declared, ranked = schema_type_lists()
    assert declared and all(types == {"lora", "dora", "lokr", "adalora", "ia3"} for types in declared)
    assert ranked and all(types == {"lora", "dora", "lokr", "adalora"} for types in ranked)
    assert {name for name, method in ADAPTER_METHODS.items() if method.ranked} == {"lora", "dora", "lokr", "adalora"}


def test_a_type_the_runtime_cannot_apply_is_refused_by_name_before_reading_weights(tiny_model, tmp_path):
    from expert_cli.runtime.pool import BasePool

    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LOHA", "r": 4}), encoding="utf-8")
    base = BasePool().get(tiny_model, device="cpu")
    with pytest.raises(InferenceError) as caught:
        base.attach("loha", tmp_path)  # no weight file: refused on its type alone
    assert caught.value.message.startswith("adapter type `LOHA` is not supported by the runtime")
    assert "lora, adalora, lokr, ia3, prompt_tuning" in caught.value.message
    assert base.adapters == {}


def test_a_lora_bias_is_refused_by_its_tensor_name(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from expert_cli.runtime.pool import BasePool

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=2, lora_alpha=4, target_modules=TARGETS, lora_bias=True))
    model.save_pretrained(tmp_path / "biased")
    base = BasePool().get(tiny_model, device="cpu")
    with pytest.raises(InferenceError, match=r"holds `base_model\.model\..*\.lora_B\.bias`, which the runtime "
                                             r"cannot apply unmerged"):
        base.attach("biased", tmp_path / "biased")
    assert base.adapters == {} and base.adapters_nbytes() == 0


def test_an_incomplete_lora_pair_is_named(tiny_model, tmp_path):
    from safetensors.torch import load_file, save_file

    from expert_cli.runtime.pool import BasePool

    folder = make_adapter(tiny_model, tmp_path / "cut", "lora")
    tensors = load_file(folder / "adapter_model.safetensors")
    key = next(k for k in tensors if k.endswith("layers.0.self_attn.q_proj.lora_B.weight"))
    save_file({k: v for k, v in tensors.items() if k != key}, str(folder / "adapter_model.safetensors"))
    base = BasePool().get(tiny_model, device="cpu")
    with pytest.raises(InferenceError, match=r"incomplete LoRA pair for `model\.layers\.0\.self_attn\.q_proj`"):
        base.attach("cut", folder)


def test_attached_bytes_count_every_tensor_of_each_methods_slots(tiny_model, tmp_path):
    from safetensors.torch import load_file

    from expert_cli.runtime.pool import BasePool

    base = BasePool().get(tiny_model, device="cpu")
    for kind in ("lora", "dora", "ia3", "prompt_tuning"):  # kept as saved (LoKr multiplies its pairs out)
        folder = make_adapter(tiny_model, tmp_path / kind, kind)
        on_disk = sum(t.numel() * t.element_size() for t in load_file(folder / "adapter_model.safetensors").values())
        assert base.attach(kind, folder).nbytes == on_disk, kind
