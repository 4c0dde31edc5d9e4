"""``expert-cli search``: experts in the added indexes, ranked."""

from __future__ import annotations

import typer

from expert_cli.cli._app import out_console, print_json


def search_command(
    query: str = typer.Argument("", help="Words to look for in names, capabilities, tags and descriptions."),
    base_model: str | None = typer.Option(None, "--base-model", help="Only experts built for this base model."),
    capability: str | None = typer.Option(None, "--capability", help="Only experts with this capability."),
    index: str | None = typer.Option(None, "--index", help="Search only this index."),
    limit: int = typer.Option(20, "--limit", min=1, help="At most this many results."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document (a list of results)."),
) -> None:
    """Search every added index; each hit shows its newest version that is not yanked."""
    from expert_cli.sdk.marketplace import search

    hits = search(query, base_model, capability, index, limit)
    if json_output:
        print_json([hit.to_dict() for hit in hits])
        return
    if not hits:
        typer.echo("No experts found. hint: `expert-cli index update`, or fewer words", err=True)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("NAME", "VERSION", "INDEX", "FITS", "INSTALLED", "DESCRIPTION"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        table.add_row(hit.name, hit.version, hit.index, "yes" if hit.fits_installed_base else "no",
                      ", ".join(hit.installed), hit.description[:80])
    out_console().print(table)
