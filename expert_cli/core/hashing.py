"""SHA-256 of files, folders and canonical JSON, and the ``sha256sum``-format sidecar of a package."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from expert_cli.core.errors import PackageError
from expert_cli.core.progress import ProgressCallback, report

CHUNK = 1 << 20
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")  # a SHA-256 as sha256sum writes it
SIDECAR_SUFFIX = ".sha256"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, progress: ProgressCallback | None = None, task: str = "hashing",
                done: int = 0, total: int | None = None) -> str:
    """Hex SHA-256 of one file, read in 1 MiB chunks; ``done``/``total`` let callers report a group."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
            done += len(chunk)
            report(progress, task, done, total)
    return digest.hexdigest()


def hash_files(files: dict[str, Path], progress: ProgressCallback | None = None) -> dict[str, str]:
    """``{name: hex}`` for ``{name: file}``, sorted by name, with one progress bar over all bytes."""
    sizes = {name: path.stat().st_size for name, path in files.items()}
    total, done, hashes = sum(sizes.values()), 0, {}
    for name in sorted(files):
        hashes[name] = sha256_file(files[name], progress, "hashing", done, total)
        done += sizes[name]
    return hashes


def list_files(root: Path) -> list[str]:
    """Every regular file under ``root`` as a ``/``-separated relative path, sorted."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def canonical_json(data: Any) -> bytes:
    """The one byte form of a JSON value that signatures cover: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sidecar_path(package: Path) -> Path:
    return package.with_name(package.name + SIDECAR_SUFFIX)


def write_sidecar(package: Path, digest: str | None = None) -> Path:
    """Write ``<package>.sha256`` as ``"<hex>  <file name>\\n"`` (checkable with ``sha256sum -c``)."""
    digest = digest or sha256_file(package)
    target = sidecar_path(package)
    from expert_cli.core.files import atomic_write_text

    atomic_write_text(target, f"{digest}  {package.name}\n")
    return target


def check_sidecar(package: Path, digest: str | None = None) -> str | None:
    """Compare the package with its sidecar when one exists; returns the digest checked, None without one."""
    target = sidecar_path(package)
    if not target.is_file():
        return None
    expected = target.read_text(encoding="utf-8", errors="replace").strip().split(" ")[0].lower()
    actual = digest or sha256_file(package)
    if expected != actual:
        raise PackageError(
            f"`{package.name}` does not match its checksum file `{target.name}` "
            f"(expected `{expected[:16]}...`, got `{actual[:16]}...`)",
            hint="the download is corrupt or was tampered with; fetch the package again",
        )
    return actual
