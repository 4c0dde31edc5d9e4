"""Installing through the indexes: fetch the package from where its entry says, check its SHA-256 against
the entry *before* anything is extracted, then the usual verified install (signature, trust policy, the key
pinned to the name) plus one more check: the key that signed it is the entry's publisher key.

``update`` and ``outdated`` of an expert installed this way go through the index again, within the range it
was asked for (``install sql@^1.2`` keeps ``update sql`` on 1.x).
"""

from __future__ import annotations

import shutil
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from expert_cli.core.errors import InstallError, PackageError, SignatureError
from expert_cli.core.hashing import sha256_file
from expert_cli.core.progress import ProgressCallback, report
from expert_cli.core.versions import version_key
from expert_cli.packages.git import clone_repo, resolve_lfs
from expert_cli.packages.install import UpdateResult
from expert_cli.packages.install_source import redact_credentials
from expert_cli.packages.registry import InstalledExpert, read_registry
from expert_cli.packages.resolve import (
    Resolved,
    bases_on_hand,
    entries_named,
    pick,
    plan_requirements,
    resolve_spec,
)
from expert_cli.packages.signing import fingerprint
from expert_cli.packages.staging import (
    InstallOptions,
    InstallResult,
    commit_install,
    prepare_package,
    staging_area,
)

CHUNK = 1 << 20
DOWNLOAD_TIMEOUT_S = 60
CHECKSUM_HINT = "the package was changed after it was published, or the index is wrong; do not install it"


@dataclass
class IndexInstallResult:
    """The experts installed for one ``install NAME``: its requirements first, then the expert."""

    resolved: Resolved
    installed: list[InstallResult]

    def to_dict(self) -> dict[str, Any]:
        return {"resolved": self.resolved.to_dict(), "installed": [r.to_dict() for r in self.installed]}


@dataclass
class OutdatedRow:
    name: str
    installed: str
    wanted: str | None  # the newest version in the range it was installed with
    latest: str | None  # the newest version of all
    requested: str
    index: str
    yanked: bool  # the installed version is yanked in the index

    @property
    def outdated(self) -> bool:
        newer = [v for v in (self.wanted, self.latest) if v]
        return any(version_key(v) > version_key(self.installed) for v in newer)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "outdated": self.outdated}


def install_from_index(spec: str, options: InstallOptions, progress: ProgressCallback | None = None,
                       index: str | None = None) -> IndexInstallResult:
    """Install ``NAME[@range]`` and whatever it ``requires`` that is not installed yet."""
    registry = read_registry()
    root = resolve_spec(spec, index=index, model=options.model, preferred_models=bases_on_hand())
    results = []
    for item in plan_requirements(root, registry, index) + [root]:
        results.append(install_resolved(item, options, progress))
    return IndexInstallResult(root, results)


def install_resolved(item: Resolved, options: InstallOptions, progress: ProgressCallback | None = None,
                     replaces: str | None = None) -> InstallResult:
    entry = item.entry
    options = replace(options, model=entry.base_model_names[0])
    with staging_area("index") as scratch:
        package = fetch_package(item, scratch, progress)
        prepared = prepare_package(package, scratch, f"index:{item.index}", options, progress=progress)
        key = prepared.integrity.pubkey if prepared.integrity.verified else None
        if key != entry.publisher["key"]:
            by = f"key `{fingerprint(key)}`" if key else "no key (it is not signed)"
            raise SignatureError(f"`{entry.spec}` from index `{item.index}` is signed by {by}, but the index "
                                 f"names the publisher key `{entry.publisher['fingerprint']}`",
                                 hint="the package or the index was tampered with; do not install it")
        prepared.index = {"index": item.index, "requested": item.requested, "sha256": entry.sha256,
                          "source": entry.source}
        return commit_install(prepared, scratch, options, replaces=replaces)


def fetch_package(item: Resolved, scratch: Path, progress: ProgressCallback | None = None) -> Path:
    """The package file of ``item`` in ``scratch``, once its bytes match the entry's SHA-256."""
    entry, source = item.entry, item.entry.source
    if "url" in source:
        package = download(source["url"], scratch / "download" / f"{entry.name}-{entry.version}.expert",
                           entry.size_bytes, progress)
    else:
        package = _from_git(source, scratch, progress)
    digest = sha256_file(package, progress)
    if digest != entry.sha256:
        raise PackageError(f"the package fetched for `{entry.spec}` does not match the SHA-256 in index "
                           f"`{item.index}` (expected `{entry.sha256[:16]}...`, got `{digest[:16]}...`); "
                           "nothing was extracted", hint=CHECKSUM_HINT)
    return package


