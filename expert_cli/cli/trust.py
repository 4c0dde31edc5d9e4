"""``expert-cli trust add|list|rm|pin``: the public keys whose packages ``install`` accepts, and the key each
expert name is pinned to."""

from __future__ import annotations

import typer

from expert_cli.cli._app import out_console, print_json, print_success

HELP = "Manage trusted publisher keys ($EXPERT_HOME/trusted-keys/)."


def add_command(
    key: str = typer.Argument(..., help="A .pub file (or the text ed25519:<hex>)."),
    name: str | None = typer.Option(None, "--name", help="Name to store it under (default: the file name)."),
    json_output: bool = typer.Option(False, "--json", help="Print the key as one JSON document."),
) -> None:
    """Trust a publisher's public key."""
    from expert_cli.sdk.packages import add_trusted_key

    trusted, added = add_trusted_key(key, name)
    if json_output:
        print_json({**trusted.to_dict(), "added": added})
        return
    headline = f"trusted key {trusted.name}" if added else f"key already trusted as {trusted.name}"
    print_success(headline, {"fingerprint": trusted.fingerprint, "file": trusted.path})


def list_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document (a list of keys)."),
) -> None:
    """List trusted keys."""
    from expert_cli.sdk.packages import list_trusted_keys

    keys = list_trusted_keys()
    if json_output:
        print_json([key.to_dict() for key in keys])
        return
    if not keys:
        typer.echo("No trusted keys. hint: `expert-cli trust add <publisher>.pub`", err=True)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("NAME", "FINGERPRINT", "PUBLIC KEY"):
        table.add_column(column, overflow="fold")
    for key in keys:
        table.add_row(key.name, key.fingerprint, key.pubkey)
    out_console().print(table)


def rm_command(
    key: str = typer.Argument(..., help="The key's name, fingerprint or ed25519:<hex> text."),
    json_output: bool = typer.Option(False, "--json", help="Print the removed key as one JSON document."),
) -> None:
    """Stop trusting a key."""
    from expert_cli.sdk.packages import remove_trusted_key

    removed = remove_trusted_key(key)
    if json_output:
        print_json(removed.to_dict())
        return
    print_success(f"removed trusted key {removed.name}", {"fingerprint": removed.fingerprint})


def pin_command(
    name: str = typer.Argument(..., help="The expert name to pin (as installed, or its short form)."),
    key: str = typer.Argument(..., help="The publisher's new key: a .pub file or the text ed25519:<hex>."),
    json_output: bool = typer.Option(False, "--json", help="Print the pin as one JSON document."),
) -> None:
    """Pin an expert name to a publisher key (when its publisher changed keys)."""
    from expert_cli.sdk.packages import pin_publisher

    pinned, pubkey, previous = pin_publisher(name, key)
    if json_output:
        print_json({"name": pinned, "pubkey": pubkey, "previous_pubkey": previous})
        return
    print_success(f"pinned {pinned} to {pubkey}", {"previous": previous or "none"})
