"""The indexes a user has added: ``$EXPERT_HOME/indexes.json`` (names, URLs, the default) and a Git clone of
each in ``$EXPERT_HOME/indexes/<name>/``.

``add`` clones and checks the whole index before keeping it; ``update`` fetches, checks the new tree (a bad one
is rolled back), reports what changed and whether the history was rewritten (a force-push). The entries of
each index are cached in ``$EXPERT_HOME/cache/indexes/<name>.json`` keyed by its commit, so searches read one
file instead of walking the tree. Git runs with the hardened settings of :mod:`expert_cli.packages.git`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core import paths
from expert_cli.core.errors import UsageError
from expert_cli.core.files import atomic_write_text, ensure_dir
from expert_cli.core.jsonlines import parse_json
from expert_cli.packages.git import git_env
from expert_cli.packages.index import NAME, IndexContentError, IndexEntry, read_entries
from expert_cli.packages.install_source import redact_credentials
from expert_cli.packages.registry import utc_now

SOURCES_FILE = "indexes.json"
CACHE_VERSION = 1


@dataclass
class IndexSource:
    name: str
    url: str
    added_at: str = ""
    default: bool = False

    @property
    def path(self) -> Path:
        return paths.expert_home() / "indexes" / self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "added_at": self.added_at, "default": self.default,
                "path": str(self.path)}


@dataclass
class IndexUpdate:
    """What ``index update`` changed in one index."""

    name: str
    old_commit: str
    new_commit: str
    rewritten: bool = False
    added: list[str] = field(default_factory=list)
    yanked: list[str] = field(default_factory=list)
    unyanked: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # same version, another checksum or source

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sources_path() -> Path:
    return paths.expert_home() / SOURCES_FILE


def read_sources() -> list[IndexSource]:
    path = sources_path()
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise IndexContentError(f"`{path}` cannot be read: {exc}",
                                hint="fix or delete it, then add your indexes again") from None
    items = data.get("indexes") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str)
                                              and isinstance(i.get("url"), str) for i in items):
        raise IndexContentError(f"`{path}` is not a list of indexes",
                                hint="fix or delete it, then add your indexes again")
    default = data.get("default")
    return [IndexSource(i["name"], i["url"], str(i.get("added_at", "")), i["name"] == default) for i in items]


def write_sources(sources: list[IndexSource]) -> None:
    default = next((s.name for s in sources if s.default), None)
    document = {"default": default, "indexes": [{"name": s.name, "url": s.url, "added_at": s.added_at}
                                                for s in sources]}
    atomic_write_text(sources_path(), json.dumps(document, indent=2) + "\n")


@contextlib.contextmanager
def sources_lock() -> Iterator[None]:
    from filelock import FileLock

    ensure_dir(paths.expert_home())
    with FileLock(str(sources_path()) + ".lock", timeout=120):
        yield


def get_source(name: str) -> IndexSource:
    for source in read_sources():
        if source.name == name:
            return source
    known = ", ".join(f"`{s.name}`" for s in read_sources()) or "none"
    raise UsageError(f"no index named `{name}` (added: {known})", hint="add one with `expert-cli index add NAME URL`")


def add_index(name: str, url: str, make_default: bool = False) -> tuple[IndexSource, int]:
    """Clone ``url`` as index ``name`` and check it; returns the source and its number of entries."""
    if not NAME.match(name):
        raise UsageError(f"`{name}` is not an index name (lowercase letters, digits, `.`, `_`, `-`)",
                         hint="pick a short name such as `main` or `team`")
    url = _git_url(url)
    with sources_lock():
        sources = read_sources()
        if any(s.name == name for s in sources):
            raise UsageError(f"an index named `{name}` is already added", hint=f"run `expert-cli index update {name}`")
        source = IndexSource(name, redact_credentials(url), utc_now(), make_default or not sources)
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=ensure_dir(source.path.parent)))
        try:
            commit = _clone(url, scratch / "clone").head.commit.hexsha
            entries = read_entries(scratch / "clone", f"index `{name}`")
            shutil.rmtree(source.path, ignore_errors=True)
            (scratch / "clone").rename(source.path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        write_cache(name, commit, entries)
        for other in sources if source.default else []:
            other.default = False
        write_sources(sources + [source])
    return source, len(entries)


def remove_index(name: str) -> IndexSource:
    with sources_lock():
        sources = read_sources()
        source = get_source(name)
        rest = [s for s in sources if s.name != name]
        if source.default and rest:
            rest[0].default = True
        write_sources(rest)
        shutil.rmtree(source.path, ignore_errors=True)
        cache_path(name).unlink(missing_ok=True)
    return source


def set_default(name: str) -> IndexSource:
    with sources_lock():
        sources = read_sources()
        get_source(name)
        for source in sources:
            source.default = source.name == name
        write_sources(sources)
    return get_source(name)


def update_index(source: IndexSource) -> IndexUpdate:
    """Fetch ``source`` and move its clone to what the remote holds now; a bad new tree is rolled back."""
    import git

    with sources_lock():
        repo = _open(source)
        old = repo.head.commit.hexsha
        before = {_key(e): e for e in load_entries(source)}
        branch = repo.active_branch.name if not repo.head.is_detached else "HEAD"
        try:
            repo.git.fetch("--force", "--prune", "origin")
            new = repo.commit(f"origin/{branch}").hexsha
        except (git.GitCommandError, git.BadName, ValueError) as exc:
            raise IndexContentError(f"cannot fetch index `{source.name}` from `{source.url}`: "
                                    f"{_git_detail(exc)}", hint="check the URL and your network") from None
        rewritten = old != new and not repo.is_ancestor(old, new)
        repo.git.reset("--hard", new)
        try:
            entries = read_entries(source.path, f"index `{source.name}`")
        except IndexContentError:
            repo.git.reset("--hard", old)
            raise
        write_cache(source.name, new, entries)
    return _changes(IndexUpdate(source.name, old, new, rewritten), before, {_key(e): e for e in entries})


def _changes(update: IndexUpdate, before: dict[tuple, IndexEntry], after: dict[tuple, IndexEntry]) -> IndexUpdate:
    for key, entry in after.items():
        old = before.get(key)
        if old is None:
            update.added.append(entry.spec)
        elif (old.sha256, old.source) != (entry.sha256, entry.source):
            update.changed.append(entry.spec)
        elif entry.yanked != old.yanked:
            (update.yanked if entry.yanked else update.unyanked).append(entry.spec)
    update.removed = [entry.spec for key, entry in before.items() if key not in after]
    return update


def _key(entry: IndexEntry) -> tuple:
    return entry.name, entry.version, tuple(entry.base_model_names)


def cache_path(name: str) -> Path:
    return paths.cache_dir() / "indexes" / f"{name}.json"


def write_cache(name: str, commit: str, entries: list[IndexEntry]) -> None:
    document = {"cache_version": CACHE_VERSION, "commit": commit, "entries": [e.to_dict() for e in entries]}
    atomic_write_text(cache_path(name), json.dumps(document, separators=(",", ":"), ensure_ascii=False))


def load_entries(source: IndexSource) -> list[IndexEntry]:
    """The entries of an added index: from the cache when it matches the clone's commit, else from the tree."""
    commit = head_commit(source.path)
    try:
        document = json.loads(cache_path(source.name).read_text(encoding="utf-8"))
        if document.get("cache_version") == CACHE_VERSION and document.get("commit") == commit:
            return [IndexEntry(**item) for item in document["entries"]]  # written by us after checking
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    entries = read_entries(source.path, f"index `{source.name}`")
    write_cache(source.name, commit, entries)
    return entries


