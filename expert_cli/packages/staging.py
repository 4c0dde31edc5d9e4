"""``install``: fetch, verify, then move into ``$EXPERT_HOME/experts/<name>/<version>/`` and register.

Every install works in a private staging folder under ``paths.tmp_dir()`` (same filesystem as the install
tree): the package is extracted and verified there, and only a complete, verified folder is renamed into
place, under the registry lock, right before the registry is saved. A failure rolls both back; a process
killed at any point leaves at worst an unregistered folder, which the next install replaces, and a stale
staging folder, which the next run sweeps. The registry never lists a missing or partial install.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core import paths
from expert_cli.core.errors import InstallError, UsageError, storage_error
from expert_cli.core.files import ensure_dir
from expert_cli.core.progress import ProgressCallback
from expert_cli.core.versions import parse_requirement, satisfies
from expert_cli.manifest.model import Manifest, load_manifest
from expert_cli.packages.integrity import IntegrityReport, open_verified
from expert_cli.packages.policy import (
    BY_FLAG,
    TRUSTED,
    UNSIGNED,
    check_publisher,
    check_version,
    decide_trust,
)
from expert_cli.packages.registry import (
    InstalledExpert,
    Registry,
    read_registry,
    registry_lock,
    utc_now,
    write_registry,
)
from expert_cli.packages.trust import list_trusted_keys

LOCAL = "local"
_STAGING = re.compile(r"^[a-z]+-(\d+)-")


@dataclass
class InstallOptions:
    force: bool = False
    allow_unsigned: bool = False
    trust_keys: tuple[str, ...] = ()
    model: str | None = None
    allow_new_publisher: bool = False  # accept a package for a pinned name signed by another key (and re-pin)
    allow_downgrade: bool = False  # accept a version below the newest installed one


@dataclass
class Prepared:
    """A verified package extracted into a staging folder, ready to be committed."""

    folder: Path
    manifest: Manifest
    integrity: IntegrityReport
    trust: str
    source: str
    git: dict[str, Any] | None = None
    index: dict[str, Any] | None = None  # the index entry it was installed through (packages/index_install.py)


@dataclass
class InstallResult:
    name: str
    version: str
    base_model: str
    path: str
    source: str
    trust: str
    fingerprint: str | None
    replaced: bool
    files: int
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    git: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@contextlib.contextmanager
def staging_area(purpose: str) -> Iterator[Path]:
    """A private folder ``tmp/<purpose>-<pid>-<random>``, removed afterwards (stale ones are swept)."""
    root = ensure_dir(paths.tmp_dir())
    sweep_stale_staging(root)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{purpose}-{os.getpid()}-", dir=root))
    except OSError as exc:
        raise storage_error("create a staging folder in", root, exc) from exc
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_stale_staging(root: Path) -> None:
    """Remove staging folders whose process is gone (left by a crash or a kill)."""
    for child in root.iterdir() if root.is_dir() else []:
        match = _STAGING.match(child.name)
        if match and not _pid_alive(int(match.group(1))):
            shutil.rmtree(child, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_package(package: Path, scratch: Path, source: str, options: InstallOptions, *, local: bool = False,
                    git: dict[str, Any] | None = None, progress: ProgressCallback | None = None) -> Prepared:
    """Check the sidecar, extract safely, verify hashes and signature, decide trust."""
    opened = open_verified(package, scratch / "staged", progress)
    folder, integrity = opened.folder, opened.report
    trust = decide_trust(integrity, options.allow_unsigned, options.trust_keys)
    if local and trust == UNSIGNED:
        trust = LOCAL
    manifest = load_manifest(folder)
    if options.model is not None:
        check_base_model(manifest, options.model, package.name)
    return Prepared(folder, manifest, integrity, trust, source, git)


def check_base_model(manifest: Manifest, model: str, label: str) -> None:
    """A package built for another base model than ``--model`` asks for is refused, not installed."""
    try:
        manifest.base_model(model)
    except UsageError:
        built = ", ".join(f"`{spec.name}`" for spec in manifest.base_models)
        raise InstallError(f"`{label}` is built for {built}, not for `{model}`",
                           hint="install a package built for that base model, or leave out `--model`") from None


def check_requirements(manifest: Manifest, registry: Registry) -> list[dict[str, Any]]:
    """Every ``constraints.requires`` entry must be installed in a matching version."""
    requirements = [parse_requirement(text) for text in manifest.constraints.requires]
    problems = []
    for req in requirements:
        if req.name == manifest.name:
            continue
        versions = [e.version for e in registry.experts() if e.name == req.name]
        if not versions:
            problems.append(f"`{req}` (not installed)")
        elif not any(satisfies(v, req.range) for v in versions):
            problems.append(f"`{req}` (installed: {', '.join(versions)})")
    if problems:
        raise InstallError(f"`{manifest.name}@{manifest.version}` requires {', '.join(problems)}",
                           hint="install the required experts first with `expert-cli install <source>`")
    return [req.to_dict() for req in requirements]


def build_entry(prepared: Prepared, target: Path, dependencies: list[dict[str, Any]]) -> InstalledExpert:
    manifest, integrity = prepared.manifest, prepared.integrity
    model = manifest.base_models[0]
    weights = prepared.folder / "adapter_model.safetensors"
    size = weights.stat().st_size if weights.is_file() else 0
    adapters = [{"type": a.type, "path": str(target), "size_bytes": size,
                 "sha256": integrity.files.get("adapter_model.safetensors")} for a in model.adapters]
    extra: dict[str, Any] = {"integrity": {"trust": prepared.trust, "signed": integrity.verified,
                                           "fingerprint": integrity.fingerprint, "pubkey": integrity.pubkey}}
    if prepared.trust == TRUSTED and integrity.pubkey not in {key.pubkey for key in list_trusted_keys()}:
        extra["integrity"]["trusted_by"] = BY_FLAG  # accepted with `--trust-key` for this install
    if prepared.git:
        extra["git"] = prepared.git
    if prepared.index:
        extra["index"] = prepared.index
    return InstalledExpert(manifest.name, manifest.version, model.name, str(target), prepared.source, utc_now(),
                           adapters, manifest.capabilities, dependencies, extra)


def commit_install(prepared: Prepared, scratch: Path, options: InstallOptions,
                   replaces: str | None = None) -> InstallResult:
    """Check the name's pinned key and version, move the staged folder into place and register it, all under
    the registry lock (so two installs cannot both pass the checks)."""
    name, version = prepared.manifest.name, prepared.manifest.version
    target = paths.install_dir(name, version)
    with registry_lock():
        registry = read_registry()
        check_publisher(registry, name, prepared.integrity.pubkey if prepared.integrity.verified else None,
                        prepared.integrity.label, options.allow_new_publisher)
        existing = registry.find(name, version)
        if existing is not None and not options.force:
            raise InstallError(f"`{name}@{version}` is already installed at `{existing.path}`",
                               hint="pass `--force` to reinstall it")
        check_version(registry, name, version, options.allow_downgrade)
        dependencies = check_requirements(prepared.manifest, registry)
        entry = build_entry(prepared, target, dependencies)
        pin = prepared.integrity.pubkey if prepared.integrity.verified else None  # first use, or allowed
        _swap_into_place(prepared.folder, target, scratch, registry, existing, entry, pin)
        if replaces and replaces != version and registry.find(name, replaces):
            _retire(registry, name, replaces, scratch)
    return InstallResult(name, version, entry.base_model, str(target), entry.source, prepared.trust,
                         prepared.integrity.fingerprint, existing is not None, len(prepared.integrity.files),
                         dependencies, prepared.git)


def _swap_into_place(staged: Path, target: Path, scratch: Path, registry: Registry,
                     existing: InstalledExpert | None, entry: InstalledExpert,
                     pin: str | None = None) -> None:
    previous = scratch / "previous"
    pins = dict(registry.publisher_keys)
    if existing is not None:  # de-list first: a kill from here on leaves it unlisted, never half-listed
        registry.remove(existing.name, existing.version)
        write_registry(registry)
    try:
        if target.exists() or target.is_symlink():
            os.rename(target, previous)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, target)
        registry.add(entry)
        if pin is not None:
            registry.publisher_keys[entry.name] = pin
        write_registry(registry)
    except OSError as exc:
        registry.publisher_keys = pins
        _rollback(staged, target, previous, registry, existing, entry)
        raise InstallError(f"could not move `{entry.spec}` into `{target}`: {exc.strerror or exc}; "
                           "the install tree and the registry were left as they were",
                           hint=f"check free space and permissions under `{paths.expert_home()}`") from exc
    except BaseException:
        registry.publisher_keys = pins
        _rollback(staged, target, previous, registry, existing, entry)
        raise


def _rollback(staged: Path, target: Path, previous: Path, registry: Registry,
              existing: InstalledExpert | None, entry: InstalledExpert) -> None:
    with contextlib.suppress(Exception):
        if target.exists() and not staged.exists():
            os.rename(target, staged)
        if previous.exists() and not target.exists():
            os.rename(previous, target)
        if registry.find(entry.name, entry.version) is not None:
            registry.remove(entry.name, entry.version)
        if existing is not None:
            registry.add(existing)
        write_registry(registry)


def _retire(registry: Registry, name: str, version: str, scratch: Path) -> None:
    """Unregister one version (saved first) and move its folder out of the tree."""
    removed = registry.remove(name, version)
    write_registry(registry)
    for index, entry in enumerate(removed):
        move_out_of_tree(entry, scratch / f"retired-{index}")


def owned_folder(entry: InstalledExpert) -> Path | None:
    """The folder the layout assigns to ``entry`` (``experts/<name>/<version>/``) when it is a real folder
    there and the registry records that very folder; None otherwise (nothing of it may be deleted)."""
    root = paths.experts_dir().resolve()
    folder = paths.install_dir(entry.name, entry.version)
    parts_ok = all(part not in ("", ".", "..") and "/" not in part and "\\" not in part
                   for part in (entry.name, entry.version))
    if not parts_ok or folder.is_symlink() or folder.parent.is_symlink() or not folder.is_dir():
        return None
    try:
        resolved, recorded = folder.resolve(), Path(entry.path).resolve() if entry.path else folder.resolve()
    except (OSError, RuntimeError):
        return None
    if resolved.parent.parent != root or recorded != resolved:
        return None
    return resolved


def move_out_of_tree(entry: InstalledExpert, trash: Path) -> bool:
    """Rename the folder of ``entry`` (see :func:`owned_folder`) to ``trash``; False when there is none."""
    folder = owned_folder(entry)
    if folder is None:
        return False
    try:
        os.rename(folder, trash)
    except OSError:  # another filesystem: delete in place
        shutil.rmtree(folder, ignore_errors=True)
    parent = folder.parent
    if not any(parent.iterdir()):
        parent.rmdir()
    return True
