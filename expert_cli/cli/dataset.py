"""``expert-cli dataset validate|stats``: check every row of a training dataset, or describe it (``generate``,
``check`` and ``dedupe`` live in :mod:`expert_cli.cli.dataset_generate`)."""

from __future__ import annotations

import typer

from expert_cli.cli._app import print_json
from expert_cli.core.errors import ExitCode

HELP = "Generate, check and describe training datasets."


TARGET_HELP = "A dataset file (.jsonl/.json/.csv/.parquet), a Hugging Face id, or an expert folder / manifest."


def validate_command(
    target: str = typer.Argument(..., help=TARGET_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the report as one JSON document."),
) -> None:
    """Check every row; each problem is reported as `file:line: what is wrong`. Exit 1 when any is found."""
    from expert_cli.sdk.training import MAX_PROBLEMS_SHOWN, inspect_dataset

    report = inspect_dataset(target)
    if json_output:
        print_json(report.to_dict())
    else:
        lines = [f"{problem.location}: {problem.message}" for problem in report.problems[:MAX_PROBLEMS_SHOWN]]
        if len(report.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more")
        formats = ", ".join(f"{name} {count}" for name, count in report.formats.items()) or "none"
        verdict = "valid" if report.ok else "INVALID"
        lines.append(f"{verdict}: {len(report.examples)} usable of {report.rows} rows ({formats}), "
                     f"{len(report.problems)} problem(s)")
        typer.echo("\n".join(lines))
    if not report.ok:
        raise typer.Exit(ExitCode.FAILURE)


def stats_command(
    target: str = typer.Argument(..., help=TARGET_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the numbers as one JSON document."),
) -> None:
    """Rows, formats, tasks, where the loss goes, and prompt/answer lengths (characters)."""
    from expert_cli.sdk.training import inspect_dataset

    report = inspect_dataset(target)
    document = report.to_dict()
    if json_output:
        print_json(document)
        return
    lines = [f"{key}: {_show(value)}" for key, value in document.items() if key not in ("problems", "target")]
    typer.echo("\n".join(lines))


def _show(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)
