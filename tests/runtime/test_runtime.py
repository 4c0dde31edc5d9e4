"""The runtime: one base, adapters attached unmerged, switched, composed and detached (tiny model, CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from expert_factory import make_adapter

from expert_cli.core.errors import InferenceError, OutOfMemoryError, UsageError

PROMPT = [[5, 6, 7, 8, 9, 10, 11, 12]]
ADAPTERS = ("a", "b", "dora", "ia3", "pt", "ada", "kron", "kron-f", "rs")


@pytest.fixture(scope="module")
def adapters(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    specs = {"a": ("lora", 1), "b": ("lora", 2), "dora": ("dora", 3), "ia3": ("ia3", 4), "pt": ("prompt_tuning", 5),
             "ada": ("adalora", 6), "kron": ("lokr", 7), "kron-f": ("lokr-factored", 8), "rs": ("rslora", 9)}
    return {name: make_adapter(tiny_model, root / name, kind, seed) for name, (kind, seed) in specs.items()}


@pytest.fixture
def base(tiny_model: Path, adapters: dict[str, Path]):
    from expert_cli.runtime.pool import BasePool

    loaded = BasePool().get(tiny_model, device="cpu")
    for name in ADAPTERS:
        loaded.attach(name, adapters[name])
    return loaded


def logits(model, ids=PROMPT):
    with torch.inference_mode():
        return model(torch.tensor(ids)).logits


def run(base, composition=(), ids=PROMPT):
    """The base's logits with ``composition`` (names, or (name, weight) pairs) applied to every row."""
    steps = tuple((item, 1.0) if isinstance(item, str) else item for item in composition)
    with base.using_plan(base.rows_plan([steps])):
        return logits(base.model, ids)


def plain_model(tiny_model: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model).eval()


def test_an_active_adapter_changes_the_output(base, tiny_model):
    bare = logits(plain_model(tiny_model))
    assert (run(base, ["a"]) - bare).abs().max() > 1e-2


def test_no_active_expert_is_the_bare_base_bit_for_bit(base, tiny_model):
    bare = logits(plain_model(tiny_model))
    assert torch.equal(logits(base.model), bare)
    assert not torch.equal(run(base, ["a", "dora"]), bare)
    assert torch.equal(logits(base.model), bare)  # the plan ends with the run
    assert torch.equal(run(base, []), bare)


def test_switching_a_b_a_reproduces_a_exactly(base):
    first = run(base, ["a"])
    other = run(base, ["b"])
    assert torch.equal(run(base, ["a"]), first)
    assert not torch.allclose(other, first)


def test_composing_two_experts_differs_from_each(base):
    outputs = {}
    for composition in (("a",), ("b",), ("a", "b")):
        outputs[composition] = run(base, composition)
    assert not torch.allclose(outputs[("a", "b")], outputs[("a",)])
    assert not torch.allclose(outputs[("a", "b")], outputs[("b",)])
    assert torch.allclose(run(base, [("a", 0.0), ("b", 1.0)]), outputs[("b",)], atol=1e-6)


def test_base_is_loaded_once_for_many_experts(tiny_model, adapters, monkeypatch):
    import transformers

    from expert_cli.runtime.adapters.linear import module_nbytes
    from expert_cli.runtime.pool import BasePool

    calls = []
    real = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: calls.append(a) or real(*a, **k))
    pool = BasePool()
    bases = {id(pool.get(tiny_model, device="cpu")) for _ in adapters}
    loaded = pool.get(tiny_model, device="cpu")
    base_bytes = module_nbytes(loaded.model)
    for name, folder in adapters.items():
        loaded.attach(name, folder)
    assert len(bases) == 1 and pool.load_count == 1 and len(calls) == 1
    assert module_nbytes(loaded.model) == base_bytes  # nothing merged, nothing copied into the base
    assert 0 < loaded.adapters_nbytes() <= sum((f / "adapter_model.safetensors").stat().st_size for f in adapters.values())


def test_detaching_frees_the_slots_and_restores_plain_layers(base, tiny_model):
    from torch import nn

    from expert_cli.runtime.adapters.linear import AdapterLinear

    run(base, ["a"])
    for name in list(base.adapters):
        base.detach(name)
    assert base.adapters_nbytes() == 0
    assert not any(isinstance(m, AdapterLinear) for m in base.model.modules())
    assert isinstance(base.model.get_submodule("model.layers.0.self_attn.q_proj"), nn.Linear)
    assert torch.equal(logits(base.model), logits(plain_model(tiny_model)))
    with pytest.raises(InferenceError, match="not attached"):
        run(base, ["a"])


def test_a_batch_mixing_every_method_row_by_row_equals_each_row_alone(base):
    compositions = [(("a", 1.0),), (("dora", 0.5),), (("ia3", 1.0), ("kron", 1.0)), (), (("ada", 1.0),),
                    (("kron-f", 0.7), ("ia3", 0.3)), (("rs", 1.0), ("dora", 1.0))]
    ids = [[5 + row, 6, 7, 8, 9, 10, 11, 12] for row in range(len(compositions))]
    with base.using_plan(base.rows_plan(compositions)):
        batched = logits(base.model, ids)
    for row, composition in enumerate(compositions):
        assert torch.allclose(batched[row], run(base, composition, [ids[row]])[0], atol=1e-5), composition


