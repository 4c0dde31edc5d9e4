"""Which base model to train on, and whose adapter settings to use.

Without ``--base-model`` the manifest's first base model is used. With it, a manifest entry is matched by
name or slug (``builtin:tiny-qwen3``, ``tiny-qwen3``, ``Qwen/Qwen3-0.6B`` matches ``F:/models/Qwen3-0.6B``)
and that entry's adapter, quantization, RoPE and template settings apply, while the model is loaded from what
the flag names; a bare slug (``tiny-qwen3``, ``qwen3-0-6b``) that is no local folder loads the entry's own model.
A model not in the manifest uses the first entry's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from expert_cli.core.errors import ManifestError
from expert_cli.manifest.model import BaseModelSpec, Manifest, model_slug


@dataclass(frozen=True)
class BaseModelChoice:
    name: str  # what to load: the flag's value, or the manifest entry's name
    spec: BaseModelSpec  # whose adapter/quantization/rope/template settings apply
    slug: str  # the weights sub-folder: weights/<slug>/
    listed: bool  # True when ``spec`` is the entry the user named (or the default)


def choose_base_model(manifest: Manifest, requested: str | None) -> BaseModelChoice:
    models = manifest.base_models
    if not models:
        raise ManifestError(f"`{manifest.name}` lists no base model")
    if not requested:
        return BaseModelChoice(models[0].name, models[0], models[0].slug, True)
    wanted = model_slug(requested)
    for spec in models:
        if requested in (spec.name, spec.slug) or wanted == spec.slug:
            only_the_slug = requested == spec.slug != spec.name and not Path(requested).expanduser().exists()
            return BaseModelChoice(spec.name if only_the_slug else requested, spec, spec.slug, True)
    return BaseModelChoice(requested, models[0], wanted, False)
