"""The runtime on a Llama-architecture base (SmolLM2's): adapters attached unmerged give stock PEFT's logits
and greedy tokens, on a tiny random Llama imported from a GGUF as ``expert-cli model import`` does."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from expert_factory import make_adapter
from gguf_files import build_tiny_llama, write_gguf

PROMPT = [[5, 6, 7, 8, 9, 10, 11, 12]]
KINDS = {"lora": 1, "dora": 2, "ia3": 3, "lokr": 4}


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama after a round trip through GGUF, converted as the model store's import does."""
    from expert_cli.models.gguf import load_gguf, read_gguf_header, save_model_folder

    root = tmp_path_factory.mktemp("llama-base")
    header = read_gguf_header(write_gguf(build_tiny_llama(root / "source", seed=3), root / "tiny-llama.gguf"))
    model, tokenizer = load_gguf(header, "float32")
    save_model_folder(model, tokenizer, root / "tiny-llama", "tiny-llama", "fp32", str(header.path), "-")
    return root / "tiny-llama"


@pytest.fixture(scope="module")
def adapters(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("llama-adapters")
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return {kind: make_adapter(llama, root / kind, kind, seed, targets=None if kind == "ia3" else targets)
            for kind, seed in KINDS.items()}


@pytest.fixture
def base(llama: Path, adapters: dict[str, Path]):
    from expert_cli.runtime.pool import BasePool

    loaded = BasePool().get(llama, device="cpu")
    for name, path in adapters.items():
        loaded.attach(name, path)
    return loaded


def plain(llama: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(llama).eval()


def logits(model):
    with torch.inference_mode():
        return model(torch.tensor(PROMPT)).logits


@pytest.mark.parametrize("kind", list(KINDS))
def test_same_logits_as_stock_peft_on_a_llama_base(base, llama, adapters, kind):
    from peft import PeftModel

    reference = PeftModel.from_pretrained(plain(llama), adapters[kind]).eval()
    with base.using_plan(base.rows_plan([((kind, 1.0),)])):
        served = logits(base.model)
    assert not torch.allclose(served, logits(plain(llama)), atol=1e-3)  # the adapter does something
    assert torch.allclose(served, logits(reference), atol=1e-5)


def test_same_greedy_tokens_as_stock_peft_generate_on_a_llama_base(base, llama, adapters):
    from peft import PeftModel

    from expert_cli.runtime.decoder import BatchDecoder, RowRequest
    from expert_cli.runtime.sampling import resolve_decoding

    reference = PeftModel.from_pretrained(plain(llama), adapters["lora"]).eval()
    ids = torch.tensor(PROMPT)
    with torch.inference_mode():
        expected = reference.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=10,
                                      do_sample=False, eos_token_id=None)[0, ids.shape[1]:].tolist()
    params = resolve_decoding(None, {"temperature": 0, "max_tokens": 10})
    output = BatchDecoder(base, [RowRequest(PROMPT[0], (("lora", 1.0),), params)]).run()[0]
    assert output.token_ids[: len(expected)] == expected


def test_no_adapter_is_the_bare_llama_bit_for_bit(base, llama):
    assert torch.equal(logits(base.model), logits(plain(llama)))


def test_rows_joining_a_ragged_continuous_batch_on_a_llama_base_answer_as_alone(base):
    from expert_cli.runtime.continuous import ContinuousBatch
    from expert_cli.runtime.decoder import BatchDecoder, RowRequest
    from expert_cli.runtime.sampling import resolve_decoding

    compositions = [(("lora", 1.0),), (("dora", 1.0),), (), (("ia3", 1.0), ("lokr", 1.0)), (("lora", 0.5),)]
    rows = [RowRequest(list(range(5 + i, 12 + 2 * i)), composition,
                       resolve_decoding(None, {"temperature": 0, "max_tokens": 4 + i, "ignore_eos": True}))
            for i, composition in enumerate(compositions)]
    expected = [BatchDecoder(base, [row]).run()[0].token_ids for row in rows]
    batch = ContinuousBatch(base)
    assert batch.ragged  # Llama with SDPA attention takes the one-forward path
    live = batch.admit(rows[:2])
    batch.step()
    live += batch.admit(rows[2:])  # three prompts of other lengths join two running rows
    while len(batch):
        batch.step()
        batch.take_finished()
    assert [row.generated for row in live] == expected
