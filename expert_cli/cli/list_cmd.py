"""``expert-cli list``: installed experts as a borderless table or one JSON document."""

from __future__ import annotations

from typing import Any

import typer

from expert_cli.cli._app import out_console, print_json


def list_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document (a list of experts)."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also show path, adapters and capabilities."),
) -> None:
    """List installed experts (every version, newest first)."""
    from expert_cli.sdk.packages import installed_versions

    experts = installed_versions()
    if json_output:
        print_json([entry.to_dict() for entry in experts])
        return
    if not experts:
        typer.echo("No experts installed. hint: `expert-cli install <file.expert | folder | git-url>`", err=True)
        return
    render_table(experts, verbose)


def render_table(experts: list[Any], verbose: bool) -> None:
    from rich.table import Table

    from expert_cli.sdk.packages import installed_trust, pinned_fingerprints

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    columns = ["NAME", "VERSION", "BASE MODEL", "SOURCE", "INSTALLED"]
    columns += ["TRUST", "PINNED KEY", "PATH", "CAPABILITIES"] if verbose else []
    for column in columns:
        table.add_column(column, overflow="fold")
    pins = pinned_fingerprints() if verbose else {}
    for entry in experts:
        row = [entry.name, entry.version, entry.base_model, entry.source, entry.installed_at[:16].replace("T", " ")]
        if verbose:
            row += [installed_trust(entry), pins.get(entry.name, "-"), entry.path, ", ".join(entry.capabilities)]
        table.add_row(*row)
    out_console().print(table)
