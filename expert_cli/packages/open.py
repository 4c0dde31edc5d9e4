"""Where an expert's files are: a folder, a ``.expert`` package (extracted once, cached by SHA-256), or an
installed name (``sql``, ``expert-sql@0.3.0``) looked up in the registry. Pure Python, no torch.

Packages are checked the way ``install`` checks them (sidecar ``.sha256`` when present, vetted extraction,
file hashes and signature when the manifest lists them) and extracted into
``$EXPERT_HOME/cache/packages/<sha256>/`` through a temporary folder renamed into place, so a crash never
leaves a half-extracted cache entry and a changed package gets a new entry.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from expert_cli.core import paths
from expert_cli.core.errors import PackageError
from expert_cli.manifest.model import MANIFEST_FILE

PACKAGE_SUFFIXES = (".expert", ".tar.gz", ".tgz")


def resolve_expert_source(source: str | Path) -> Path:
    """The folder holding ``manifest.json`` for a folder, package file or installed expert name."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        if path.name == MANIFEST_FILE:
            return path.parent
        return extracted_package(path)
    text = str(source)
    if any(sep in text for sep in ("/", "\\")) or text.endswith(PACKAGE_SUFFIXES):
        raise PackageError(f"no expert folder or package at `{text}`",
                           hint="pass an expert folder, a `.expert` file, or an installed name (see `expert-cli list`)")
    return installed_folder(text)


def installed_folder(spec_text: str) -> Path:
    """The install folder of an installed expert (``name`` or ``name@version``; the latest when no version)."""
    from expert_cli.packages.registry import read_registry
    from expert_cli.core.specs import parse_expert_spec

    spec = parse_expert_spec(spec_text)
    entry = read_registry().get(spec.name, spec.version)
    folder = Path(entry.path) if entry.path else paths.install_dir(entry.name, entry.version)
    if not (folder / MANIFEST_FILE).is_file():
        raise PackageError(f"`{entry.spec}` is registered but `{folder}` has no manifest",
                           hint="reinstall it: `expert-cli install <source> --force`")
    return folder


def extracted_package(package: Path) -> Path:
    """The cached extraction of ``package``; extracts (verified) on first use."""
    from expert_cli.core.hashing import sha256_file

    digest = sha256_file(package)
    target = paths.cache_dir() / "packages" / digest
    if (target / MANIFEST_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=target.parent))
    try:
        extract_verified(package, scratch / "files", digest)
        try:
            (scratch / "files").rename(target)
        except OSError:
            if not (target / MANIFEST_FILE).is_file():  # not a concurrent extraction of the same package
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def extract_verified(package: Path, dest: Path, digest: str) -> None:
    """Check the sidecar, extract with the vetted extractor, verify hashes and signature (as ``install``)."""
    from expert_cli.packages.archive import extract_archive
    from expert_cli.core.hashing import check_sidecar
    from expert_cli.packages.integrity import check_package_folder

    check_sidecar(package, digest)
    extract_archive(package, dest)
    check_package_folder(dest, package.name)
