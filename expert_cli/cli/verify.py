"""``expert-cli verify``: check a package file or an installed expert (hashes, signature, trust)."""

from __future__ import annotations

from pathlib import Path

import typer

from expert_cli.cli._app import print_json, print_success
from expert_cli.cli._progress import progress_bar, progress_wanted


def verify_command(
    target: str = typer.Argument(..., help="A .expert file, or NAME[@VERSION] of an installed expert."),
    allow_unsigned: bool = typer.Option(False, "--allow-unsigned", help="Do not fail on an unsigned package."),
    trust_key: list[Path] | None = typer.Option(None, "--trust-key", help="Also trust this public key (.pub)."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Verify every file's SHA-256 and the signature; fails where `install` would refuse."""
    from expert_cli.sdk.packages import verify_target

    keys = [str(k) for k in trust_key or ()]
    with progress_bar(progress_wanted(quiet=quiet, json_output=json_output)) as progress:
        result = verify_target(target, allow_unsigned, keys, progress)
    if json_output:
        print_json(result.to_dict())
        return
    integrity = result.integrity
    print_success(f"verified {integrity.name}@{integrity.version}", {
        "files": f"{len(integrity.files)} match their SHA-256",
        "signature": f"valid, key {integrity.fingerprint} ({result.trust})" if integrity.verified else result.trust,
        "checksum file": result.sidecar,
        "pinned key": result.to_dict()["pinned_fingerprint"] or "none (not installed, or never signed)",
    })
