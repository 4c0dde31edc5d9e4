"""The model store: base models imported by ``expert-cli model import|pull``, one folder each.

``$EXPERT_HOME/models/<name>/`` is an ordinary transformers model folder (``config.json``, safetensors
weights, the tokenizer with its chat template) plus two files of ours:

- ``checksums.json``: the SHA-256 of every file (the built-in base's format, so
  :func:`expert_cli.models.resolve.verify_model_folder` checks both);
- ``expert-model.json``: what the model is and where it came from (architecture, parameters, source,
  the source file's or wheel's SHA-256, the dtype, when it was imported, the fingerprint).

The fingerprint names the weights: the SHA-256 of the ``<sha256>  <file>`` lines of the weight files,
sorted by name (``sha256sum``'s format). It is computed from ``checksums.json``, never by hashing again.
A folder is published by renaming a finished staging folder into place under a file lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from expert_cli.core import paths
from expert_cli.core.errors import ModelNotFoundError, UsageError, storage_error

INFO_FILE = "expert-model.json"
CHECKSUMS_FILE = "checksums.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin")
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ModelInfo:
    """One stored model, as ``expert-model.json`` records it."""

    name: str
    architecture: str
    parameters: int
    dtype: str
    fingerprint: str
    source: str
    source_sha256: str
    imported_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_model_name(name: str) -> str:
    """A store name: lower-case letters, digits, ``.``, ``_``, ``-``; never ``builtin:`` or a path."""
    if not MODEL_NAME.match(name) or name in (".", ".."):
        raise UsageError(f"`{name}` is not a valid model name",
                         hint="use lower-case letters, digits, `.`, `_` and `-` (e.g. `smollm2-135m`)")
    return name


def store_root() -> Path:
    return paths.models_dir()


def stored_model_dir(name: str) -> Path | None:
    """The folder of stored model ``name``, or None when there is none (or ``name`` is no store name)."""
    if not MODEL_NAME.match(name):
        return None
    folder = store_root() / name
    return folder if (folder / INFO_FILE).is_file() and (folder / "config.json").is_file() else None


def read_model_info(folder: Path) -> ModelInfo:
    path = folder / INFO_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return ModelInfo(**{key: document[key] for key in ModelInfo.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(f"`{path}` cannot be read: {exc}",
                                 hint=f"remove it with `expert-cli model rm {folder.name} --force` "
                                      "and import the model again") from None


def stored_models() -> list[ModelInfo]:
    """Every readable stored model, by name."""
    root = store_root()
    if not root.is_dir():
        return []
    return [read_model_info(folder) for folder in sorted(root.iterdir()) if stored_model_dir(folder.name)]


def weights_fingerprint(checksums: dict[str, str]) -> str:
    """SHA-256 of the ``<sha256>  <file>`` lines of the weight files (sorted), from a checksum list."""
    lines = "".join(f"{digest}  {name}\n" for name, digest in sorted(checksums.items())
                    if name.endswith(WEIGHT_SUFFIXES))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def publish_model(staging: Path, name: str, *, replace: bool = False) -> Path:
    """Move a finished ``staging`` folder to ``models/<name>/`` (atomic rename, under the store's lock)."""
    from filelock import FileLock

    root = store_root()
    target = root / name
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / ".lock")):
            if target.exists():
                if not replace:
                    raise model_exists(name)
                shutil.rmtree(target)
            os.replace(staging, target)
    except OSError as exc:
        raise storage_error("store the model in", target, exc) from exc
    return target


def model_exists(name: str) -> UsageError:
    return UsageError(f"a model named `{name}` is already stored in `{store_root() / name}`",
                      hint=f"pass another `--name`, or remove it first with `expert-cli model rm {name}`")


def remove_stored_model(name: str) -> Path:
    """Delete stored model ``name``; a ModelNotFoundError when there is none."""
    from filelock import FileLock

    root = store_root()
    folder = root / check_model_name(name)
    if not folder.is_dir():
        raise ModelNotFoundError(f"no stored model named `{name}`", hint="see `expert-cli model list`")
    try:
        with FileLock(str(root / ".lock")):
            shutil.rmtree(folder)
    except OSError as exc:
        raise storage_error("remove", folder, exc) from exc
    return folder


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
