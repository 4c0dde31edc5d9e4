"""``expert-cli update``: re-fetch an expert from the Git source it was installed from."""

from __future__ import annotations

from pathlib import Path

import typer

from expert_cli.cli._app import print_json, print_success
from expert_cli.cli._progress import progress_bar, progress_wanted


def update_command(
    spec: str = typer.Argument(..., help="NAME or NAME@VERSION of an expert installed from an index or from Git."),
    allow_unsigned: bool = typer.Option(False, "--allow-unsigned", help="Accept a package that is not signed."),
    trust_key: list[Path] | None = typer.Option(None, "--trust-key", help="Also trust this public key (.pub)."),
    allow_new_publisher: bool = typer.Option(False, "--allow-new-publisher",
                                             help="Accept a key other than the one this name is pinned to."),
    allow_downgrade: bool = typer.Option(False, "--allow-downgrade",
                                         help="Accept a version older than the newest installed one."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Update an expert from where it came: its index (within the range it was installed with) or its Git source."""
    from expert_cli.sdk.packages import install_options, update_expert

    with progress_bar(progress_wanted(quiet=quiet, json_output=json_output)) as progress:
        options = install_options(allow_unsigned=allow_unsigned, trust_keys=trust_key or (),
                                  allow_new_publisher=allow_new_publisher, allow_downgrade=allow_downgrade)
        result = update_expert(spec, options, progress)
    if json_output:
        print_json(result.to_dict())
        return
    if result.status == "up-to-date":
        print_success(f"{result.name}@{result.version} is up to date",
                      {"commit": result.commit} if result.commit else {})
        return
    print_success(f"{result.status} {result.name}: {result.previous_version} -> {result.version}",
                  {"commit": result.commit, "path": result.install.path if result.install else ""})
