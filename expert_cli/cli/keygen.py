"""``expert-cli keygen``: an Ed25519 signing key pair."""

from __future__ import annotations

from pathlib import Path

import typer

from expert_cli.cli._app import print_json, print_success


def keygen_command(
    output: Path | None = typer.Option(None, "-o", "--output",
                                          help="Private key path (default: $EXPERT_HOME/keys/publisher.pem)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing key."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Create an Ed25519 key pair: a PEM private key (mode 0600) and KEY.pub (ed25519:<hex>)."""
    from expert_cli.sdk.packages import generate_keypair

    pair = generate_keypair(output, force=force)
    if json_output:
        print_json(pair.to_dict())
        return
    details = pair.to_dict()
    print_success("created an Ed25519 key pair", {
        "private key": details["private_key"],
        "public key": details["public_key"],
        "fingerprint": details["fingerprint"],
        "next": f"expert-cli sign <file.expert> --key {pair.private_key}",
    })
