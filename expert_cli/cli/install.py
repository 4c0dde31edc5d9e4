"""``expert-cli install``: a verified install from a ``.expert`` file, an expert folder, Git, or by name
through the indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from expert_cli.cli._app import print_json, print_success, print_warning
from expert_cli.cli._progress import progress_bar, progress_wanted


def install_command(
    source: str = typer.Argument(..., help="NAME[@VERSION|@RANGE] from an index, a .expert file, an expert folder, "
                                 "or a Git URL (git+https://...@v0.2.0)."),
    force: bool = typer.Option(False, "--force", help="Reinstall when this version is already installed."),
    allow_unsigned: bool = typer.Option(False, "--allow-unsigned", help="Accept a package that is not signed."),
    trust_key: list[Path] | None = typer.Option(None, "--trust-key", help="Also trust this public key (.pub)."),
    allow_new_publisher: bool = typer.Option(False, "--allow-new-publisher",
                                             help="Accept a key other than the one this name is pinned to."),
    allow_downgrade: bool = typer.Option(False, "--allow-downgrade",
                                         help="Accept a version older than the newest installed one."),
    model: str | None = typer.Option(None, "--model", help="Base model to pick when a source has several."),
    index: str | None = typer.Option(None, "--index", help="Find NAME in this index only."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Install an expert; nothing unverified is installed and nothing half-done is registered."""
    from expert_cli.sdk.marketplace import install_by_name, is_index_spec
    from expert_cli.sdk.packages import install_expert, install_options

    options = install_options(force=force, allow_unsigned=allow_unsigned, trust_keys=trust_key or (), model=model,
                              allow_new_publisher=allow_new_publisher, allow_downgrade=allow_downgrade)
    by_name = index is not None or is_index_spec(source)
    with progress_bar(progress_wanted(quiet=quiet, json_output=json_output)) as progress:
        result = install_by_name(source, options, progress, index) if by_name else install_expert(source, options,
                                                                                                 progress)
    if json_output:
        print_json(result.to_dict())
        return
    for installed in result.installed if by_name else [result]:
        render(installed)


def render(result: Any) -> None:
    if result.trust != "trusted":
        print_warning(f"{result.name}@{result.version} is not signed by a trusted key ({result.trust})")
    verb = "reinstalled" if result.replaced else "installed"
    print_success(f"{verb} {result.name}@{result.version}", {
        "path": result.path,
        "base model": result.base_model,
        "signature": f"{result.trust}" + (f" (key {result.fingerprint})" if result.fingerprint else ""),
        "source": result.source,
    })
