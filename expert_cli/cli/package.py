"""``expert-cli package``: build a reproducible ``.expert`` archive and its ``.sha256`` sidecar."""

from __future__ import annotations

from pathlib import Path

import typer

from expert_cli.cli._app import print_json, print_success
from expert_cli.cli._progress import progress_bar, progress_wanted


def package_command(
    expert_dir: Path = typer.Argument(..., help="The expert folder (with manifest.json and trained weights)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="A folder, or the .expert file to write."),
    model: str | None = typer.Option(None, "--model", help="The base model to package for (name or slug)."),
    include_tests: bool = typer.Option(False, "--include-tests", help="Also ship the files in tests/."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Package a trained expert as <name>-<model>.v<version>.expert plus a .sha256 file."""
    from expert_cli.sdk.packages import build_package

    with progress_bar(progress_wanted(quiet=quiet, json_output=json_output)) as progress:
        result = build_package(expert_dir, output, model, include_tests, progress)
    if json_output:
        print_json(result.to_dict())
        return
    print_success(f"packaged {result.name}@{result.version} for {result.base_model}", {
        "file": result.path,
        "size": f"{result.size_bytes / 1e6:.2f} MB" if result.size_bytes >= 1e5 else f"{result.size_bytes / 1e3:.1f} kB",
        "sha256": result.sha256,
        "files": len(result.files) + 1,
        "routing exemplars": result.exemplars,
        "next": f"expert-cli sign {result.path} --key <key.pem>",
    })
