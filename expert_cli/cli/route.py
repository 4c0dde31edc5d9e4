"""``expert-cli route``: which experts would answer a prompt, and why."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from expert_cli.cli._app import print_json, print_warning

if TYPE_CHECKING:
    from expert_cli.sdk.routing import RouteDecision


def route_command(
    prompt: str = typer.Argument(..., help="The prompt to route."),
    experts: str | None = typer.Option(
        None, "--experts", help="Route among these installed experts only (comma-separated: sql,neo4j@0.2.0)."),
    manifest: list[Path] | None = typer.Option(
        None, "--manifest", help="Route among this manifest.json or expert folder (repeatable; no weights needed)."),
    json_output: bool = typer.Option(False, "--json", help="Print the decision as one JSON document."),
) -> None:
    """Show which experts (or the base model) would answer PROMPT, with each candidate's score and reasons."""
    from expert_cli.sdk.installed import split_expert_list
    from expert_cli.sdk.routing import route_prompt

    names = split_expert_list(experts) if experts is not None else None
    result = route_prompt(prompt, experts=names, manifests=manifest or None)
    for warning in result.warnings:
        print_warning(warning)
    if json_output:
        print_json(result.to_dict())
    else:
        typer.echo(render_decision(result.decision))


def render_decision(decision: RouteDecision) -> str:
    """The choice on the first line, then every scored candidate with its reasons."""
    if decision.experts:
        chosen = ", ".join(f"{name} (weight {weight:g})" for name, weight in decision.weights.items())
        lines = [f"experts: {chosen}"]
    else:
        from expert_cli.sdk.routing import KNOWLEDGE

        knowledge = any(candidate["reasons"][-1] == KNOWLEDGE for candidate in decision.candidates)
        why = "a knowledge question" if knowledge else "no expert matched strongly enough"
        lines = [f"experts: none, the base model answers ({why})"]
    if not decision.candidates:
        lines.append("candidates: none matched any word of the prompt")
        return "\n".join(lines)
    lines.append("candidates:")
    for candidate in decision.candidates:
        *evidence, verdict = candidate["reasons"]
        lines.append(f"  {candidate['name']}  score {candidate['score']:g}  {verdict}")
        lines.extend(f"    - {reason}" for reason in evidence)
    return "\n".join(lines)
