"""``expert-cli sign``: sign a package in place and refresh its ``.sha256``."""

from __future__ import annotations

from pathlib import Path

import typer

from expert_cli.cli._app import print_json, print_success
from expert_cli.cli._progress import progress_bar, progress_wanted


def sign_command(
    package: Path = typer.Argument(..., help="The .expert file to sign (rewritten in place)."),
    key: Path | None = typer.Option(None, "-k", "--key",
                                       help="Private key (default: $EXPERT_HOME/keys/publisher.pem)."),
    publisher: str | None = typer.Option(None, "--publisher", help="Publisher name to record."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Sign a package with an Ed25519 key (covers the manifest and every file's SHA-256)."""
    from expert_cli.sdk.packages import default_key_path, sign_package

    key_path = key or default_key_path()
    with progress_bar(progress_wanted(quiet=quiet, json_output=json_output)) as progress:
        result = sign_package(package, key_path, publisher, progress)
    if json_output:
        print_json(result.to_dict())
        return
    details = result.to_dict()
    print_success(f"signed {result.name}@{result.version}", {
        "file": details["path"],
        "key": details["fingerprint"],
        "sha256": details["sha256"],
    })
