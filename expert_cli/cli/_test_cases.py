"""``validate --test-cases``: run the suite and render per-case results plus the expert-vs-base summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from expert_cli.cli._progress import progress_bar, progress_wanted

MARK = {True: "✓", False: "✗"}


def run_and_render(target: Path, cases_file: Path, cases: list[Any], base_model: str | None,
                   json_output: bool) -> Any:
    """Run the (loaded) test cases; print the text rendering unless ``json_output``. Returns the result."""
    from expert_cli.sdk.validation import quiet_model_loading, run_test_suite

    wanted = progress_wanted(json_output=json_output)
    if not wanted:  # transformers' own `Loading weights` bars too
        quiet_model_loading()
    with progress_bar(wanted) as progress:
        result = run_test_suite(target, cases_file, base_model=base_model, progress=progress, cases=cases)
    if not json_output:
        typer.echo("\n".join(render_lines(result)))
    return result


def render_lines(result: Any) -> list[str]:
    evaluation = result.evaluation
    header = (f"Test cases {result.cases_file}: {evaluation.n} case(s), {evaluation.name}@{evaluation.version} "
              f"vs bare {evaluation.base_model}")
    lines = [header]
    for number, outcome in enumerate(evaluation.outcomes, 1):
        base = outcome.base
        base_text = "-" if base is None else f"{MARK[base.passed]} {base.score:.2f}"
        optional = " (may fail)" if outcome.case.may_fail else ""
        lines.append(f"  {number}. {outcome.case.id}{optional}: expert {MARK[outcome.expert.passed]} "
                     f"{outcome.expert.score:.2f}, base {base_text} - {outcome.expert.detail}")
    base_rate = "-" if result.base_rate is None else f"{result.base_rate:.0%}"
    verdict = "PASS" if result.ok else "FAIL"
    lines.append(f"{verdict}: expert passed {result.expert_rate:.0%} of {len(result.required)} required case(s), "
                 f"base {base_rate} (pass mark {result.pass_rate:.0%})")
    return lines