def download(url: str, target: Path, size: int, progress: ProgressCallback | None = None) -> Path:
    """Copy a ``file://`` URL or download an ``http(s)://`` one into ``target``, at most ``size`` bytes."""
    parsed = urlparse(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    shown = redact_credentials(url)
    try:
        if parsed.scheme == "file":
            with open(unquote(parsed.path), "rb") as handle:
                _copy_bounded(handle, target, size, shown, progress)
        elif parsed.scheme in ("http", "https"):
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as handle:
                _copy_bounded(handle, target, size, shown, progress)
        else:
            raise InstallError(f"the package URL `{shown}` is not a file://, http:// or https:// URL",
                               hint="ask the index maintainers to fix the entry")
    except OSError as exc:
        raise InstallError(f"cannot fetch `{shown}`: {getattr(exc, 'reason', None) or exc.strerror or exc}",
                           hint="check that the package is still there and that you can reach it") from None
    return target


def _copy_bounded(handle: Any, target: Path, size: int, shown: str, progress: ProgressCallback | None) -> None:
    done = 0
    with open(target, "wb") as out:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            done += len(chunk)
            if done > size:
                raise PackageError(f"`{shown}` is larger than the {size:,} bytes its index entry states; "
                                   "nothing was extracted", hint=CHECKSUM_HINT)
            out.write(chunk)
            report(progress, "downloading", done, size)


def _from_git(source: dict[str, Any], scratch: Path, progress: ProgressCallback | None) -> Path:
    repo = clone_repo(source["git"], source.get("ref") or source.get("commit"), scratch / "clone", progress)
    if source.get("commit") and repo.commit != source["commit"]:
        raise PackageError(f"`{redact_credentials(source['git'])}` at `{source.get('ref')}` is commit "
                           f"`{repo.commit[:12]}`, not `{source['commit'][:12]}` as the index says",
                           hint="the tag was moved after publishing; ask the publisher")
    package = repo.path / source["path"]
    root = repo.path.resolve()
    if package.is_symlink() or not package.is_file() or root not in package.resolve().parents:
        raise InstallError(f"`{source['path']}` is not a file in `{redact_credentials(source['git'])}`",
                           hint="ask the index maintainers to fix the entry")
    resolve_lfs(repo, package)
    copy = scratch / "download" / package.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(package, copy)
    return copy


def index_record(entry: InstalledExpert) -> dict[str, Any] | None:
    """The index an installed expert came from (None when it came from elsewhere)."""
    record = entry.extra.get("index")
    return record if isinstance(record, dict) and isinstance(record.get("index"), str) else None


def update_from_index(entry: InstalledExpert, options: InstallOptions,
                      progress: ProgressCallback | None = None) -> UpdateResult:
    """Install the newest version in the recorded range, replacing ``entry``; never a lower version."""
    record = index_record(entry) or {}
    requested = str(record.get("requested") or "*")
    _, entries = entries_named(entry.name, record["index"])
    best = pick(entries, requested, options.model or entry.base_model)
    if version_key(best.version) <= version_key(entry.version):
        return UpdateResult(entry.name, entry.version, entry.version, "up-to-date", None)
    result = install_resolved(Resolved(record["index"], best, requested), options, progress, replaces=entry.version)
    return UpdateResult(entry.name, entry.version, best.version, "updated", best.source.get("commit"), result)


def outdated_experts() -> list[OutdatedRow]:
    """Every expert installed from an index (its newest installed version) against what the index holds."""
    registry = read_registry()
    rows = []
    for name in registry.names():
        entry = registry.find(name)
        record = index_record(entry) if entry else None
        if entry is None or record is None:
            continue
        requested = str(record.get("requested") or "*")
        _, entries = entries_named(name, record["index"])
        yanked = any(e.yanked and e.version == entry.version for e in entries)
        rows.append(OutdatedRow(name, entry.version, _newest(entries, requested, entry.base_model),
                                _newest(entries, "*", entry.base_model), requested, record["index"], yanked))
    return rows


def _newest(entries: list[Any], requested: str, model: str) -> str | None:
    try:
        return pick(entries, requested, model).version
    except InstallError:
        return None
