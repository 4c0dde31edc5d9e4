"""``expert-cli train``: one manifest + one dataset -> a plain PEFT adapter folder, in-process, on TRL's SFTTrainer.

Layout (what ``package`` reads)::

    EXPERT_DIR/weights/<model_slug>/adapter/                 adapter_config.json, adapter_model.safetensors,
                                                             tokenizer files
    EXPERT_DIR/weights/<model_slug>/checkpoints/checkpoint-N/
    EXPERT_DIR/weights/<model_slug>/soft_prompts/<name>/     one PEFT prompt-tuning folder per soft prompt,
    EXPERT_DIR/weights/<model_slug>/soft_prompts/<file>      and its embeddings at its manifest path's file name
    EXPERT_DIR/weights/<model_slug>/training_summary.json

``--output DIR`` replaces ``EXPERT_DIR/weights``. The final adapter is the best checkpoint by eval loss when
there is evaluation data, else the last weights, and it is moved into place only once complete.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from expert_cli.core.errors import TrainingError
from expert_cli.core.files import check_creatable_dir
from expert_cli.core.progress import ProgressCallback, report
from expert_cli.manifest.model import Manifest, load_manifest
from expert_cli.training.base_choice import BaseModelChoice, choose_base_model
from expert_cli.training.checkpoints import clear_checkpoints, find_resume_checkpoint, save_adapter_folder
from expert_cli.training.config import TrainingSettings, resolve_settings
from expert_cli.training.datasets import TrainingData, load_training_data
from expert_cli.training.peft_configs import AdapterPlan, check_soft_prompt, plan_adapter
from expert_cli.training.ranks import is_main_process, split_global_batch, world_size

SUMMARY_FILE = "training_summary.json"


class TrainingInterrupted(TrainingError):
    """Ctrl-C during training: a checkpoint was saved; ``--resume`` continues from it."""

    exit_code = 130


@dataclass
class TrainRequest:
    target: Path = Path(".")
    dataset: str | None = None
    output: Path | None = None
    base_model: str | None = None
    epochs: float | None = None
    max_steps: int | None = None
    device: str = "auto"
    resume: bool = False
    resume_from: Path | None = None


@dataclass
class RunFigures:
    """What one trainer run measured: the session's outcome and the public result share these."""

    steps: int
    epochs: float
    train_loss: float | None
    eval_loss: float | None
    test_loss: float | None
    best_checkpoint: str | None
    tokens: int
    tokens_per_second: float
    train_seconds: float
    train_cpu_seconds: float

    def rounded(self) -> dict[str, Any]:
        """The figures as a summary shows them (epochs to 3 places, speeds and seconds to 1-2)."""
        return {**{f.name: getattr(self, f.name) for f in fields(RunFigures)},
                "epochs": round(self.epochs, 3), "tokens_per_second": round(self.tokens_per_second, 1),
                "train_seconds": round(self.train_seconds, 2), "train_cpu_seconds": round(self.train_cpu_seconds, 2)}


@dataclass
class TrainResult(RunFigures):
    """The run's figures plus what was trained, where it went and how long it all took."""

    expert: str
    version: str
    base_model: str
    adapter: dict[str, Any]
    adapter_dir: Path
    checkpoints_dir: Path
    device: str
    wall_seconds: float
    resumed_from: str | None
    dataset: dict[str, Any]
    soft_prompts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Flat: what was trained and where first, then the run's figures."""
        figures = {f.name for f in fields(RunFigures)}
        names = sorted((f.name for f in fields(self)), key=lambda name: name in figures)
        data = {name: getattr(self, name) for name in names}
        data["adapter_dir"], data["checkpoints_dir"] = str(self.adapter_dir), str(self.checkpoints_dir)
        return data


class Notes:
    """Warnings shown once each, as they happen (the CLI prints them on stderr), and kept for the summary."""

    def __init__(self, warn: Callable[[str], None] | None) -> None:
        self.warn = warn
        self.items: list[str] = []

    def __call__(self, message: str) -> None:
        if message in self.items:
            return
        self.items.append(message)
        if self.warn is not None:
            self.warn(message)

    def extend(self, messages: list[str]) -> None:
        for message in messages:
            self(message)


