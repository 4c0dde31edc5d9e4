"""``expert-cli export vllm``: installed experts as plain PEFT LoRA folders plus the ``vllm serve`` command
that serves them all by name (``--lora-modules name=path``), for GPU fleets that only need LoRA.

Each expert is written by :func:`~expert_cli.runtime.lora_export.export_plain_lora` (AdaLoRA and per-module
overrides rewritten as the LoRA pairs they compute); what vLLM cannot load is refused by name with the reason.
``--max-lora-rank`` is the smallest rank vLLM allows (``MaxLoRARanks`` in ``vllm/config/lora.py``) that holds
every adapter; ``--max-loras`` lets all of them share one batch. The folder is written next to ``OUT_DIR``
and moved into place last.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ExportError, UsageError, storage_error

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
SCRIPT = "serve.sh"


@dataclass
class VllmExport:
    """What ``export vllm`` wrote: the folder, the base model vLLM loads, each expert's adapter, the command."""

    out_dir: Path
    base_model: str
    adapters: dict[str, dict[str, Any]]
    command: list[str]
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def script(self) -> Path:
        return self.out_dir / SCRIPT

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "script": str(self.script), "base_model": self.base_model,
                "experts": self.adapters, "command": self.command, "refused": self.refused}


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest ``--max-lora-rank`` vLLM accepts that holds ``rank``."""
    for allowed in VLLM_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ExportError(f"rank `{rank}` is over vLLM's largest `--max-lora-rank` ({VLLM_LORA_RANKS[-1]})",
                      hint="train the expert with a smaller `r`")


def export_vllm(out_dir: str | Path, experts: Sequence[str] | None = None, base_model: str | None = None,
                force: bool = False) -> VllmExport:
    """Export ``experts`` (every installed one when None: those vLLM cannot load are left out and listed in
    ``refused``; named ones are refused with an error) into ``out_dir``."""
    from expert_cli.runtime.bundle import open_expert
    from expert_cli.runtime.lora_export import export_plain_lora
    from expert_cli.sdk.chat_setup import shared_base_model
    from expert_cli.sdk.installed import installed_experts, require_installed

    target = Path(out_dir).expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not force:
        raise UsageError(f"`{out_dir}` exists and is not empty", hint="choose another folder, or pass `--force`")
    entries = installed_experts(experts) if experts is not None else require_installed(None, "export")
    base = vllm_base_model(base_model or shared_base_model(entries))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        adapters, refused = {}, {}
        for entry in entries:
            adapter_dir = open_expert(entry.path).adapter_dir
            try:
                plain = export_plain_lora(adapter_dir, staging / "adapters" / entry.name, entry.spec)
            except ExportError as exc:
                if experts is not None:
                    raise
                refused[entry.name] = exc.message
                continue
            adapters[entry.name] = {"version": entry.version, **plain.to_dict(),
                                    "path": str(target / "adapters" / entry.name)}
        if not adapters:
            raise ExportError("no installed expert can be served by vLLM: "
                              + "; ".join(refused.values()), hint="export LoRA or AdaLoRA experts")
        command = vllm_command(base, {name: Path(info["path"]) for name, info in adapters.items()},
                               max(info["rank"] for info in adapters.values()))
        write_script(staging / SCRIPT, command, target)
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return VllmExport(target, base, adapters, command, refused)


def vllm_base_model(name: str) -> str:
    """What vLLM loads as the base: a Hugging Face id as it is; a built-in, stored or local model as its folder."""
    from expert_cli.models.resolve import is_builtin, resolve_base_model
    from expert_cli.models.store import stored_model_dir

    if is_builtin(name) or Path(name).expanduser().is_dir() or stored_model_dir(name) is not None:
        return str(resolve_base_model(name).absolute())
    return name


def vllm_command(base: str, adapters: dict[str, Path], rank: int) -> list[str]:
    """``vllm serve BASE --enable-lora --lora-modules name=path ... --max-lora-rank R --max-loras N``."""
    modules = [f"{name}={path}" for name, path in adapters.items()]
    return ["vllm", "serve", base, "--enable-lora", "--lora-modules", *modules,
            "--max-lora-rank", str(vllm_max_lora_rank(rank)), "--max-loras", str(len(adapters))]


def write_script(path: Path, command: list[str], target: Path) -> None:
    """A POSIX launch script: the command with the adapters' paths relative to the script, extra args passed on."""
    prefix = f"{target}/"
    words = [shlex.quote(word) if prefix not in word else
             shlex.quote(word.split(prefix, 1)[0]) + '"$HERE"/' + shlex.quote(word.split(prefix, 1)[1])
             for word in command]
    lines = ["#!/bin/sh", "# Written by `expert-cli export vllm`: serves the experts by name with vLLM.",
             "# Extra arguments go to `vllm serve` (e.g. --port 8000 --api-key KEY).", "set -e",
             'HERE="$(cd "$(dirname "$0")" && pwd)"', "exec " + " \\\n    ".join(words) + ' "$@"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o755)


def _move_into_place(staging: Path, target: Path) -> None:
    try:
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        staging.rename(target)
    except OSError as exc:
        raise storage_error("write", target, exc) from exc
