"""An expert folder read for inference: manifest, chosen base model, adapter folder, grammar. Pure Python.

Layouts understood:

- installed / extracted package: flat folder with ``manifest.json``, ``adapter_config.json``,
  ``adapter_model.safetensors``, optional ``grammar.gbnf``;
- development folder: ``weights/<model_slug>/adapter/`` as written by ``expert-cli train``.

The grammar is ``training.decoding.grammar_file`` (relative to the folder; packages flatten it to its bare
name) when that file exists, else ``grammar.gbnf``; ``"use_grammar": false`` in the manifest turns it off.
Soft prompts (``soft_prompts[].path``) are found the same way, or where ``expert-cli train`` writes them
(``weights/<model_slug>/soft_prompts/<file name>``); one whose file is missing is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.errors import InferenceError
from expert_cli.manifest.locations import inside
from expert_cli.manifest.model import BaseModelSpec, DecodingSpec, Manifest, load_manifest
from expert_cli.manifest.soft_prompt_files import find_soft_prompt
from expert_cli.runtime.adapters.files import CONFIG_FILE

GRAMMAR_FILE = "grammar.gbnf"


@dataclass(frozen=True)
class ExpertBundle:
    manifest: Manifest
    folder: Path
    base_model: BaseModelSpec
    adapter_dir: Path
    grammar_path: Path | None
    soft_prompt_files: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name

    @property
    def template(self) -> str | None:
        return self.base_model.prompt_template

    @property
    def capabilities(self) -> list[str]:
        return self.manifest.capabilities

    @property
    def decoding(self) -> DecodingSpec:
        return self.manifest.decoding

    @property
    def rope_scaling(self) -> Any:
        return self.base_model.rope_scaling

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "folder": str(self.folder),
                "base_model": self.base_model.name, "adapter_dir": str(self.adapter_dir),
                "grammar": str(self.grammar_path) if self.grammar_path else None, "template": self.template,
                "soft_prompts": [str(path) for path in self.soft_prompt_files]}


def open_expert(folder: str | Path, base_model: str | None = None) -> ExpertBundle:
    """Read the expert in ``folder``; ``base_model`` picks one of a v2 manifest's base models by name/slug."""
    folder = Path(folder)
    manifest = load_manifest(folder)
    spec = manifest.base_model(base_model) if base_model or len(manifest.base_models) != 1 else manifest.base_models[0]
    adapter_dir = find_adapter_dir(folder, spec)
    return ExpertBundle(manifest, folder, spec, adapter_dir, find_grammar(folder, manifest),
                        find_soft_prompts(folder, manifest, adapter_dir))


def find_adapter_dir(folder: Path, spec: BaseModelSpec) -> Path:
    """The PEFT adapter folder of an expert for one base model."""
    candidates = [folder, folder / "weights" / spec.slug / "adapter", folder / "weights" / "adapter"]
    for candidate in candidates:
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise InferenceError(f"expert `{folder}` has no adapter for `{spec.name}` "
                         f"(looked for `{CONFIG_FILE}` in {', '.join(f'`{c}`' for c in candidates)})",
                         hint=f"train it first: `expert-cli train {folder}`")


def find_soft_prompts(folder: Path, manifest: Manifest, adapter_dir: Path) -> tuple[Path, ...]:
    """The files of the manifest's soft prompts that exist, in manifest order."""
    found = (find_soft_prompt(manifest, folder, prompt, [adapter_dir.parent / "soft_prompts"])
             for prompt in manifest.soft_prompts)
    return tuple(path for path in found if path is not None)


def find_grammar(folder: Path, manifest: Manifest) -> Path | None:
    decoding = manifest.training.get("decoding")
    if isinstance(decoding, dict) and decoding.get("use_grammar") is False:
        return None
    named = manifest.decoding.grammar_file
    candidates = [inside(manifest.root or folder, named), folder / Path(named).name] if named else []
    candidates.append(folder / GRAMMAR_FILE)
    return next((path for path in candidates if path is not None and path.is_file()), None)
