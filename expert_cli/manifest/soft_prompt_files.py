"""Where a manifest's soft prompts live on disk. Pure Python.

A soft prompt's file is looked for at its manifest path (relative to the expert folder), at its bare file
name in the folder (the original's v2 packages flatten paths), and where ``expert-cli train`` writes it:
``weights/<model_slug>/soft_prompts/<file name>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from expert_cli.manifest.locations import inside
from expert_cli.manifest.model import Manifest, SoftPromptSpec


def find_soft_prompt(manifest: Manifest, folder: Path, prompt: SoftPromptSpec,
                     trained_dirs: Iterable[Path] = ()) -> Path | None:
    """The file of ``prompt``, or None; ``trained_dirs`` are ``weights/<model_slug>/soft_prompts`` folders."""
    name = Path(prompt.path).name
    candidates = [inside(manifest.root or folder, prompt.path), folder / name,
                  *(directory / name for directory in trained_dirs)]
    return next((candidate for candidate in candidates if candidate is not None and candidate.is_file()), None)