def train_expert(request: TrainRequest, progress: ProgressCallback | None = None,
                 warn: Callable[[str], None] | None = None) -> TrainResult:
    """Train the manifest's adapter (and soft prompts) and write them under ``weights/<model_slug>/``."""
    started = time.perf_counter()
    notes = Notes(warn)
    manifest = load_manifest(request.target)
    choice = choose_base_model(manifest, request.base_model)
    run_dir = (Path(request.output) if request.output else _root(manifest) / "weights") / choice.slug
    checkpoints = run_dir / "checkpoints"
    check_creatable_dir(checkpoints)  # an `--output` below a file fails before the model and data load
    resume = find_resume_checkpoint(checkpoints, request.resume, request.resume_from)
    config = manifest.training_config_for(choice.spec.name)  # the base model's own overrides merged in
    for soft_prompt in manifest.soft_prompts:  # they train last: a bad entry must not cost the whole run
        check_soft_prompt(soft_prompt)
    if manifest.soft_prompts and world_size() > 1:
        raise TrainingError(f"`{manifest.name}` has soft prompts, which train in one process only",
                            hint="train it without `--processes` (or with one process per machine)")
    seed = int(config.get("seed", 42))
    data = load_training_data(manifest, request.dataset, seed=seed, warn=notes)
    report(progress, "loading base model", 0, None)
    from expert_cli.training.model import choose_device, locate_base_model

    model_dir = locate_base_model(choice.name)
    device = choose_device(request.device)
    settings = resolve_settings(config, output_dir=checkpoints, on_cuda=device.on_cuda,
                                bf16_supported=device.dtype == "bfloat16", has_eval=bool(data.eval),
                                epochs=request.epochs, max_steps=request.max_steps)
    notes.extend(split_global_batch(settings.args, world_size()))  # the manifest's batch stays the global one
    plan = _plan(config, choice, notes)
    if resume is None and is_main_process():
        clear_checkpoints(checkpoints, notes)
    session = _TrainingSession(manifest, choice, model_dir, device, settings, data, notes)
    with warnings.catch_warnings():  # transformers 5 deprecation chatter from inside TRL/PEFT, not ours to fix
        warnings.filterwarnings("ignore", message=".*deprecated and will be removed in v6.*", category=FutureWarning)
        outcome = session.run(plan, resume, progress)
    adapter_dir = run_dir / "adapter"
    if not is_main_process():  # data-parallel: rank 0 writes the one adapter folder
        return _result(manifest, choice, plan, device.device, data, outcome, adapter_dir, checkpoints, resume,
                       time.perf_counter() - started, [], notes.items)
    save_adapter_folder(outcome.model, session.tokenizer, adapter_dir, choice.name)
    soft_prompts = session.train_soft_prompts(run_dir / "soft_prompts", outcome.model, progress)
    result = _result(manifest, choice, plan, device.device, data, outcome, adapter_dir, checkpoints, resume,
                     time.perf_counter() - started, soft_prompts, notes.items)
    (run_dir / SUMMARY_FILE).write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n",
                                        encoding="utf-8")
    return result


def _root(manifest: Manifest) -> Path:
    assert manifest.root is not None
    return manifest.root


def _plan(config: dict[str, Any], choice: BaseModelChoice, notes: Notes) -> AdapterPlan:
    adapters = choice.spec.adapters
    if len(adapters) > 1:
        notes(f"`{choice.spec.name}` lists {len(adapters)} adapters; training the first (`{adapters[0].type}`)")
    messages: list[str] = []
    plan = plan_adapter(adapters[0], config, messages)
    notes.extend(messages)
    return plan


@dataclass
class _Outcome:
    model: Any
    figures: RunFigures


