"""``expert-cli uninstall``: remove one version, or every version, of an installed expert."""

from __future__ import annotations

import typer

from expert_cli.cli._app import print_json, print_success, print_warning


def uninstall_command(
    spec: str = typer.Argument(..., help="NAME or NAME@VERSION (e.g. sql, expert-sql@0.3.0)."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Uninstall an expert (all versions unless one is given)."""
    from expert_cli.sdk.packages import uninstall_expert

    result = uninstall_expert(spec)
    if json_output:
        print_json(result.to_dict())
        return
    for path in result.kept_files:
        print_warning(f"`{path}` lies outside the install folder and was left in place")
    for dependent in result.dependents:
        print_warning(f"{dependent} requires the expert you removed")
    removed = ", ".join(f"{e['name']}@{e['version']}" for e in result.removed)
    print_success(f"uninstalled {removed}")
