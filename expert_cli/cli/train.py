"""``expert-cli train``: train an expert's adapter from its manifest, in-process, with one progress bar."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from expert_cli.cli._app import app, err_console, handle_errors, print_json, print_success, print_warning
from expert_cli.cli._progress import progress_wanted
from expert_cli.core.errors import UsageError
from expert_cli.core.progress import ProgressCallback


@app.command("train")
@handle_errors
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
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Train the expert's adapter; writes EXPERT_DIR/weights/<model>/adapter/ (a plain PEFT folder)."""
    if epochs is not None and epochs <= 0:
        raise UsageError(f"`--epochs` must be greater than 0, not `{epochs}`")
    if max_steps is not None and max_steps <= 0:
        raise UsageError(f"`--max-steps` must be greater than 0, not `{max_steps}`")
    from expert_cli.training.trainer import TrainRequest, train_expert

    request = TrainRequest(target=target, dataset=dataset, output=output, base_model=base_model, epochs=epochs,
                           max_steps=max_steps, device=device, resume=resume, resume_from=resume_from)
    with training_bar(progress_wanted(quiet=quiet, json_output=json_output)) as (progress, warn):
        result = train_expert(request, progress=progress, warn=warn)
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


@contextlib.contextmanager
def training_bar(enabled: bool) -> Iterator[tuple[ProgressCallback | None, Callable[[str], None]]]:
    """One bar for all stages (``stage · details`` updates the bar; a new stage starts a new one)."""
    if not enabled:
        yield None, print_warning
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console(), transient=True) as bar:
        state: dict[str, object] = {"stage": None, "id": None}

        def callback(task: str, completed: float, total: float | None) -> None:
            stage = task.split(" · ")[0]
            if state["stage"] != stage:
                if state["id"] is not None:
                    bar.remove_task(state["id"])  # type: ignore[arg-type]
                state["id"], state["stage"] = bar.add_task(task, total=total), stage
            bar.update(state["id"], description=task, completed=completed, total=total)  # type: ignore[arg-type]

        def warn(message: str) -> None:
            bar.console.print(f"warning: {message}", markup=False, highlight=False)

        yield callback, warn
