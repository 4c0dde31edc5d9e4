"""``expert-cli dataset generate|check|dedupe``: make training rows with an OpenAI-compatible model, and put any
dataset file through the same quality gates."""

from __future__ import annotations

from pathlib import Path

import typer

from expert_cli.cli._app import print_json, print_success, print_warning
from expert_cli.cli._progress import progress_bar, progress_wanted
from expert_cli.core.errors import ExitCode

EXPERT_HELP = "The expert's folder (or manifest): its gates, seeds and dataset files."


def generate_command(
    expert: Path = typer.Argument(..., help=EXPERT_HELP),
    count: int = typer.Option(..., "--count", "-n", help="Rows the output should hold when done."),
    model: str | None = typer.Option(None, "--model", help="Model name at the endpoint ($EXPERT_GENERATE_MODEL)."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible API root ($OPENAI_BASE_URL)."),
    concurrency: int | None = typer.Option(None, "--concurrency", "-k", help="Most requests in flight (4)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="JSON Lines output (data/generated.jsonl)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an output file up to --count."),
    seeds: Path | None = typer.Option(None, "--seeds", help="Seed rows shown to the model (default: the dataset)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Most tokens one answer may have (512)."),
    max_tokens_total: int | None = typer.Option(None, "--max-tokens-total", help="Token budget of this run."),
    max_requests: int | None = typer.Option(None, "--max-requests", help="HTTP attempts allowed, retries included (10 x count + 10)."),
    temperature: float | None = typer.Option(None, "--temperature", help="Sampling temperature (0.7)."),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds per request before a retry (120)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for the examples shown and the `seed` sent."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as one JSON document."),
) -> None:
    """Generate training rows from any OpenAI-compatible endpoint, each checked before it is kept.

    The API key comes from $EXPERT_GENERATE_API_KEY or $OPENAI_API_KEY. Rows pass the dataset parser, the task
    validators (SQL, Cypher, JSON or your own), duplicate and test-leakage checks, and are appended as they
    arrive; Ctrl-C keeps them and `--resume` continues. Exit 1 when a budget stops it short of --count.
    """
    from expert_cli.sdk.generation import generate_for_expert

    flags = {"model": model, "base_url": base_url, "concurrency": concurrency, "out": out, "resume": resume,
             "seeds": seeds, "max_tokens": max_tokens, "max_tokens_total": max_tokens_total, "max_requests": max_requests,
             "temperature": temperature, "timeout_s": timeout, "seed": seed}
    with progress_bar(progress_wanted(json_output=json_output)) as bar:
        result = generate_for_expert(expert, count, progress=bar, **flags)
    document = result.to_dict()
    if json_output:
        print_json(document)
    else:
        print_success(f"{'generated' if result.complete else 'stopped'}: {result.rows} of {count} rows in "
                      f"{result.out}", {"new rows": result.new_rows, "requests": result.requests,
                                        "tokens": document["tokens"], "rejected": _counts(document["rejected"]),
                                        "retries": _counts(result.retries), "rows/s": document["rows_per_s"]})
        _show_examples(document["examples"])
    if not result.complete:
        print_warning(f"{result.stop_reason or 'stopped early'}; run again with `--resume` to continue")
        raise typer.Exit(ExitCode.FAILURE)


def check_command(
    file: Path = typer.Argument(..., help="The dataset file to check (.jsonl/.json/.csv)."),
    expert: Path = typer.Option(..., "--expert", help=EXPERT_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the report as one JSON document."),
) -> None:
    """Put every row through the expert's quality gates and report each rejection; exit 1 when any fails."""
    from expert_cli.sdk.dataset_quality import check_dataset

    with progress_bar(progress_wanted(json_output=json_output)) as bar:
        result = check_dataset(file, expert, progress=bar)
    if json_output:
        print_json(result.to_dict(every_rejection=True))
    else:
        lines = [f"{r.location}: {r.reason}: {r.message}" for r in result.report.rejections]
        lines.append(f"{'ok' if result.ok else 'REJECTED'}: {result.report.kept} of {result.report.checked} rows "
                     f"pass ({_counts(result.report.rejected) if result.report.rejections else 'no rejections'})")
        typer.echo("\n".join(lines))
    if not result.ok:
        raise typer.Exit(ExitCode.FAILURE)


def dedupe_command(
    file: Path = typer.Argument(..., help="The dataset file to clean (.jsonl/.json/.csv)."),
    expert: Path = typer.Option(..., "--expert", help=EXPERT_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Where the rows that pass go (JSON Lines)."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as one JSON document."),
) -> None:
    """Write the rows of FILE that pass every gate (no duplicates, no test leakage) to OUT."""
    from expert_cli.sdk.dataset_quality import check_dataset

    with progress_bar(progress_wanted(json_output=json_output)) as bar:
        result = check_dataset(file, expert, out=out, progress=bar)
    if json_output:
        print_json(result.to_dict())
        return
    print_success(f"kept {result.report.kept} of {result.report.checked} rows in {out}",
                  {"dropped": _counts(result.report.rejected) or "none"})


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {value}" for name, value in counts.items()) or "none"


def _show_examples(examples: dict[str, list[dict[str, str]]]) -> None:
    for reason, rejected in examples.items():
        for rejection in rejected:
            print_warning(f"rejected ({reason}) {rejection['location']}: {rejection['message']}")