def test_plain_lora_rows_of_a_mixed_batch_run_as_one_gathered_product(base):
    from expert_cli.runtime.adapters.linear import AdapterLinear

    # Rows with one LoRA, two composed, the same LoRA at two weights, a bare row and a DoRA row beside them.
    compositions = [(("a", 1.0),), (("b", 1.0),), (("a", 1.0), ("b", 0.5)), (("a", 0.3),), (),
                    (("rs", 1.0), ("dora", 1.0)), (("ada", 2.0),)]
    ids = [[9 + row, 6, 7, 8, 9, 10, 11, 12] for row in range(len(compositions))]
    plan = base.rows_plan(compositions)
    with base.using_plan(plan):
        batched = logits(base.model, ids)
        again = logits(base.model, ids)  # the second forward reuses the stacks built by the first
    wrapper = base.model.get_submodule("model.layers.0.self_attn.q_proj")
    assert isinstance(wrapper, AdapterLinear)
    (gathered,) = wrapper._gathered
    assert gathered.plan is plan and gathered.mask.shape[0] == len(compositions)
    stacked = [step.name for step in plan if step.name in wrapper.slots and step.name != "dora"]
    assert sorted(set(stacked)) == ["a", "b", "rs"]  # (this layer's AdaLoRA rank was pruned to 0)
    assert gathered.stack.a.shape[0] == sum(wrapper.slots[name].a.shape[0] for name in stacked)
    assert torch.equal(batched, again)
    for row, composition in enumerate(compositions):
        assert torch.allclose(batched[row], run(base, composition, [ids[row]])[0], atol=1e-5), composition
    # Rows in another order (a continuous batch after some rows left and others joined): a new plan and mask,
    # the same stacked weights, and each row still equals itself alone.
    order = [3, 0, 6, 5, 2, 1]
    moved = base.rows_plan([compositions[i] for i in order])
    with base.using_plan(moved):
        reordered = logits(base.model, [ids[i] for i in order])
    assert wrapper._gathered[-1].plan is moved and wrapper._gathered[-1].stack is gathered.stack
    for position, row in enumerate(order):
        assert torch.allclose(reordered[position], batched[row], atol=1e-5)
    base.detach("b")
    assert wrapper._gathered == [] and wrapper._stacks == []  # a detached adapter's tensors are not kept alive


def test_layers_whose_experts_differ_do_not_share_a_row_mask(tiny_model, adapters, tmp_path):
    """The gathered row mask is built once per plan and shared by layers with the same experts; two experts of
    the same rank and scale on different layers must not make one layer use the other layer's rows."""
    from expert_cli.runtime.pool import BasePool

    loaded = BasePool().get(tiny_model, device="cpu")
    loaded.attach("a", adapters["a"])
    loaded.attach("q-only", make_adapter(tiny_model, tmp_path / "q", "lora", 11, targets=["q_proj"]))
    loaded.attach("v-only", make_adapter(tiny_model, tmp_path / "v", "lora", 12, targets=["v_proj"]))
    # q_proj stacks (a, q-only) and v_proj (a, v-only): the same ranks and scales, different rows.
    compositions = [(("q-only", 1.0),), (("a", 1.0),), (("v-only", 1.0),), (("a", 1.0),)]
    ids = [[7 + row, 6, 7, 8, 9, 10, 11, 12] for row in range(len(compositions))]
    with loaded.using_plan(loaded.rows_plan(compositions)):
        batched = logits(loaded.model, ids)
    for row, composition in enumerate(compositions):
        assert torch.allclose(batched[row], run(loaded, composition, [ids[row]])[0], atol=1e-5), composition


@pytest.mark.parametrize("name", ["a", "dora", "ia3", "ada", "kron", "kron-f", "rs"])
def test_same_logits_as_stock_peft_model(base, tiny_model, adapters, name):
    from peft import PeftModel

    reference = PeftModel.from_pretrained(plain_model(tiny_model), adapters[name]).eval()
    assert torch.allclose(run(base, [name]), logits(reference), atol=1e-5)


@pytest.mark.parametrize("name", ["a", "dora", "ia3", "pt", "ada", "kron", "kron-f"])
def test_same_greedy_tokens_as_stock_peft_generate(base, tiny_model, adapters, name):
    from peft import PeftModel

    from expert_cli.runtime.decoder import BatchDecoder, RowRequest
    from expert_cli.runtime.sampling import resolve_decoding

    reference = PeftModel.from_pretrained(plain_model(tiny_model), adapters[name]).eval()
    ids = torch.tensor(PROMPT)
    with torch.inference_mode():
        expected = reference.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=10,
                                      do_sample=False, eos_token_id=None)[0, ids.shape[1]:].tolist()
    params = resolve_decoding(None, {"temperature": 0, "max_tokens": 10})
    output = BatchDecoder(base, [RowRequest(PROMPT[0], ((name, 1.0),), params)]).run()[0]
    assert output.token_ids[: len(expected)] == expected


