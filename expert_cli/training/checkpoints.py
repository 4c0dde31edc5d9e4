"""Checkpoint folders and the final adapter folder: find one to resume from, start clean, write atomically."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from expert_cli.core.errors import TrainingError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def list_checkpoints(folder: Path) -> list[Path]:
    """``checkpoint-N`` folders holding a trainer state, oldest step first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := CHECKPOINT_RE.match(p.name)) and (p / "trainer_state.json").is_file()]
    return [path for _, path in sorted(found)]


def find_resume_checkpoint(folder: Path, resume: bool, resume_from: Path | None) -> Path | None:
    """The checkpoint to resume from: ``resume_from`` as given, the latest one for ``resume``, else None."""
    if resume_from is not None:
        path = Path(resume_from)
        if not (path / "trainer_state.json").is_file():
            raise TrainingError(f"`{path}` is not a training checkpoint (no `trainer_state.json`)",
                                hint=f"pick one of the `checkpoint-N` folders in `{folder}`")
        return path
    if not resume:
        return None
    checkpoints = list_checkpoints(folder)
    if not checkpoints:
        raise TrainingError(f"no checkpoint to resume from in `{folder}`",
                            hint="train without `--resume` to start from the beginning")
    return checkpoints[-1]


def clear_checkpoints(folder: Path, note: Callable[[str], None]) -> None:
    """A fresh run removes the previous run's checkpoints, so step numbers and the best model stay its own."""
    old = [p for p in folder.iterdir() if CHECKPOINT_RE.match(p.name)] if folder.is_dir() else []
    for path in old:
        shutil.rmtree(path)
    if old:
        note(f"removed {len(old)} checkpoint(s) of an earlier run in `{folder}` (use `--resume` to continue one)")


def save_adapter_folder(model: Any, tokenizer: Any, target: Path, base_model_name: str) -> None:
    """Write a plain PEFT folder (+ tokenizer files) next to ``target`` and move it into place when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "README.md").unlink(missing_ok=True)  # PEFT's model card; the expert has its own README
    missing = [name for name in ADAPTER_FILES if not (staging / name).is_file()]
    if missing:
        raise TrainingError(f"saving the adapter wrote no {', '.join(missing)} in `{staging}`")
    _record_base_model(staging / "adapter_config.json", base_model_name)
    replace_folder(staging, target)


def replace_folder(staging: Path, target: Path) -> None:
    """Swap ``staging`` in for ``target``: the old folder is kept until the new one is in place."""
    backup = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, backup)
    os.replace(staging, target)
    shutil.rmtree(backup, ignore_errors=True)


def _record_base_model(config_path: Path, name: str) -> None:
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
