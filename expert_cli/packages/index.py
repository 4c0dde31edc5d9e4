"""The index format: a Git repository of experts, one file per expert, one JSON line per published package.

Modelled on the crates.io index (``docs/index-format.md`` documents it; the JSON Schemas are
``schemas/expert-index-config.schema.json`` and ``schemas/expert-index-entry.schema.json``):

- ``config.json`` at the root: ``{"name": "...", "format": 1}`` (an unknown format is refused);
- one file per expert at a prefix path of its name without ``expert-``: ``1/<name>``, ``2/<name>``,
  ``3/<a>/<name>``, else ``<ab>/<cd>/<name>`` (``expert-sql`` -> ``3/s/expert-sql``);
- each line of that file is one package (a version for one base model): name, version, description,
  capabilities, tags, base models, adapter type and size, where the package lives, its SHA-256 and size, the
  publisher key, ``yanked``, ``requires`` and ``published_at``.

Everything read from an index is untrusted input: sizes are bounded and every field is checked, so bad content
is an :class:`IndexContentError` (``error:`` line), never a traceback.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ExpertError
from expert_cli.core.hashing import SHA256_HEX
from expert_cli.core.jsonlines import parse_json

INDEX_FORMAT = 1
CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 64 << 10
MAX_FILE_BYTES = 1 << 20  # one expert's file: thousands of versions fit
MAX_LINE_BYTES = 64 << 10
MAX_FILES = 100_000
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}(?:-[0-9A-Za-z.-]{1,64})?$")
_PUBKEY = re.compile(r"^ed25519:[0-9a-f]{64}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
BAD_INDEX_HINT = "the index holds content expert-cli cannot use; tell its maintainers, or remove it with " \
                 "`expert-cli index rm <name>`"


class IndexContentError(ExpertError):
    """An index repository whose config or entry files cannot be used."""


@dataclass
class IndexEntry:
    """One line of an expert's index file: one package of one version for one base model."""

    name: str
    version: str
    sha256: str
    size_bytes: int
    source: dict[str, Any]
    publisher: dict[str, str]
    base_models: list[dict[str, Any]]
    description: str = ""
    capabilities: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    adapter: dict[str, Any] = field(default_factory=dict)
    requires: list[str] = field(default_factory=list)
    yanked: bool = False
    published_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "description": self.description,
                "capabilities": self.capabilities, "tags": self.tags, "base_models": self.base_models,
                "adapter": self.adapter, "source": self.source, "sha256": self.sha256,
                "size_bytes": self.size_bytes, "publisher": self.publisher, "yanked": self.yanked,
                "requires": self.requires, "published_at": self.published_at}

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def base_model_names(self) -> list[str]:
        return [str(model["name"]) for model in self.base_models]


def entry_path(name: str) -> str:
    """Where ``name``'s file lives in an index, by the length of its name without ``expert-``."""
    lowered = name.lower()
    short = lowered[len("expert-"):] if lowered.startswith("expert-") and len(lowered) > 7 else lowered
    if len(short) <= 2:
        return f"{len(short)}/{lowered}"
    if len(short) == 3:
        return f"3/{short[0]}/{lowered}"
    return f"{short[:2]}/{short[2:4]}/{lowered}"


def parse_config(text: str, label: str) -> dict[str, Any]:
    """``config.json``: an object with a ``name`` and the ``format`` this code reads."""
    try:
        data = parse_json(text)
    except ValueError as exc:
        raise _bad(f"`{CONFIG_FILE}` of {label} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"].strip():
        raise _bad(f"`{CONFIG_FILE}` of {label} must be an object with a `name` string")
    fmt = data.get("format")
    if fmt != INDEX_FORMAT or isinstance(fmt, bool):
        raise IndexContentError(f"{label} uses index format `{str(fmt)[:20]}`; this expert-cli reads format "
                                f"`{INDEX_FORMAT}`", hint="upgrade expert-cli, or ask the index maintainers "
                                "which format they publish")
    return data


def read_config(root: Path, label: str) -> dict[str, Any]:
    return parse_config(read_bounded(root / CONFIG_FILE, MAX_CONFIG_BYTES, label), label)


