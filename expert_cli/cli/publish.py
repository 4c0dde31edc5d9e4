"""``expert-cli publish``: add a signed package's entry to a working copy of an index, and commit it."""

from __future__ import annotations

from pathlib import Path

import typer

from expert_cli.cli._app import print_json, print_success, print_warning
from expert_cli.cli._progress import progress_bar, progress_wanted


def publish_command(
    package: Path = typer.Argument(..., help="A signed .expert file."),
    index: Path = typer.Option(..., "--index", help="A Git working copy of the index (its root folder)."),
    url: str | None = typer.Option(None, "--url", help="Where installers fetch it: an https:// or file:// URL, or "
                                   "git+URL@TAG (default: this file's file:// URL)."),
    path: str | None = typer.Option(None, "--path", help="With a git+ URL: the package's path in that repository."),
    allow_new_publisher: bool = typer.Option(False, "--allow-new-publisher",
                                             help="Publish a name the index lists under another key."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Write the index entry from the signed package and commit it (push it yourself)."""
    from expert_cli.sdk.marketplace import publish

    with progress_bar(progress_wanted(quiet=quiet, json_output=json_output)) as progress:
        result = publish(package, index, url, path, allow_new_publisher, progress)
    if json_output:
        print_json(result.to_dict())
        return
    if url is None and result.status == "published":
        print_warning("the entry points at this machine's file; pass `--url` so others can fetch the package")
    if result.status == "unchanged":
        print_success(f"{result.name}@{result.version} is already published with these bytes", {"file": result.file})
        return
    print_success(f"published {result.name}@{result.version}", {
        "file": result.file, "commit": result.commit, "next": f"git -C {result.index} push"})