def test_adapter_for_another_base_is_refused(tiny_model, tmp_path):
    from tiny_model import build_tiny_model

    from expert_cli.runtime.pool import BasePool

    wider = build_tiny_model(tmp_path / "wider", hidden=32)
    adapter = make_adapter(wider, tmp_path / "wide-adapter")
    base = BasePool().get(tiny_model, device="cpu")
    with pytest.raises(InferenceError, match="does not fit"):
        base.attach("wide", adapter)
    assert base.adapters == {}


def test_manifest_rope_scaling_is_applied_to_the_base_config(tiny_model):
    from expert_cli.models.loading import rope_parameters
    from expert_cli.runtime.pool import BasePool

    rope = {"type": "ntk-by-parts", "factor": 8.0, "max_position_embeddings": 4096,
            "original_max_position_embeddings": 512, "fine_grained": True, "_comment": "x"}
    params, max_positions = rope_parameters(rope, 10000.0)
    assert params == {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 8.0,
                      "original_max_position_embeddings": 512, "attention_factor": 1.0}
    pool = BasePool()
    scaled = pool.get(tiny_model, device="cpu", rope_scaling=rope)
    assert scaled.model.config.rope_parameters["rope_type"] == "yarn"
    assert scaled.model.config.max_position_embeddings == max_positions == 4096
    assert pool.get(tiny_model, device="cpu") is not scaled
    with pytest.raises(InferenceError, match="unknown `rope_scaling` type"):
        rope_parameters({"type": "wobbly", "factor": 2}, 1.0)


def test_device_resolution():
    from expert_cli.models.device import resolve_placement

    assert resolve_placement("cpu").dtype == "float32"
    if not torch.cuda.is_available():
        assert resolve_placement("auto").device == "cpu"
        with pytest.raises(InferenceError, match="CUDA is not available"):
            resolve_placement("cuda:0")
    with pytest.raises(UsageError, match="unknown device"):
        resolve_placement("tpu")


def test_out_of_memory_becomes_an_expert_error_with_a_hint():
    from expert_cli.models.device import translate_oom

    with pytest.raises(OutOfMemoryError) as caught, translate_oom("generating", "cuda:0"):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert "generating" in caught.value.message and "max_tokens" in caught.value.hint
    with pytest.raises(ValueError), translate_oom("generating"):
        raise ValueError("unrelated")


def test_soft_prompts_are_prepended_to_every_prompt_the_expert_answers(tiny_model, adapters, tmp_path):
    from peft import PeftModel

    from expert_cli.runtime.decoder import BatchDecoder, RowRequest
    from expert_cli.runtime.pool import BasePool
    from expert_cli.runtime.sampling import resolve_decoding

    reference = PeftModel.from_pretrained(plain_model(tiny_model), adapters["a"]).eval()
    embed = reference.get_input_embeddings()
    soft = torch.randn(3, embed.embedding_dim, generator=torch.Generator().manual_seed(9))
    torch.save(soft, tmp_path / "style.pt")
    base = BasePool().get(tiny_model, device="cpu")
    base.attach("styled", adapters["a"], [tmp_path / "style.pt"])
    assert torch.equal(base.prompt_prefix((("styled", 1.0),)), soft)
    embeds, expected = torch.cat([soft, embed(torch.tensor(PROMPT[0]))])[None], []
    with torch.inference_mode():
        for _ in range(6):  # greedy by hand: the LoRA model fed the soft prompt, then the prompt
            expected.append(int(reference(inputs_embeds=embeds).logits[0, -1].argmax()))
            embeds = torch.cat([embeds, embed(torch.tensor([[expected[-1]]]))], dim=1)
    params = resolve_decoding(None, {"temperature": 0, "max_tokens": 6})
    output = BatchDecoder(base, [RowRequest(PROMPT[0], (("styled", 1.0),), params)]).run()[0]
    assert output.token_ids and output.token_ids == expected[: len(output.token_ids)]


def test_a_text_soft_prompt_is_the_embedding_of_its_tokens(tiny_model, adapters, tmp_path):
    from expert_cli.runtime.pool import BasePool

    (tmp_path / "hint.bin").write_text("answer in SQL", encoding="utf-8")  # how the original read soft prompts
    base = BasePool().get(tiny_model, device="cpu")
    base.attach("hinted", adapters["a"], [tmp_path / "hint.bin"])
    ids = base.tokenizer("answer in SQL", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        expected = base.model.get_input_embeddings()(torch.tensor(ids))
    assert torch.equal(base.prompt_prefix((("hinted", 1.0),)), expected)


def test_a_soft_prompt_for_another_base_is_refused(tiny_model, adapters, tmp_path):
    from expert_cli.runtime.pool import BasePool

    torch.save(torch.zeros(2, 7), tmp_path / "wide.pt")
    base = BasePool().get(tiny_model, device="cpu")
    with pytest.raises(InferenceError, match=r"soft prompt `.*wide.pt` holds a \(2, 7\) tensor"):
        base.attach("wide", adapters["a"], [tmp_path / "wide.pt"])
    assert "wide" not in base.adapters