def read_bounded(path: Path, limit: int, label: str) -> str:
    """The UTF-8 text of ``path`` when it is a regular file of at most ``limit`` bytes."""
    try:
        if path.is_symlink() or not path.is_file():
            raise _bad(f"{label} has no regular file `{path.name}`")
        if path.stat().st_size > limit:
            raise _bad(f"`{path.name}` in {label} is {path.stat().st_size:,} bytes, over the {limit:,}-byte limit")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(f"`{path.name}` in {label} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise _bad(f"cannot read `{path.name}` in {label}: {exc.strerror or exc}") from None


def parse_entry_file(text: str, name: str, where: str) -> list[IndexEntry]:
    """Every line of one expert's file (blank lines skipped); each must be that expert's."""
    entries, seen = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        at = f"`{where}` line {number}"
        if len(line.encode("utf-8")) > MAX_LINE_BYTES:
            raise _bad(f"{at} is over the {MAX_LINE_BYTES:,}-byte limit for one entry")
        entry = parse_entry(line, at)
        if entry.name != name:
            raise _bad(f"{at} is for `{entry.name}`, but the file belongs to `{name}`")
        key = (entry.version, tuple(entry.base_model_names))
        if key in seen:
            raise _bad(f"{at} repeats `{entry.spec}` for the same base model")
        seen.add(key)
        entries.append(entry)
    return entries


def parse_entry(line: str, at: str) -> IndexEntry:
    try:
        data = parse_json(line)
    except ValueError as exc:
        raise _bad(f"{at} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _bad(f"{at} is not a JSON object")
    check = _Checker(data, at)
    return IndexEntry(
        name=check.text("name", NAME), version=check.text("version", _VERSION),
        sha256=check.text("sha256", SHA256_HEX), size_bytes=check.count("size_bytes"),
        source=check_source(data.get("source"), at), publisher=check_publisher(data.get("publisher"), at),
        base_models=check_base_models(data.get("base_models"), at),
        description=check.text("description", optional=True), capabilities=check.strings("capabilities"),
        tags=check.strings("tags"), adapter=check_adapter(data.get("adapter", {}), at),
        requires=check.strings("requires"), yanked=check.flag("yanked"),
        published_at=check.text("published_at", optional=True))


class _Checker:
    """Field checks on one entry object, each failure an :class:`IndexContentError` naming the field."""

    def __init__(self, data: dict[str, Any], at: str) -> None:
        self.data, self.at = data, at

    def text(self, key: str, pattern: re.Pattern[str] | None = None, optional: bool = False) -> str:
        if optional and key not in self.data:
            return ""
        value = self.data.get(key)
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise _bad(f"{self.at}: `{key}` is missing or malformed")
        return value

    def count(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 50:
            raise _bad(f"{self.at}: `{key}` must be a non-negative integer")
        return value

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _bad(f"{self.at}: `{key}` must be a list of strings")
        return list(value)

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise _bad(f"{self.at}: `{key}` must be true or false")
        return value


def check_source(value: Any, at: str) -> dict[str, Any]:
    """``{"url": ".../x.expert"}`` or ``{"git": URL, "ref": ..., "commit": ..., "path": ...}``."""
    if not isinstance(value, dict):
        raise _bad(f"{at}: `source` must be an object")
    if isinstance(value.get("url"), str) and value["url"] and "git" not in value:
        return {"url": value["url"]}
    git, path = value.get("git"), value.get("path")
    ref, commit = value.get("ref"), value.get("commit")
    if not isinstance(git, str) or not git or not isinstance(path, str) or not path:
        raise _bad(f"{at}: `source` needs a `url`, or a `git` URL and a `path` in that repository")
    if ref is not None and not isinstance(ref, str) or commit is not None and not _COMMIT.match(str(commit)):
        raise _bad(f"{at}: `source.ref` must be a string and `source.commit` a 40-digit commit id")
    if ".." in Path(path).parts or path.startswith("/"):
        raise _bad(f"{at}: `source.path` must be a relative path inside the repository")
    return {"git": git, "ref": ref, "commit": commit, "path": path}


def check_publisher(value: Any, at: str) -> dict[str, str]:
    if not isinstance(value, dict) or not _PUBKEY.match(str(value.get("key"))) \
            or not _FINGERPRINT.match(str(value.get("fingerprint"))):
        raise _bad(f"{at}: `publisher` needs a `key` (`ed25519:<hex>`) and its `fingerprint`")
    out = {"key": value["key"], "fingerprint": value["fingerprint"]}
    if isinstance(value.get("name"), str):
        out["name"] = value["name"]
    return out


def check_base_models(value: Any, at: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise _bad(f"{at}: `base_models` must be a non-empty list")
    out = []
    for model in value:
        if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not model["name"]:
            raise _bad(f"{at}: every entry of `base_models` needs a `name`")
        digest = model.get("sha256")
        if digest is not None and not SHA256_HEX.match(str(digest)):
            raise _bad(f"{at}: `sha256` of base model `{model['name']}` is not a SHA-256")
        out.append({"name": model["name"], "sha256": digest})
    return out


def check_adapter(value: Any, at: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("type", ""), str) \
            or not isinstance(value.get("size_bytes", 0), int) or isinstance(value.get("size_bytes"), bool):
        raise _bad(f"{at}: `adapter` must be an object with a `type` string and a `size_bytes` integer")
    return {"type": value.get("type", ""), "size_bytes": value.get("size_bytes", 0)}


def entry_files(root: Path) -> list[str]:
    """Relative paths of every entry file: every file in a folder that does not start with a dot."""
    found: list[str] = []
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as listing:
            for item in listing:
                if item.name.startswith(".") or (not prefix and item.is_file(follow_symlinks=False)):
                    continue
                relative = f"{prefix}{item.name}"
                if item.is_dir(follow_symlinks=False):
                    stack.append((Path(item.path), relative + "/"))
                else:
                    found.append(relative)
                if len(found) > MAX_FILES:
                    raise _bad(f"the index at `{root}` has over {MAX_FILES:,} files")
    return sorted(found)


def read_entries(root: Path, label: str) -> list[IndexEntry]:
    """Every entry in the index checked out at ``root`` (config checked first)."""
    read_config(root, label)
    entries: list[IndexEntry] = []
    for relative in entry_files(root):
        name = relative.rsplit("/", 1)[-1]
        if not NAME.match(name) or entry_path(name) != relative:
            raise _bad(f"`{relative}` in {label} is not at the path of an expert file "
                       f"(`{entry_path(name)}` for `{name}`)")
        entries.extend(parse_entry_file(read_bounded(root / relative, MAX_FILE_BYTES, label), name, relative))
    return entries


def format_lines(entries: list[IndexEntry]) -> str:
    """An expert's file: one compact JSON line per entry."""
    import json

    return "".join(json.dumps(e.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n" for e in entries)


def _bad(message: str) -> IndexContentError:
    return IndexContentError(message, hint=BAD_INDEX_HINT)
