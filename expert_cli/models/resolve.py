"""Where a base model's files are: a built-in demo base, a local folder, a model imported into the model store
(``expert-cli model import|pull``, :mod:`expert_cli.models.store`), or a Hugging Face id in the HF cache.

``builtin:tiny-qwen3`` is the small Qwen3 shipped inside the package (``expert_cli/models/tiny-qwen3/``,
built by ``scripts/build_demo_base.py``) so that everything works offline on a CPU. Its ``checksums.json``
records the SHA-256 of every file; :func:`verify_builtin` checks them. Nothing here downloads: a Hugging Face
id resolves only when the model is already in the local cache.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from expert_cli.core.errors import ExpertError, ModelNotFoundError, require
from expert_cli.core.hashing import list_files, sha256_file
from expert_cli.core.progress import ProgressCallback

BUILTIN_PREFIX = "builtin:"
CHECKSUMS_FILE = "checksums.json"
# owner/name as the hub spells it; a bare name (``gpt2``) is a legacy hub id too.
HF_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


def builtin_models_dir() -> Path:
    """The folder inside the installed package that holds one sub-folder per built-in model."""
    return Path(__file__).resolve().parent


def builtin_models() -> dict[str, Path]:
    """``{"builtin:<name>": folder}`` for every shipped model folder (one with a ``config.json``)."""
    root = builtin_models_dir()
    if not root.is_dir():
        return {}
    return {BUILTIN_PREFIX + p.name: p for p in sorted(root.iterdir()) if (p / "config.json").is_file()}


def is_builtin(name: str) -> bool:
    """True for a ``builtin:`` name (known or not); :func:`resolve_base_model` rejects unknown ones."""
    return name.strip().startswith(BUILTIN_PREFIX)


def resolve_base_model(name_or_path: str) -> Path:
    """The local folder for a base model name.

    ``builtin:<name>`` -> the shipped folder; an existing folder -> itself; the name of an imported model
    (``smollm2-135m``) -> its folder in ``$EXPERT_HOME/models/``; a Hugging Face id such as
    ``Qwen/Qwen3-0.6B`` -> its snapshot in the local HF cache. Raises :class:`ModelNotFoundError` otherwise.
    """
    from expert_cli.models.store import stored_model_dir

    name = name_or_path.strip()
    if is_builtin(name):
        return _resolve_builtin(name)
    local = Path(name).expanduser()
    if local.is_dir():
        return local
    stored = stored_model_dir(name)
    if stored is not None:
        return stored
    if _looks_like_path(name):
        raise ModelNotFoundError(f"base model folder `{name}` does not exist",
                                 hint="pass an existing model folder, a Hugging Face id or `builtin:tiny-qwen3`")
    return _resolve_hf_cache(name)


def _resolve_builtin(name: str) -> Path:
    models = builtin_models()
    if name not in models:
        known = ", ".join(f"`{n}`" for n in models) or "none"
        raise ModelNotFoundError(f"unknown built-in base model `{name}` (built-in models: {known})",
                                 hint="use `builtin:tiny-qwen3`")
    return models[name]


def _looks_like_path(name: str) -> bool:
    """A name that can only be a filesystem path: absolute, relative with dots, Windows-style, or nested."""
    return bool(name.startswith(("/", ".", "~")) or "\\" in name or re.match(r"^[A-Za-z]:", name)
                or not HF_REPO_ID.match(name))


def _resolve_hf_cache(repo_id: str) -> Path:
    require("huggingface_hub", "train")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError):
        raise ModelNotFoundError(
            f"base model `{repo_id}` is neither an imported model nor in the Hugging Face cache",
            hint=f"run `expert-cli model pull {repo_id}` (or `hf download {repo_id}`) with network access "
                 "(and `HF_HUB_OFFLINE` unset), import a "
                 "GGUF with `expert-cli model import`, see `expert-cli model list`, or use `builtin:tiny-qwen3`"
        ) from None
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"the cached copy of `{repo_id}` at `{folder}` has no `config.json`",
                                 hint=f"run `hf download {repo_id}` again to complete it")
    return folder


def verify_builtin(name: str, progress: ProgressCallback | None = None) -> None:
    """Recompute the SHA-256 of a built-in model's files against its ``checksums.json``."""
    if not is_builtin(name):
        raise ModelNotFoundError(f"`{name}` is not a built-in base model", hint="use `builtin:tiny-qwen3`")
    verify_model_folder(_resolve_builtin(name.strip()), progress)


def verify_model_folder(folder: Path, progress: ProgressCallback | None = None) -> None:
    """Check every file of ``folder`` against its ``checksums.json``: none changed, missing or added."""
    expected = _read_checksums(folder)
    present = set(list_files(folder)) - {CHECKSUMS_FILE}
    missing = sorted(set(expected) - present)
    added = sorted(present - set(expected))
    if missing or added:
        problem = f"`{missing[0]}` is missing" if missing else f"`{added[0]}` is not listed in `{CHECKSUMS_FILE}`"
        raise ExpertError(f"base model folder `{folder}` does not match its checksums: {problem}",
                          hint="reinstall expert-cli, or rebuild it with `scripts/build_demo_base.py`")
    total = sum((folder / name).stat().st_size for name in expected)
    done = 0
    for name in sorted(expected):
        actual = sha256_file(folder / name, progress, "verifying base model", done, total)
        done += (folder / name).stat().st_size
        if actual != expected[name]:
            raise ExpertError(f"base model file `{folder / name}` has SHA-256 `{actual[:16]}...`, "
                              f"expected `{expected[name][:16]}...`",
                              hint="reinstall expert-cli, or rebuild it with `scripts/build_demo_base.py`")


def base_fingerprint(folder: Path) -> str | None:
    """The fingerprint of a base model folder's weights (:func:`expert_cli.models.store.weights_fingerprint`),
    read from its ``checksums.json`` (built-in and imported models have one); None for other folders."""
    from expert_cli.models.store import weights_fingerprint

    try:
        return weights_fingerprint(_read_checksums(Path(folder)))
    except ExpertError:
        return None


def _read_checksums(folder: Path) -> dict[str, str]:
    path = folder / CHECKSUMS_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExpertError(f"base model folder `{folder}` has no `{CHECKSUMS_FILE}`") from None
    except (OSError, ValueError) as exc:
        raise ExpertError(f"`{path}` cannot be read: {exc}") from None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict) or not files or document.get("algorithm") != "sha256":
        raise ExpertError(f"`{path}` is not a SHA-256 checksum list")
    return {str(k): str(v) for k, v in files.items()}