def head_commit(clone: Path) -> str:
    """The commit checked out in ``clone``, read from ``.git`` without starting git."""
    git_dir = clone / ".git"
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git_dir / ref).is_file():
            return (git_dir / ref).read_text(encoding="utf-8").strip()
        for line in (git_dir / "packed-refs").read_text(encoding="utf-8").splitlines():
            if line.endswith(" " + ref):
                return line.split(" ")[0]
    except OSError:
        pass
    raise IndexContentError(f"the clone of the index at `{clone}` is damaged",
                            hint="remove it with `expert-cli index rm <name>` and add it again")


def _git_url(url: str) -> str:
    text = url.strip()
    local = Path(text).expanduser()
    if "://" not in text and local.exists():
        return local.resolve().as_uri()
    return text


def _clone(url: str, dest: Path) -> Any:
    import git

    try:
        return git.Repo.clone_from(url, str(dest), env=git_env())
    except git.exc.UnsafeProtocolError:
        raise UsageError(f"`{redact_credentials(url)}` uses a Git transport that is not allowed",
                         hint="use an https://, ssh://, git:// or file:// URL, or a local path") from None
    except git.GitCommandError as exc:
        raise IndexContentError(f"cannot clone the index `{redact_credentials(url)}`: {_git_detail(exc)}",
                                hint="check the URL and your network; a private index needs git credentials") from None


def _open(source: IndexSource) -> Any:
    import git

    try:
        repo = git.Repo(str(source.path))
    except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError):
        raise IndexContentError(f"the clone of index `{source.name}` at `{source.path}` is missing or damaged",
                                hint=f"run `expert-cli index rm {source.name}` and add it again") from None
    repo.git.update_environment(**git_env())
    return repo


def _git_detail(exc: Exception) -> str:
    text = redact_credentials(str(getattr(exc, "stderr", "") or exc)).strip()
    lines = [line.strip(" '\"").removeprefix("stderr: ").strip(" '\"") for line in text.splitlines()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal or [line for line in lines if line] or ["git failed"])[0]
