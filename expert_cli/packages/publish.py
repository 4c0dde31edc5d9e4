"""``publish`` and ``yank``: write an index entry from a signed package (never by hand), or mark one yanked,
in a working clone of an index, and commit the change there (pushing is the publisher's step).

A version already published for the same base model is refused when its checksum differs (published bytes
never change); the same bytes again change nothing. A name first published by one key is refused for
another key unless the publisher says so.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import InstallError, SignatureError, UsageError
from expert_cli.core.hashing import SHA256_HEX, sha256_file
from expert_cli.core.progress import ProgressCallback
from expert_cli.core.specs import canonical_name, parse_expert_spec
from expert_cli.manifest.model import Manifest, load_manifest
from expert_cli.packages.git import git_env
from expert_cli.packages.index import (
    MAX_FILE_BYTES,
    NAME,
    IndexEntry,
    entry_path,
    format_lines,
    parse_entry_file,
    read_bounded,
    read_config,
)
from expert_cli.packages.install_source import split_ref
from expert_cli.packages.integrity import IntegrityReport, open_verified
from expert_cli.packages.registry import utc_now

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class PublishResult:
    status: str  # "published" | "unchanged" | "yanked" | "unyanked"
    name: str
    version: str
    index: str
    file: str
    commit: str | None
    entries: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def publish_package(package: Path, index_root: Path, url: str | None = None, path_in_repo: str | None = None,
                    allow_new_publisher: bool = False, progress: ProgressCallback | None = None) -> PublishResult:
    """Append the entry for ``package`` to the index clone at ``index_root`` and commit it."""
    repo = _index_repo(index_root)
    package = Path(package).expanduser().absolute()
    with tempfile.TemporaryDirectory(prefix="expert-publish-") as scratch:
        opened = open_verified(package, Path(scratch) / "files", progress)
        if not opened.report.verified:
            raise SignatureError(f"`{package.name}` is not signed; an index lists signed packages only",
                                 hint="sign it first with `expert-cli sign PACKAGE`")
        weights = opened.folder / "adapter_model.safetensors"
        entry = build_entry(load_manifest(opened.folder), opened.report, sha256_file(package),
                            package.stat().st_size, package_source(package, url, path_in_repo),
                            weights.stat().st_size if weights.is_file() else 0)
    relative = entry_path(entry.name)
    existing = _read_file(index_root, relative, entry.name)
    same = [e for e in existing if e.version == entry.version and e.base_model_names == entry.base_model_names]
    if same and same[0].sha256 == entry.sha256:
        return PublishResult("unchanged", entry.name, entry.version, str(index_root), relative, None,
                             [same[0].to_dict()])
    if same:
        raise InstallError(f"`{entry.spec}` for `{entry.base_model_names[0]}` is already in the index with another "
                           f"checksum (`{same[0].sha256[:16]}...`); published packages never change",
                           hint="bump the version in the manifest, package and sign it again, then publish that")
    others = {e.publisher["fingerprint"] for e in existing} - {entry.publisher["fingerprint"]}
    if others and not allow_new_publisher:
        raise SignatureError(f"`{entry.name}` is published in this index by key `{min(others)}`, not by "
                             f"`{entry.publisher['fingerprint']}`",
                             hint="if the expert really changed hands, pass `--allow-new-publisher`")
    _write_file(index_root, relative, existing + [entry])
    commit = _commit(repo, relative, f"publish {entry.spec} ({entry.base_model_names[0]})")
    return PublishResult("published", entry.name, entry.version, str(index_root), relative, commit,
                         [entry.to_dict()])


def build_entry(manifest: Manifest, report: IntegrityReport, digest: str, size: int,
                source: dict[str, Any], adapter_size: int) -> IndexEntry:
    """The index line for a verified package: every field from its signed manifest and its bytes."""
    if not NAME.match(manifest.name):
        raise UsageError(f"`{manifest.name}` cannot be published: index names are lowercase letters, digits, "
                         "`.`, `_` and `-`", hint="rename the expert in its manifest and package it again")
    models = [{"name": m.name, "sha256": m.sha256 if m.sha256 and SHA256_HEX.match(m.sha256) else None}
              for m in manifest.base_models]
    adapters = manifest.base_models[0].adapters
    tags = manifest.data.get("tags")
    return IndexEntry(
        name=manifest.name, version=manifest.version, sha256=digest, size_bytes=size, source=source,
        publisher={"key": str(report.pubkey), "fingerprint": str(report.fingerprint),
                   **({"name": report.publisher} if report.publisher else {})},
        base_models=models, description=manifest.description, capabilities=list(manifest.capabilities),
        tags=[t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
        adapter={"type": adapters[0].type if adapters else "", "size_bytes": adapter_size},
        requires=list(manifest.constraints.requires), yanked=False, published_at=utc_now())


def package_source(package: Path, url: str | None, path_in_repo: str | None) -> dict[str, Any]:
    """Where installers fetch the package: ``git+URL@REF`` (+ ``path_in_repo``), an http(s)/file URL, or
    (default) this file's own ``file://`` URL."""
    if url is None:
        return {"url": package.as_uri()}
    text = url.strip()
    if text.startswith("git+"):
        repo_url, ref = split_ref(text[4:])
        if not ref:
            raise UsageError(f"`{url}` names no tag, branch or commit", hint="write it as `git+URL@v1.2.0`")
        commit = ref if _FULL_SHA.match(ref) else None
        return {"git": repo_url, "ref": None if commit else ref, "commit": commit,
                "path": path_in_repo or package.name}
    if re.match(r"^(https?|file)://", text, re.IGNORECASE):
        return {"url": text}
    local = Path(text).expanduser()
    if local.is_file():
        return {"url": local.absolute().as_uri()}
    raise UsageError(f"`{url}` is not a package URL", hint="pass an https:// or file:// URL to the `.expert` file, "
                     "a local path to it, or `git+URL@TAG` with `--path` inside that repository")


