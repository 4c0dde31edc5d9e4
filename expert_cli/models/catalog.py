"""Every base model this machine has: the built-in ones, the imported ones (the model store) and the models
in the Hugging Face cache, each with its architecture, parameters, size on disk and fingerprint.

Nothing is hashed: built-in and imported models carry a ``checksums.json``, and the HF cache names each
weights file's blob by its SHA-256, so the fingerprint (:func:`expert_cli.models.store.weights_fingerprint`)
is the same for the same weights wherever they are. Parameters are counted from the safetensors headers.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.hashing import SHA256_HEX
from expert_cli.models import store
from expert_cli.models.resolve import base_fingerprint, builtin_models


@dataclass(frozen=True)
class BaseModelEntry:
    """One base model as ``expert-cli model list`` shows it; ``kind`` is built-in, imported or hf-cache."""

    name: str
    kind: str
    architecture: str
    parameters: int | None
    size_bytes: int
    fingerprint: str | None
    path: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_base_models() -> list[BaseModelEntry]:
    """Built-in models, then imported ones, then the HF cache's, each group by name."""
    entries = [_builtin_entry(name, folder) for name, folder in builtin_models().items()]
    entries += [_stored_entry(info) for info in store.stored_models()]
    return entries + hf_cache_models()


def _builtin_entry(name: str, folder: Path) -> BaseModelEntry:
    return BaseModelEntry(name, "built-in", _architecture(folder), count_parameters(folder),
                          store.folder_size(folder), base_fingerprint(folder), str(folder), "expert-cli")


def _stored_entry(info: store.ModelInfo) -> BaseModelEntry:
    folder = store.store_root() / info.name
    return BaseModelEntry(info.name, "imported", info.architecture, info.parameters, store.folder_size(folder),
                          info.fingerprint, str(folder), info.source)


def hf_cache_models(cache_dir: Path | None = None) -> list[BaseModelEntry]:
    """Causal-LM-looking models (a ``config.json`` in the newest snapshot) in the Hugging Face cache
    (``cache_dir``, or the hub's default: ``HF_HUB_CACHE``)."""
    try:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound
    except ImportError:
        return []
    try:
        cache = scan_cache_dir(cache_dir)
    except (CacheNotFound, OSError, ValueError):
        return []
    entries = []
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revision = max(repo.revisions, key=lambda r: r.last_modified)
        folder = Path(revision.snapshot_path)
        if (folder / "config.json").is_file():
            entries.append(BaseModelEntry(repo.repo_id, "hf-cache", _architecture(folder), count_parameters(folder),
                                          repo.size_on_disk, _blob_fingerprint(folder), str(folder),
                                          f"hf:{repo.repo_id}@{revision.commit_hash[:12]}"))
    return entries


def _architecture(folder: Path) -> str:
    try:
        return str(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type", "?"))
    except (OSError, ValueError):
        return "?"


def count_parameters(folder: Path) -> int | None:
    """The number of weights in the folder's safetensors files, from their headers (no tensor is read)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    try:
        for path in files:
            with open(path, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(length))
            for key, tensor in header.items():
                if key != "__metadata__":
                    count = 1
                    for size in tensor["shape"]:
                        count *= size
                    total += count
    except (OSError, ValueError, KeyError, struct.error):
        return None
    return total


def _blob_fingerprint(folder: Path) -> str | None:
    """The HF cache's weights are symlinks to ``blobs/<sha256>``: their names are the checksums."""
    checksums = {}
    for path in folder.iterdir():
        if path.name.endswith(store.WEIGHT_SUFFIXES):
            blob = Path(path.resolve()).name
            if not SHA256_HEX.match(blob):
                return None
            checksums[path.name] = blob
    return store.weights_fingerprint(checksums) if checksums else None
