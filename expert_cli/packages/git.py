"""Fetching experts from Git: shallow clones that never run hooks, release discovery, Git LFS pointers.

Every git process gets command-level configuration through ``GIT_CONFIG_COUNT`` (which outranks the user's
and the system's files): no hooks (``core.hooksPath=/dev/null``), symlinks checked out as plain files, no
submodule recursion, no fsmonitor, no ``ext::`` transport, and the LFS smudge filter off so pointers stay
pointers (they are detected and reported instead of fetched behind the user's back).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.errors import InstallError, PackageError
from expert_cli.core.jsonlines import parse_json
from expert_cli.core.progress import ProgressCallback, report
from expert_cli.core.versions import version_key
from expert_cli.manifest.model import MANIFEST_FILE, model_slug
from expert_cli.packages.archive import read_member
from expert_cli.packages.install_source import redact_credentials

SAFE_CONFIG = {
    "core.hooksPath": "/dev/null",
    "core.symlinks": "false",
    "core.fsmonitor": "false",
    "submodule.recurse": "false",
    "protocol.ext.allow": "never",
    "filter.lfs.smudge": "",
    "filter.lfs.process": "",
    "filter.lfs.required": "false",
}
LFS_MAGIC = b"version https://git-lfs.github.com/spec/"
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class ClonedRepo:
    path: Path
    url: str
    ref: str | None
    commit: str

    def to_dict(self) -> dict[str, Any]:
        return {"url": redact_credentials(self.url), "ref": self.ref, "commit": self.commit}


def git_env() -> dict[str, str]:
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1", "GIT_CONFIG_COUNT": str(len(SAFE_CONFIG))}
    for index, (key, value) in enumerate(SAFE_CONFIG.items()):
        env[f"GIT_CONFIG_KEY_{index}"], env[f"GIT_CONFIG_VALUE_{index}"] = key, value
    return env


def _progress_adapter(progress: ProgressCallback | None) -> Any:
    if progress is None:
        return None
    import git

    class _CloneProgress(git.RemoteProgress):
        def update(self, op_code: int, cur_count: Any, max_count: Any = None, message: str = "") -> None:
            report(progress, "cloning", float(cur_count or 0), float(max_count) if max_count else None)

    return _CloneProgress()


def clone_repo(url: str, ref: str | None, dest: Path, progress: ProgressCallback | None = None) -> ClonedRepo:
    """A depth-1 clone of ``url`` at ``ref`` (branch, tag, or full commit id; default branch when None)."""
    git = _import_git()
    try:
        if ref and _FULL_SHA.match(ref):
            repo = _fetch_commit(git, url, ref, dest)
        else:
            options = {"branch": ref} if ref else {}
            repo = git.Repo.clone_from(url, str(dest), progress=_progress_adapter(progress), env=git_env(),
                                       depth=1, **options)
        commit = repo.head.commit.hexsha
    except git.exc.UnsafeProtocolError:
        raise InstallError(f"`{redact_credentials(url)}` uses a Git transport that is not allowed",
                           hint="use an https://, ssh://, git:// or file:// URL") from None
    except git.GitCommandError as exc:
        raise _clone_error(url, ref, str(exc.stderr or exc)) from None
    return ClonedRepo(dest, url, ref, commit)


def _import_git() -> Any:
    try:
        import git
    except ImportError as exc:  # GitPython raises this when no git executable is found
        raise InstallError(f"installing from Git needs the `git` program: {exc}",
                           hint="install git (https://git-scm.com) and make sure it is on PATH") from None
    return git


def _fetch_commit(git: Any, url: str, sha: str, dest: Path) -> Any:
    repo = git.Repo.init(str(dest))
    repo.git.update_environment(**git_env())
    repo.git.remote("add", "origin", "--", url)
    repo.git.fetch("--depth", "1", "origin", sha)
    repo.git.checkout("--detach", "FETCH_HEAD")
    return repo


def _clone_error(url: str, ref: str | None, stderr: str) -> InstallError:
    url, stderr = redact_credentials(url), redact_credentials(stderr)
    lines = [re.sub(r"^stderr:\s*", "", line.strip(" '\"")) for line in stderr.strip().splitlines()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    detail = (fatal or [line for line in lines if line] or ["git failed"])[0]
    detail = re.sub(r"^(fatal|error):\s*", "", detail)
    if ref and re.search(r"not found in upstream|couldn't find remote ref|not our ref|unadvertised", stderr, re.IGNORECASE):
        return InstallError(f"`{url}` has no branch, tag or commit `{ref}`",
                            hint=f"list its tags and branches with `git ls-remote {url}`")
    return InstallError(f"cannot clone `{url}`: {detail}",
                        hint="check the URL and your network; a private repository needs git credentials")


def is_lfs_pointer(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size > 1024:
        return False
    return path.read_bytes().startswith(LFS_MAGIC)


def resolve_lfs(repo: ClonedRepo, path: Path) -> None:
    """Replace an LFS pointer by its content with git-lfs, or explain why that is impossible."""
    if not is_lfs_pointer(path):
        return
    relative = path.relative_to(repo.path).as_posix()
    if shutil.which("git-lfs") is None:
        raise InstallError(f"`{relative}` in `{repo.url}` is a Git LFS pointer and git-lfs is not installed",
                           hint="install git-lfs (https://git-lfs.com), run `git lfs install`, then retry")
    env = {**git_env(), "GIT_LFS_SKIP_SMUDGE": "0"}
    result = subprocess.run(["git", "-C", str(repo.path), "lfs", "pull", f"--include={relative}"],
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0 or is_lfs_pointer(path):
        raise InstallError(f"git-lfs could not fetch `{relative}` from `{repo.url}`: "
                           f"{(result.stderr or 'still a pointer').strip().splitlines()[-1]}",
                           hint="check that the LFS object exists on the server and that you can reach it")


def find_release_files(root: Path, max_depth: int = 3) -> list[Path]:
    """``*.expert`` files in the clone (outside ``.git``), at most ``max_depth`` folders deep."""
    found = []
    for path in root.rglob("*.expert"):
        relative = path.relative_to(root)
        if relative.parts[0] != ".git" and len(relative.parts) <= max_depth + 1 and path.is_file() and not path.is_symlink():
            found.append(path)
    return sorted(found)


def pick_release(repo: ClonedRepo, name: str | None = None, model: str | None = None) -> Path | None:
    """The newest release file for expert ``name`` (and base ``model`` when given); None when there is none."""
    candidates = find_release_files(repo.path)
    if model:
        candidates = [c for c in candidates if f"-{model_slug(model)}.v" in c.name] or candidates
    readable: list[tuple[tuple, str, Path]] = []
    first_error: PackageError | None = None
    for path in candidates:
        resolve_lfs(repo, path)
        try:
            data = parse_json((read_member(path, MANIFEST_FILE) or b"null").decode("utf-8"))
        except (PackageError, ValueError) as exc:
            first_error = first_error or PackageError(f"release `{path.name}` cannot be read: {exc}")
            continue
        if _compatible(data, name, model):  # ordered by the version its manifest states, never its file name
            readable.append((version_key(str(data.get("version", ""))), path.name, path))
    if readable:
        return max(readable)[2]
    if first_error is not None:
        raise first_error
    return None


def _compatible(data: Any, name: str | None, model: str | None) -> bool:
    if not isinstance(data, dict):
        return False
    if name and data.get("name") != name:
        return False
    if not model:
        return True
    models = data.get("base_models") or [data.get("base_model") or {}]
    return any(isinstance(m, dict) and model_slug(str(m.get("name", ""))) == model_slug(model) for m in models)
