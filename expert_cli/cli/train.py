"""``expert-cli train``: train an expert's adapter from its manifest, in-process, with one progress bar."""

from __future__ import annotations

from pathlib import Path

import typer

from expert_cli.cli._app import print_json, print_success
from expert_cli.cli._progress import progress_bar, progress_wanted, warner
from expert_cli.core.errors import UsageError


def train_command(
    target: Path = typer.Argument(Path("."), help="An expert folder, or its manifest.json."),
    dataset: str | None = typer.Option(None, "--dataset", "-d",
                                          help="Dataset file or Hugging Face id (`name::split::config`); "
                                               "overrides `training.dataset`."),
    output: Path | None = typer.Option(None, "--output", "-o",
                                          help="Weights folder (default: EXPERT_DIR/weights)."),
    base_model: str | None = typer.Option(None, "--base-model", "-b",
                                             help="A base model of the manifest (name or slug), a local folder "
                                                  "or a Hugging Face id. Default: the manifest's first."),
    epochs: float | None = typer.Option(None, "--epochs", help="Overrides `training.config.epochs`."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint."),
    resume_from: Path | None = typer.Option(None, "--resume-from", help="Continue from this checkpoint folder."),
    processes: int = typer.Option(1, "--processes", help="Data-parallel processes on this machine (gloo on the "
                                                         "CPU, NCCL on GPUs); the manifest's batch stays global."),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Train the expert's adapter; writes EXPERT_DIR/weights/<model>/adapter/ (a plain PEFT folder)."""
    if epochs is not None and epochs <= 0:
        raise UsageError(f"`--epochs` must be greater than 0, not `{epochs}`")
    if max_steps is not None and max_steps <= 0:
        raise UsageError(f"`--max-steps` must be greater than 0, not `{max_steps}`")
    if not 1 <= processes <= 64:
        raise UsageError(f"`--processes` must be from 1 to 64, not `{processes}`")
    from expert_cli.sdk.training import TrainRequest, train_expert

    request = TrainRequest(target=target, dataset=dataset, output=output, base_model=base_model, epochs=epochs,
                           max_steps=max_steps, device=device, resume=resume, resume_from=resume_from)
    with progress_bar(progress_wanted(quiet=quiet, json_output=json_output)) as bar:
        result = train_expert(request, progress=bar, warn=warner(bar), processes=processes)
    if json_output:
        print_json(result.to_dict())
        return
    print_success(f"Trained {result.expert}@{result.version} on {result.base_model}", {
        "adapter": result.adapter_dir,
        "steps": f"{result.steps} ({result.epochs:g} epochs, {result.tokens:,} tokens, "
                 f"{result.tokens_per_second:,.0f} tok/s)",
        "loss": _losses(result.train_loss, result.eval_loss, result.test_loss),
        "time": f"{result.wall_seconds:.1f}s",
        "next": f"expert-cli package {target}",
    })


def _losses(train: float | None, evaluation: float | None, test: float | None) -> str:
    parts = [f"{name} {value:.4f}" for name, value in (("train", train), ("eval", evaluation), ("test", test))
             if value is not None]
    return ", ".join(parts) or "n/a"
