"""Where an expert's files are: a folder, a ``.expert`` package (extracted once, cached by SHA-256), or an
installed name (``sql``, ``expert-sql@0.3.0``) looked up in the registry. Pure Python, no torch.

Packages go through :func:`~expert_cli.packages.integrity.open_verified` (the path ``install`` takes) and the
trust policy of :mod:`expert_cli.packages.policy`: an unsigned package needs ``allow_unsigned``, one signed by
a key not trusted here needs ``allow_untrusted``, and an installed expert whose key was revoked needs
``allow_untrusted`` too. Extraction goes into ``$EXPERT_HOME/cache/packages/<sha256>/`` through a temporary
folder renamed into place, so a crash never leaves a half-extracted cache entry. Every path a manifest names
must stay inside its folder (:mod:`expert_cli.manifest.locations`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from expert_cli.core import paths
from expert_cli.core.errors import PackageError
from expert_cli.manifest.locations import check_locations
from expert_cli.manifest.model import MANIFEST_FILE, parse_manifest

PACKAGE_SUFFIXES = (".expert", ".tar.gz", ".tgz")


def resolve_expert_source(source: str | Path, *, allow_unsigned: bool = False,
                          allow_untrusted: bool = False) -> Path:
    """The folder holding ``manifest.json`` for a folder, package file or installed expert name; packages
    and installed names go through the trust policy (``Expert.load`` passes its caller's flags)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return _checked(path)
    if path.is_file():
        if path.name == MANIFEST_FILE:
            return _checked(path.parent)
        return extracted_package(path, allow_unsigned=allow_unsigned, allow_untrusted=allow_untrusted)
    text = str(source)
    if any(sep in text for sep in ("/", "\\")) or text.endswith(PACKAGE_SUFFIXES):
        raise PackageError(f"no expert folder or package at `{text}`",
                           hint="pass an expert folder, a `.expert` file, or an installed name (see `expert-cli list`)")
    return installed_folder(text, allow_untrusted=allow_untrusted)


def _checked(folder: Path) -> Path:
    """``folder`` once its manifest names no file outside it."""
    manifest = parse_manifest(folder)
    check_locations(manifest.data, str(manifest.path))
    return folder


def installed_folder(spec_text: str, *, allow_untrusted: bool = False) -> Path:
    """The install folder of an installed expert (``name`` or ``name@version``; the latest when no version),
    refused when its publisher key is no longer trusted (unless ``allow_untrusted``)."""
    from expert_cli.packages.policy import check_usable
    from expert_cli.packages.registry import read_registry

    registry = read_registry()
    spec = registry.resolve(spec_text)
    entry = registry.get(spec.name, spec.version)
    check_usable(entry, allow_untrusted)
    folder = Path(entry.path) if entry.path else paths.install_dir(entry.name, entry.version)
    if not (folder / MANIFEST_FILE).is_file():
        raise PackageError(f"`{entry.spec}` is registered but `{folder}` has no manifest",
                           hint="reinstall it: `expert-cli install <source> --force`")
    return _checked(folder)


def extracted_package(package: Path, *, allow_unsigned: bool = False, allow_untrusted: bool = False) -> Path:
    """The cached, verified extraction of ``package``, once the trust policy accepts it."""
    from expert_cli.core.hashing import sha256_file
    from expert_cli.packages.integrity import check_package_folder, open_verified
    from expert_cli.packages.policy import decide_trust

    digest = sha256_file(package)
    target = paths.cache_dir() / "packages" / digest
    if (target / MANIFEST_FILE).is_file():  # verified when cached; the signature is checked again (cheap)
        report = check_package_folder(target, package.name)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=target.parent))
        try:
            report = open_verified(package, scratch / "files", digest=digest).report
            try:
                (scratch / "files").rename(target)
            except OSError:
                if not (target / MANIFEST_FILE).is_file():  # not a concurrent extraction of the same package
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    decide_trust(report, allow_unsigned=allow_unsigned, allow_untrusted=allow_untrusted)
    return target
