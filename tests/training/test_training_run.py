"""Training on the tiny model: every adapter type and dataset format, resume, Ctrl-C, and that it really learns."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from training_helpers import build_learnable_model, chat_rows, make_expert, write_jsonl

from expert_cli.core.errors import DatasetError
from expert_cli.manifest.model import model_slug
from expert_cli.training.trainer import TrainingInterrupted, TrainRequest, train_expert

FIXTURE_MULTITASK = "datasets/expert-json-text_to_schema-test.multitask.jsonl"


def train(expert: Path, **options):
    return train_expert(TrainRequest(target=expert, **{"max_steps": 1, **options}))


def load_with_stock_peft(base: Path, adapter: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)
    with torch.no_grad():
        output = model(input_ids=torch.tensor([[5, 6, 7, 8]]))
    assert output.logits.shape[:2] == (1, 4 + model.peft_config["default"].__dict__.get("num_virtual_tokens", 0))
    return model


@pytest.mark.parametrize("adapter, expected", [
    ({"type": "lora", "target_modules": ["k_proj", "o_proj"], "r": 6, "alpha": 12, "dropout": 0.2},
     {"peft_type": "LORA", "r": 6, "lora_alpha": 12, "lora_dropout": 0.2, "use_dora": False,
      "target_modules": ["k_proj", "o_proj"]}),
    ({"type": "dora", "target_modules": ["q_proj", "v_proj"], "r": 4, "alpha": 8},
     {"peft_type": "LORA", "use_dora": True, "r": 4, "lora_alpha": 8, "lora_dropout": 0.05}),
    ({"type": "ia3", "target_modules": ["k_proj", "v_proj", "down_proj"], "feedforward_modules": ["down_proj"]},
     {"peft_type": "IA3", "feedforward_modules": ["down_proj"], "target_modules": ["down_proj", "k_proj", "v_proj"]}),
    ({"type": "lokr", "target_modules": ["q_proj"], "r": 2, "alpha": 4}, {"peft_type": "LOKR", "r": 2, "alpha": 4}),
])
def test_each_adapter_type_trains_and_loads_with_stock_peft(tmp_path, tiny_model, adapter, expected):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(6), adapter=adapter)
    result = train(expert)
    config = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    for key, value in expected.items():
        assert (sorted(config[key]) if isinstance(value, list) else config[key]) == value, key
    assert config["base_model_name_or_path"] == str(tiny_model)
    assert result.adapter_dir == expert / "weights" / model_slug(str(tiny_model)) / "adapter"
    assert (result.adapter_dir / "tokenizer.json").is_file() and not (result.adapter_dir / "README.md").exists()
    load_with_stock_peft(tiny_model, result.adapter_dir)


@pytest.mark.parametrize("adapter", [
    {"type": "adalora", "target_modules": ["q_proj", "v_proj"], "r": 4, "alpha": 8},
    {"type": "lokr", "target_modules": ["q_proj", "down_proj"], "r": 2, "alpha": 4},
])
def test_an_expert_of_another_adapter_family_trains_and_the_runtime_serves_it_as_stock_peft_does(
        tmp_path, tiny_model, adapter):
    import torch

    from expert_cli.runtime.pool import BasePool

    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(6), adapter=adapter)
    result = train(expert, max_steps=6)
    config = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == adapter["type"].upper()
    reference = load_with_stock_peft(tiny_model, result.adapter_dir).eval()
    base = BasePool().get(tiny_model, device="cpu")
    base.attach("trained", result.adapter_dir)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad(), base.using_plan(base.rows_plan([(("trained", 1.0),)])):
        expected = reference(input_ids=ids).logits
        with reference.disable_adapter():
            assert not torch.allclose(expected, reference(input_ids=ids).logits)  # it learned something
        assert torch.allclose(base.model(ids).logits, expected, atol=1e-5)


def test_soft_prompts_train_ship_in_the_package_and_are_served(tmp_path, tiny_model):
    import torch
    from safetensors.torch import load_file

    from expert_cli.packages.build import build_package
    from expert_cli.packages.install import install_expert
    from expert_cli.packages.staging import InstallOptions
    from expert_cli.sdk.expert import Expert

    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(6), soft_prompts=[
        {"name": "style", "path": "soft_prompts/style.bin", "tokens": 4, "init_method": "random"}])
    result = train(expert)
    folder = Path(result.soft_prompts[0])
    assert folder == result.adapter_dir.parent / "soft_prompts" / "style"
    config = json.loads((folder / "adapter_config.json").read_text())
    assert (config["peft_type"], config["num_virtual_tokens"]) == ("PROMPT_TUNING", 4)
    tensor_file = folder.parent / "style.bin"  # what the manifest names, as the embeddings tensor
    embeddings = torch.load(tensor_file, weights_only=True)
    assert torch.equal(embeddings, load_file(folder / "adapter_model.safetensors")["prompt_embeddings"])

    package = build_package(expert, tmp_path / "dist")
    installed = install_expert(str(package.path), InstallOptions(allow_unsigned=True))
    shipped = Path(installed.path) / "soft_prompts" / "style.bin"  # at its manifest path
    served = Expert.load(installed.path, "cpu")
    assert served.bundle.soft_prompt_files == (shipped,)
    prefix = served.base.prompt_prefix(((served.slot, 1.0),))
    assert torch.equal(prefix, embeddings)
    served.unload()


def _format_cases(fixtures: Path) -> dict[str, tuple[list | None, dict]]:
    chatml = "<|im_start|>user\nshow users<|im_end|>\n<|im_start|>assistant\nSELECT name FROM users;<|im_end|>"
    legacy = "<|system|>\nTask: sql\n<|end|>\n<|user|>\nshow users\n<|end|>\n<|assistant|>\nSELECT 1;\n<|end|>"
    return {
        "messages": (chat_rows(4), {}),
        "prompt_completion": ([{"prompt": "Q: users?\nA:", "completion": " SELECT name FROM users;"}] * 4, {}),
        "instruction": ([{"instruction": "list users", "input": "CREATE TABLE users (name TEXT);",
                          "output": "SELECT name FROM users;"}] * 4, {}),
        "text_chatml": ([{"text": chatml}] * 4, {}),
        "text_legacy": ([{"text": legacy}] * 4, {"prompt_template": "chatml"}),
        "multitask": (None, {"dataset": {"type": "multi_task", "tasks": {"json": {
            "train": str(fixtures / FIXTURE_MULTITASK), "weight": 1.0, "format": "sft"}}}}),
    }


@pytest.mark.parametrize("name", ["messages", "prompt_completion", "instruction", "text_chatml", "text_legacy",
                                  "multitask"])
def test_every_dataset_format_trains(tmp_path, tiny_model, fixtures_dir, name):
    rows, options = _format_cases(fixtures_dir)[name]
    expert = make_expert(tmp_path / "e", tiny_model, rows, **options)
    result = train(expert)
    assert result.steps == 1 and result.tokens > 0 and result.train_loss is not None
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()


def test_a_hugging_face_style_dataset_with_a_split_trains(tmp_path, tiny_model):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_list(chat_rows(4))}).save_to_disk(tmp_path / "hf")
    expert = make_expert(tmp_path / "e", tiny_model, None, dataset={"path": f"{tmp_path / 'hf'}::train"})
    assert train(expert).dataset["train_examples"] == 4


def test_a_bad_row_stops_training_before_the_model_loads(tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(2) + [{"messages": "oops"}])
    with pytest.raises(DatasetError, match=r"train\.jsonl:3`: `messages` must be a non-empty list"):
        train(expert)
    assert not (expert / "weights").exists()


def test_a_bad_soft_prompt_stops_training_before_the_adapter_trains(tmp_path, tiny_model):
    from expert_cli.core.errors import TrainingError

    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(6), soft_prompts=[
        {"name": "style", "path": "soft_prompts/style.txt", "tokens": 4}])
    with pytest.raises(TrainingError, match=r"soft prompt `style`: `path` `soft_prompts/style.txt` must name a "
                                            r"\.pt, \.bin, \.safetensors file"):
        train(expert)
    assert not (expert / "weights" / model_slug(str(tiny_model)) / "adapter").exists()


def test_ctrl_c_saves_a_checkpoint_and_resume_continues_from_its_step(tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(8), config={"save_strategy": "no"})
    calls: list[tuple[str, float]] = []

    def press_ctrl_c_at_step_2(task: str, completed: float, total: float | None) -> None:
        calls.append((task, completed))
        if task.startswith("training") and completed == 2:
            signal.raise_signal(signal.SIGINT)

    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in a background job
    with pytest.raises(TrainingInterrupted, match="interrupted at step 2") as caught:
        train_expert(TrainRequest(target=expert, max_steps=4), progress=press_ctrl_c_at_step_2)
    assert caught.value.exit_code == 130 and "--resume" in caught.value.hint
    checkpoints = expert / "weights" / model_slug(str(tiny_model)) / "checkpoints"
    assert [p.name for p in checkpoints.glob("checkpoint-*")] == ["checkpoint-2"]
    assert signal.getsignal(signal.SIGINT) is handler_before  # our handler is gone again

    calls.clear()
    result = train_expert(TrainRequest(target=expert, max_steps=4, resume=True),
                          progress=lambda t, c, n: calls.append((t, c)))
    assert result.steps == 4 and result.resumed_from == str(checkpoints / "checkpoint-2")
    assert next(c for t, c in calls if t.startswith("training")) == 2


def test_resume_without_a_checkpoint_says_so(tmp_path, tiny_model):
    from expert_cli.core.errors import TrainingError

    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(4))
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        train(expert, resume=True)


def test_base_model_flag_picks_the_manifest_entry_by_slug(tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(4),
                         adapter={"type": "lora", "target_modules": ["q_proj"], "r": 3, "alpha": 6})
    manifest = json.loads((expert / "manifest.json").read_text())
    manifest["base_models"].insert(0, {"name": "Qwen/Qwen3-0.6B", "adapters": [
        {"type": "lora", "target_modules": ["q_proj"], "r": 16, "alpha": 32}]})
    (expert / "manifest.json").write_text(json.dumps(manifest))
    result = train(expert, base_model=str(tiny_model), output=tmp_path / "w")
    assert result.adapter["r"] == 3 and result.adapter_dir.parent.parent == tmp_path / "w"


@pytest.mark.slow
def test_training_really_learns_and_beats_the_bare_base(tmp_path):
    """Questions about users get SQL, greetings get a greeting; held-out numbers were never trained on."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tiny_model = build_learnable_model(tmp_path / "base")

    def rows(numbers):
        return ([{"messages": [{"role": "user", "content": f"show the users {n}"},
                               {"role": "assistant", "content": "SELECT name FROM users;"}]} for n in numbers]
                + [{"messages": [{"role": "user", "content": f"hello there {n}"},
                                 {"role": "assistant", "content": "Hello! How can I help you today?"}]}
                   for n in numbers])

    write_jsonl(tmp_path / "e" / "data" / "valid.jsonl", rows(range(100, 104)))
    expert = make_expert(tmp_path / "e", tiny_model, rows(range(40)), dataset={
        "path": "data/train.jsonl", "validation_path": "data/valid.jsonl"}, config={
        "learning_rate": 0.05, "batch_size": 8, "epochs": 40, "logging_steps": 5},
        adapter={"type": "lora", "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                     "up_proj", "down_proj"], "r": 8, "alpha": 16, "dropout": 0.0})
    result = train_expert(TrainRequest(target=expert))
    state = json.loads((Path(result.best_checkpoint) / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert losses[-1] < losses[0] / 3

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    held_out = [(f"show the users {n}", "SELECT name FROM users;") for n in (200, 301, 777)] + \
               [(f"hello there {n}", "Hello! How can I help you today?") for n in (200, 301, 777)]

    def exact_matches(model) -> int:
        hits = 0
        for question, answer in held_out:
            from expert_cli.prompts.templates import build_prompt

            prompt = build_prompt(tokenizer, question, None, capabilities=["database:sql"])
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            with torch.no_grad():
                out = model.generate(ids, max_new_tokens=40, do_sample=False)
            text = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
            print(repr(text))
            hits += text == answer
        return hits

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    expert_model = load_with_stock_peft(tiny_model, result.adapter_dir)
    assert exact_matches(expert_model) >= 5 > exact_matches(base)
