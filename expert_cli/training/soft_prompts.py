"""Prompt tuning for the manifest's ``soft_prompts[]`` (never reached in the original trainer).

Each soft prompt is trained after the main adapter, on the same data, on top of the expert: the adapter is
merged into an in-memory copy of the base for this step only (the shipped adapter stays a separate file),
so the virtual tokens learn to work with the adapter they will be used with. Each one is written twice: as a
plain PEFT prompt-tuning folder ``weights/<model_slug>/soft_prompts/<name>/``, and as the embeddings tensor
at ``weights/<model_slug>/soft_prompts/<file name of its manifest path>``, which ``package`` ships and the
runtime prepends to every prompt the expert answers.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from expert_cli.core.progress import ProgressCallback
from expert_cli.training.checkpoints import save_adapter_folder
from expert_cli.training.peft_configs import build_prompt_tuning_config

PROMPT_TUNING_LEARNING_RATE = 3e-2  # virtual tokens need a far larger step than LoRA weights


def train_soft_prompts(session: Any, folder: Path, expert_model: Any, progress: ProgressCallback | None) -> list[str]:
    """Train every soft prompt; returns the folders written."""
    from expert_cli.training.callbacks import ProgressReporter, quiet_trainer
    from expert_cli.training.config import make_sft_config
    from expert_cli.training.sft import trainer_class

    base = _expert_as_plain_model(expert_model, session.notes)
    train_set, _, _ = session.datasets()
    written = []
    for soft_prompt in session.manifest.soft_prompts:
        settings = copy.deepcopy(session.settings)
        settings.args.update(output_dir=str(folder / f".{soft_prompt.name}-checkpoints"), save_strategy="no",
                             eval_strategy="no", load_best_model_at_end=False,
                             learning_rate=PROMPT_TUNING_LEARNING_RATE)
        settings.args.pop("metric_for_best_model", None)
        args = make_sft_config(settings, use_cpu=not session.device.on_cuda)
        config = build_prompt_tuning_config(soft_prompt, str(session.model_dir))
        trainer = trainer_class(session.device.on_cuda)(
            model=base, args=args, train_dataset=train_set, processing_class=session.tokenizer, peft_config=config,
            callbacks=[ProgressReporter(_named(progress, soft_prompt.name))])
        quiet_trainer(trainer).train()
        target = folder / soft_prompt.name
        trained = trainer.accelerator.unwrap_model(trainer.model)
        save_adapter_folder(trained, session.tokenizer, target, session.choice.name)
        embeddings = trained.get_prompt_embedding_to_save("default")
        write_soft_prompt(folder / Path(soft_prompt.path).name, embeddings)
        written.append(str(target))
    return written


def write_soft_prompt(path: Path, embeddings: Any) -> None:
    """The ``(tokens, hidden)`` embeddings as ``path``'s extension says: safetensors, else ``torch.save``."""
    import torch

    tensor = embeddings.detach().to("cpu", torch.float32).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({"prompt_embeddings": tensor}, str(path))
    else:
        torch.save(tensor, path)


def _expert_as_plain_model(model: Any, note: Any) -> Any:
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        note("soft prompts on a quantized base are trained without the adapter merged in")
        return model.get_base_model() if hasattr(model, "get_base_model") else model
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def _named(progress: ProgressCallback | None, name: str) -> ProgressCallback | None:
    if progress is None:
        return None

    def forward(task: str, completed: float, total: float | None) -> None:
        progress(task.replace("training", f"soft prompt {name}", 1), completed, total)

    return forward
