"""``expert-cli yank``: mark a published version yanked in a working copy of an index, and commit it."""

from __future__ import annotations

from pathlib import Path

import typer

from expert_cli.cli._app import print_json, print_success


def yank_command(
    spec: str = typer.Argument(..., help="NAME@VERSION."),
    index: Path = typer.Option(..., "--index", help="A Git working copy of the index (its root folder)."),
    undo: bool = typer.Option(False, "--undo", help="Unyank it."),
    model: str | None = typer.Option(None, "--model", help="Only the package built for this base model."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Yank a version: installs skip it unless asked for by its exact version."""
    from expert_cli.sdk.marketplace import yank

    result = yank(spec, index, undo, model)
    if json_output:
        print_json(result.to_dict())
        return
    if result.status == "unchanged":
        print_success(f"{result.name}@{result.version} was already {'un' if undo else ''}yanked", {"file": result.file})
        return
    print_success(f"{result.status} {result.name}@{result.version}", {
        "file": result.file, "commit": result.commit, "next": f"git -C {result.index} push"})
