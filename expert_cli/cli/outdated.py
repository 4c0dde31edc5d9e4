"""``expert-cli outdated``: installed experts that have newer versions in their index."""

from __future__ import annotations

import typer

from expert_cli.cli._app import out_console, print_json


def outdated_command(
    show_all: bool = typer.Option(False, "--all", help="Also list experts that are up to date."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document (every expert from an index)."),
) -> None:
    """Compare experts installed from an index with the index (run `expert-cli index update` first)."""
    from expert_cli.sdk.marketplace import outdated

    rows = outdated()
    if json_output:
        print_json([row.to_dict() for row in rows])
        return
    shown = [row for row in rows if show_all or row.outdated or row.yanked]
    if not shown:
        typer.echo("Every expert installed from an index is up to date.", err=True)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("NAME", "INSTALLED", "WANTED", "LATEST", "RANGE", "INDEX", "NOTE"):
        table.add_column(column, overflow="fold")
    for row in shown:
        note = "yanked" if row.yanked else ("" if row.outdated else "up to date")
        table.add_row(row.name, row.installed, row.wanted or "-", row.latest or "-", row.requested, row.index, note)
    out_console().print(table)
