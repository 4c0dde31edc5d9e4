"""``expert-cli index add|list|update|rm|default``: the Git indexes experts are found and installed from."""

from __future__ import annotations

import typer

from expert_cli.cli._app import out_console, print_json, print_success, print_warning

HELP = "Manage the Git indexes experts are found in ($EXPERT_HOME/indexes/)."


def add_command(
    name: str = typer.Argument(..., help="A short name for the index, e.g. `team`."),
    url: str = typer.Argument(..., help="Any Git URL (https://, ssh://, git://, file://) or a local path."),
    default: bool = typer.Option(False, "--default", help="Make it the default index (the first one always is)."),
    json_output: bool = typer.Option(False, "--json", help="Print the index as one JSON document."),
) -> None:
    """Add an index: clone it and check every entry."""
    from expert_cli.sdk.marketplace import add_index

    source, count = add_index(name, url, default)
    if json_output:
        print_json({**source.to_dict(), "entries": count})
        return
    print_success(f"added index {source.name}", {"url": source.url, "entries": count, "default": source.default})


def list_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document (a list of indexes)."),
) -> None:
    """List the added indexes."""
    from expert_cli.sdk.marketplace import list_indexes

    sources = list_indexes()
    if json_output:
        print_json([source.to_dict() for source in sources])
        return
    if not sources:
        typer.echo("No indexes. hint: `expert-cli index add NAME URL`", err=True)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("NAME", "URL", "DEFAULT", "ADDED"):
        table.add_column(column, overflow="fold")
    for source in sources:
        table.add_row(source.name, source.url, "yes" if source.default else "", source.added_at[:16].replace("T", " "))
    out_console().print(table)


def update_command(
    name: str | None = typer.Argument(None, help="The index to update (default: every added index)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document (a list of updates)."),
) -> None:
    """Fetch indexes and show what changed (new, yanked, removed versions; rewritten history)."""
    from expert_cli.sdk.marketplace import update_indexes

    updates = update_indexes(name)
    if json_output:
        print_json([update.to_dict() for update in updates])
        return
    for update in updates:
        if update.rewritten:
            print_warning(f"the history of index {update.name} was rewritten (force-push): "
                          f"{update.old_commit[:12]} is not an ancestor of {update.new_commit[:12]}")
        if update.changed:
            print_warning(f"index {update.name} changed published packages: {', '.join(update.changed)}")
        if update.old_commit == update.new_commit:
            print_success(f"index {update.name} is up to date", {"commit": update.new_commit[:12]})
            continue
        details = {"commit": f"{update.old_commit[:12]} -> {update.new_commit[:12]}"}
        for key in ("added", "yanked", "unyanked", "removed", "changed"):
            if getattr(update, key):
                details[key] = ", ".join(getattr(update, key))
        print_success(f"updated index {update.name}", details)


def rm_command(name: str = typer.Argument(..., help="The index to remove.")) -> None:
    """Remove an index (installed experts stay installed)."""
    from expert_cli.sdk.marketplace import remove_index

    source = remove_index(name)
    print_success(f"removed index {source.name}", {"url": source.url})


def default_command(name: str = typer.Argument(..., help="The index to make the default.")) -> None:
    """Make an index the default: names found in several indexes are taken from it."""
    from expert_cli.sdk.marketplace import set_default

    source = set_default(name)
    print_success(f"default index is now {source.name}", {"url": source.url})