class _TrainingSession:
    """The heavy part: tokenizer, model, TRL trainer. Imports torch/transformers/peft/trl lazily."""

    def __init__(self, manifest: Manifest, choice: BaseModelChoice, model_dir: Path, device: Any,
                 settings: TrainingSettings, data: TrainingData, notes: Notes) -> None:
        from expert_cli.training.callbacks import quiet_libraries
        from expert_cli.training.model import load_tokenizer

        quiet_libraries()
        self.manifest, self.choice, self.model_dir = manifest, choice, model_dir
        self.device, self.settings, self.data, self.notes = device, settings, data, notes
        self.tokenizer = load_tokenizer(model_dir)

    def datasets(self) -> tuple[Any, Any, Any]:
        from expert_cli.training.render import to_hf_dataset

        template, capabilities = self.choice.spec.prompt_template, self.manifest.capabilities
        return tuple(to_hf_dataset(part, self.tokenizer, template, capabilities)  # type: ignore[return-value]
                     for part in (self.data.train, self.data.eval, self.data.test))

    def run(self, plan: AdapterPlan, resume: Path | None, progress: ProgressCallback | None) -> _Outcome:
        from expert_cli.training.callbacks import AdaLoraAllocator, InterruptHandler, ProgressReporter
        from expert_cli.training.peft_configs import build_peft_config

        train_set, eval_set, test_set = self.datasets()
        model = self._model()
        args = self._sft_config(model)
        peft_config = build_peft_config(plan, total_steps=self._total_steps(args))
        reporter, interrupt = ProgressReporter(progress), InterruptHandler(self.notes)
        callbacks = [reporter, interrupt] + ([AdaLoraAllocator()] if plan.type == "adalora" else [])
        trainer = self._trainer(model, args, train_set, eval_set, peft_config, callbacks)
        from expert_cli.training.model import cpu_threads

        started = time.perf_counter()
        with interrupt.installed(), cpu_threads(model, self.device):
            output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        if interrupt.requested:
            raise TrainingInterrupted(
                f"training interrupted at step {trainer.state.global_step}; checkpoint saved in "
                f"`{args.output_dir}`", hint="continue with `expert-cli train <expert> --resume`")
        seconds = time.perf_counter() - started
        with cpu_threads(model, self.device):
            test_loss = trainer.evaluate(test_set, metric_key_prefix="test")["test_loss"] if test_set else None
        figures = RunFigures(
            steps=trainer.state.global_step, epochs=float(trainer.state.epoch or 0.0),
            train_loss=_last(trainer, "loss", output.training_loss), eval_loss=_best_eval(trainer),
            test_loss=test_loss, best_checkpoint=trainer.state.best_model_checkpoint,
            tokens=int(trainer.state.num_input_tokens_seen), tokens_per_second=reporter.tokens_per_second(trainer.state),
            train_seconds=seconds, train_cpu_seconds=reporter.cpu_seconds())
        return _Outcome(model=trainer.accelerator.unwrap_model(trainer.model), figures=figures)

    def _model(self) -> Any:
        from expert_cli.training.model import load_model

        return load_model(self.model_dir, device=self.device, quantization=self.choice.spec.quantization,
                          rope_scaling=self.choice.spec.rope_scaling,
                          attn_implementation=self.settings.attn_implementation,
                          gradient_checkpointing=bool(self.settings.args.get("gradient_checkpointing")),
                          note=self.notes)

    def _sft_config(self, model: Any) -> Any:
        from expert_cli.training.config import make_sft_config

        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and self.settings.args["max_length"] > limit:
            self.settings.args["max_length"] = int(limit)
        args = make_sft_config(self.settings, use_cpu=not self.device.on_cuda)
        self.notes.extend(self.settings.notes)
        return args

    def _total_steps(self, args: Any) -> int:
        if args.max_steps and args.max_steps > 0:
            return int(args.max_steps)
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
        return max(1, math.ceil(len(self.data.train) / per_step * args.num_train_epochs))

    def _trainer(self, model: Any, args: Any, train_set: Any, eval_set: Any, peft_config: Any,
                 callbacks: list) -> Any:
        from expert_cli.training.callbacks import quiet_trainer
        from expert_cli.training.sft import trainer_class

        try:
            trainer = trainer_class(self.device.on_cuda)(
                model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                processing_class=self.tokenizer, peft_config=peft_config, callbacks=callbacks)
        except ValueError as exc:
            raise TrainingError(f"cannot set up training: {exc}") from exc
        return quiet_trainer(trainer)

    def train_soft_prompts(self, folder: Path, model: Any, progress: ProgressCallback | None) -> list[str]:
        if not self.manifest.soft_prompts:
            return []
        from expert_cli.training.soft_prompts import train_soft_prompts

        return train_soft_prompts(self, folder, model, progress)


def _last(trainer: Any, key: str, fallback: float | None) -> float | None:
    values = [entry[key] for entry in trainer.state.log_history if key in entry]
    return float(values[-1]) if values else fallback


def _best_eval(trainer: Any) -> float | None:
    if trainer.state.best_metric is not None and trainer.args.metric_for_best_model in ("eval_loss", "loss"):
        return float(trainer.state.best_metric)
    return _last(trainer, "eval_loss", None)


def _result(manifest: Manifest, choice: BaseModelChoice, plan: AdapterPlan, device: str, data: TrainingData,
            outcome: _Outcome, adapter_dir: Path, checkpoints: Path, resume: Path | None, wall: float,
            soft_prompts: list[str], notes: list[str]) -> TrainResult:
    return TrainResult(
        **outcome.figures.rounded(), expert=manifest.name, version=manifest.version, base_model=choice.name,
        adapter=plan.to_dict(), adapter_dir=adapter_dir, checkpoints_dir=checkpoints, device=device,
        wall_seconds=round(wall, 2), resumed_from=str(resume) if resume else None, dataset=data.to_dict(),
        soft_prompts=soft_prompts, notes=list(notes),
    )
