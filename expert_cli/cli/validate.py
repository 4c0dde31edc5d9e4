"""``expert-cli validate``: numbered checks over a manifest, an expert folder or a package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from expert_cli.cli._app import print_json
from expert_cli.core.errors import ExitCode

MARKS = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "-"}


def validate_command(
    path: Path = typer.Argument(..., help="A manifest.json, an expert folder, or a .expert package."),
    strict: bool = typer.Option(False, "--strict", help="Also check the manifest against the JSON Schema."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as one JSON document."),
    test_cases: Path | None = typer.Option(None, "--test-cases", help="Also run these test cases on the expert "
                                              "and on its bare base (exit 1 below the pass mark)."),
    base_model: str | None = typer.Option(None, "--base-model", help="Which of the manifest's base models."),
) -> None:
    """Check a manifest or expert and report every problem with its JSON path and line."""
    from expert_cli.sdk.validation import load_test_cases, validate

    cases = load_test_cases(test_cases) if test_cases is not None else None  # a bad file fails before any check
    report = validate(path, strict=strict)
    if not json_output:
        render_report(report)
    suite = None
    if cases is not None and report.ok:
        from expert_cli.cli._test_cases import run_and_render

        suite = run_and_render(path, test_cases, cases, base_model, json_output)
    if json_output:
        print_json({**report.to_dict(), **({"test_cases": suite.to_dict()} if suite is not None else {})})
    if not report.ok or (suite is not None and not suite.ok):
        raise typer.Exit(ExitCode.FAILURE)


def render_report(report: Any) -> None:
    title = f"{report.name}@{report.version}" if report.name else report.target
    lines = [f"Validating {report.kind} {title} ({report.target})"]
    for number, check in enumerate(report.checks, 1):
        detail = f": {check.detail}" if check.detail else ""
        lines.append(f"  {number}. {MARKS[check.status]} {check.name}{detail}")
        lines.extend(f"       - {problem}" for problem in check.problems)
    counts = report.counts()
    verdict = "valid" if report.ok else "INVALID"
    lines.append(f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['warn']} warnings, "
                 f"{counts['skip']} skipped")
    typer.echo("\n".join(lines))
