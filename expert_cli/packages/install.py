"""The user-level operations on installed experts: ``install_expert``, ``uninstall_expert``, ``update_expert``.

Sources are resolved here (a file, a folder packaged on the fly, a Git clone with release files or an expert
folder); verification and the atomic move into place live in :mod:`expert_cli.packages.staging`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from expert_cli.core.errors import InstallError
from expert_cli.core.progress import ProgressCallback
from expert_cli.core.versions import parse_requirement
from expert_cli.manifest.model import MANIFEST_FILE, parse_manifest
from expert_cli.packages.build import WEIGHT_FILES, build_package
from expert_cli.packages.git import ClonedRepo, clone_repo, is_lfs_pointer, pick_release, resolve_lfs
from expert_cli.packages.install_source import FILE, FOLDER, GIT, Source, parse_source, redact_credentials
from expert_cli.packages.registry import InstalledExpert, read_registry, registry_lock, write_registry
from expert_cli.packages.staging import (
    InstallOptions,
    InstallResult,
    Prepared,
    commit_install,
    move_out_of_tree,
    prepare_package,
    staging_area,
)


@dataclass
class UninstallResult:
    removed: list[dict[str, str]]
    kept_files: list[str] = field(default_factory=list)
    dependents: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "kept_files": self.kept_files, "dependents": self.dependents}


@dataclass
class UpdateResult:
    name: str
    previous_version: str
    version: str
    status: str  # "updated" | "reinstalled" | "up-to-date"
    commit: str | None
    install: InstallResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "previous_version": self.previous_version, "version": self.version,
                "status": self.status, "commit": self.commit,
                "install": self.install.to_dict() if self.install else None}


def install_expert(source: str, options: InstallOptions | None = None,
                   progress: ProgressCallback | None = None) -> InstallResult:
    """Install from a ``.expert`` file, an expert folder or a Git URL (see :mod:`expert_cli.packages.install_source`)."""
    options = options or InstallOptions()
    parsed = parse_source(source)
    with staging_area("install") as scratch:
        prepared = fetch_and_prepare(parsed, scratch, options, progress)
        return commit_install(prepared, scratch, options)


def fetch_and_prepare(source: Source, scratch: Path, options: InstallOptions,
                      progress: ProgressCallback | None) -> Prepared:
    if source.kind == FILE:
        return prepare_package(Path(source.location), scratch, source.location, options, progress=progress)
    if source.kind == FOLDER:
        package = _package_folder(Path(source.location), scratch, options)
        return prepare_package(package, scratch, source.location, options, local=True, progress=progress)
    repo = clone_repo(source.location, source.ref, scratch / "clone", progress)
    package = _package_from_repo(repo, scratch, options)
    return prepare_package(package, scratch, redact_credentials(source.original), options, git=repo.to_dict(),
                           progress=progress)


def _package_folder(folder: Path, scratch: Path, options: InstallOptions) -> Path:
    out = scratch / "build"
    out.mkdir(exist_ok=True)
    return build_package(folder, out, model=options.model, follow_symlinks=False).path


def _package_from_repo(repo: ClonedRepo, scratch: Path, options: InstallOptions) -> Path:
    """The newest matching release file in the repo, else the repo's own folder packaged on the fly."""
    manifest_name = None
    if (repo.path / MANIFEST_FILE).is_file():
        manifest_name = parse_manifest(repo.path / MANIFEST_FILE).name
    release = pick_release(repo, manifest_name, options.model)
    if release is not None:
        return release
    if manifest_name is None:
        raise InstallError(f"`{repo.url}` has neither `.expert` release files nor a `manifest.json`",
                           hint="install from a repository of an expert, or from a `.expert` file")
    for weights in [repo.path / name for name in WEIGHT_FILES] + list(repo.path.glob("weights/*/adapter/*")):
        if is_lfs_pointer(weights):
            resolve_lfs(repo, weights)
    return _package_folder(repo.path, scratch, options)


def uninstall_expert(spec_text: str) -> UninstallResult:
    """Unregister ``name[@version]`` (every version without one) and delete its folders."""
    with staging_area("uninstall") as scratch, registry_lock():
        registry = read_registry()
        spec = registry.resolve(spec_text)
        removed = registry.remove(spec.name, spec.version)
        write_registry(registry)
        kept = [e.path for i, e in enumerate(removed)  # a folder already gone needs no warning
                if Path(e.path).exists() and not move_out_of_tree(e, scratch / f"trash-{i}")]
        dependents = _dependents(registry.experts(), spec.name)
    return UninstallResult([{"name": e.name, "version": e.version, "path": e.path} for e in removed], kept, dependents)


def _dependents(experts: list[InstalledExpert], name: str) -> list[str]:
    """Installed experts whose recorded dependencies name ``name`` and that no remaining version satisfies."""
    remaining = {e.name for e in experts}
    if name in remaining:
        return []
    out = []
    for entry in experts:
        for dependency in entry.dependencies:
            if isinstance(dependency, dict) and parse_requirement(str(dependency.get("name", "x"))).name == name:
                out.append(entry.spec)
    return out


def update_expert(spec_text: str, options: InstallOptions | None = None,
                  progress: ProgressCallback | None = None) -> UpdateResult:
    """Re-fetch an expert from its recorded Git source and install what it now holds."""
    options = options or InstallOptions()
    registry = read_registry()
    spec = registry.resolve(spec_text)
    current = registry.get(spec.name, spec.version)
    if options.model is None and current.base_model:  # the installed copy's base, so no `--model` is needed
        options = replace(options, model=current.base_model)
    source = parse_source(current.source) if current.source.strip() else None
    if source is None or source.kind != GIT:
        raise InstallError(f"`{current.spec}` was installed from `{current.source or 'an unknown source'}`, not from Git; "
                           "there is nothing to update from",
                           hint="reinstall it with `expert-cli install <source> --force`")
    with staging_area("update") as scratch:
        prepared = fetch_and_prepare(source, scratch, options, progress)
        commit = (prepared.git or {}).get("commit")
        new_version = prepared.manifest.version
        if prepared.manifest.name != current.name:
            raise InstallError(f"`{current.source}` now holds `{prepared.manifest.name}`, not `{current.name}`")
        installed = read_registry().find(current.name, new_version)
        if installed is not None and (installed.extra.get("git") or {}).get("commit") == commit:
            return UpdateResult(current.name, current.version, new_version, "up-to-date", commit)
        result = commit_install(prepared, scratch, replace(options, force=True), replaces=current.version)
    status = "reinstalled" if new_version == current.version else "updated"
    return UpdateResult(current.name, current.version, new_version, status, commit, result)