def yank_version(spec_text: str, index_root: Path, undo: bool = False, model: str | None = None) -> PublishResult:
    """Mark (or, with ``undo``, unmark) every package of ``NAME@VERSION`` yanked, and commit."""
    spec = parse_expert_spec(spec_text)
    if spec.version is None:
        raise UsageError(f"`{spec_text}` names no version", hint="yank one version: `expert-cli yank NAME@1.2.0`")
    repo = _index_repo(index_root)
    typed = spec_text.strip().partition("@")[0].strip()
    for name in dict.fromkeys((typed, canonical_name(typed))):
        existing = _read_file(index_root, entry_path(name), name) if NAME.match(name) else []
        if existing:
            break
    matches = [e for e in existing if e.version == spec.version and (model is None or model in e.base_model_names)]
    if not matches:
        raise InstallError(f"`{spec}` is not in the index at `{index_root}`",
                           hint="check the name and version with `expert-cli info NAME` after `index update`")
    status = "unyanked" if undo else "yanked"
    changed = [e for e in matches if e.yanked == undo]
    relative = entry_path(matches[0].name)
    if not changed:
        return PublishResult("unchanged", matches[0].name, spec.version, str(index_root), relative, None,
                             [e.to_dict() for e in matches])
    for entry in changed:
        entry.yanked = not undo
    _write_file(index_root, relative, existing)
    commit = _commit(repo, relative, f"{'unyank' if undo else 'yank'} {matches[0].spec}")
    return PublishResult(status, matches[0].name, spec.version, str(index_root), relative, commit,
                         [e.to_dict() for e in matches])


def _index_repo(root: Path) -> Any:
    import git

    read_config(root, f"the index at `{root}`")
    try:
        repo = git.Repo(str(root))
    except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError):
        raise UsageError(f"`{root}` is not a Git working copy of an index",
                         hint="clone the index (`git clone URL`) and pass that folder to `--index`") from None
    if repo.bare or Path(repo.working_tree_dir or "").resolve() != Path(root).resolve():
        raise UsageError(f"`{root}` is not the root of a Git working copy",
                         hint="pass the folder that holds the index's `config.json` and `.git`")
    repo.git.update_environment(**git_env())
    return repo


def _read_file(root: Path, relative: str, name: str) -> list[IndexEntry]:
    path = root / relative
    if not path.exists():
        return []
    return parse_entry_file(read_bounded(path, MAX_FILE_BYTES, f"the index at `{root}`"), name, relative)


def _write_file(root: Path, relative: str, entries: list[IndexEntry]) -> None:
    from expert_cli.core.files import atomic_write_text

    atomic_write_text(root / relative, format_lines(entries))


def _commit(repo: Any, relative: str, message: str) -> str:
    """Commit ``relative`` alone (hooks off); a fallback identity when the user has none configured."""
    import git

    env = {}
    try:
        repo.git.config("user.email")
    except git.GitCommandError:
        env = {"GIT_AUTHOR_NAME": "expert-cli", "GIT_AUTHOR_EMAIL": "expert-cli@localhost",
               "GIT_COMMITTER_NAME": "expert-cli", "GIT_COMMITTER_EMAIL": "expert-cli@localhost"}
    repo.git.add("--", relative)
    repo.git.commit("-m", message, "--", relative, env={**git_env(), **env})
    return repo.head.commit.hexsha
