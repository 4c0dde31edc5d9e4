"""``expert-cli info``: every published version of an expert in the indexes."""

from __future__ import annotations

import typer

from expert_cli.cli._app import out_console, print_json


def info_command(
    spec: str = typer.Argument(..., help="NAME or NAME@VERSION."),
    index: str | None = typer.Option(None, "--index", help="Look only in this index."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show an expert's versions (yanked marked), publisher, size, requirements, and which are installed."""
    from expert_cli.sdk.marketplace import info

    found = info(spec, index)
    if json_output:
        print_json(found.to_dict())
        return
    typer.echo(f"{found.name} (index {found.index})")
    if found.description:
        typer.echo(f"  {found.description}")
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("VERSION", "BASE MODEL", "SIZE", "PUBLISHER", "REQUIRES", "STATUS"):
        table.add_column(column, overflow="fold")
    for version in found.versions:
        status = ", ".join(s for s in ("yanked" if version["yanked"] else "",
                                       "installed" if version["installed"] else "") if s)
        table.add_row(version["version"], ", ".join(version["base_models"]), _size(version["size_bytes"]),
                      version["publisher"]["fingerprint"], ", ".join(version["requires"]), status)
    out_console().print(table)


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
