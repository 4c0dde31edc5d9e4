"""``search`` and ``info`` over every added index.

Search ranks experts by where the query's words appear: the name (exact, prefix, part), then capabilities and
tags, then the description. Each hit shows the newest version that is not yanked (among those built for
``--base-model`` when given) and whether it is built for a base model this machine already uses (the base of
an installed expert, or a built-in one).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import InstallError
from expert_cli.core.files import atomic_write_text
from expert_cli.core.versions import version_key
from expert_cli.manifest.model import model_slug
from expert_cli.packages.index import IndexEntry
from expert_cli.packages.index_sources import IndexSource, cache_path, head_commit, load_entries
from expert_cli.packages.registry import read_registry
from expert_cli.packages.resolve import bases_on_hand, entries_named, exact_version, sources_for

_WORD = re.compile(r"[a-z0-9]+")
SEARCH_TABLE_VERSION = 1


@dataclass
class SearchHit:
    name: str
    version: str
    description: str
    index: str
    score: float
    base_models: list[str]
    capabilities: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    fits_installed_base: bool = False
    installed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ExpertInfo:
    name: str
    index: str
    description: str
    versions: list[dict[str, Any]]
    installed: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def search_indexes(query: str, base_model: str | None = None, capability: str | None = None,
                   index: str | None = None, limit: int | None = None) -> list[SearchHit]:
    words = _WORD.findall(query.lower())
    phrase = "-".join(words)
    bases, installed = {model_slug(b) for b in bases_on_hand()}, _installed_versions()
    wanted_base = model_slug(base_model) if base_model else None
    hits = []
    for source in sources_for(index):
        for row in search_table(source):
            live = [v for v in row["versions"] if not v[1] and (wanted_base is None or wanted_base in v[3])
                    and _has_capability(v[4], capability)]
            if not live:
                continue
            score = rank(row, words, phrase)
            if words and score <= 0:
                continue
            newest = live[0]  # versions are stored newest first
            hits.append(SearchHit(row["name"], newest[0], row["description"], source.name, score, newest[2],
                                  newest[4], row["tags"], any(b in bases for v in live for b in v[3]),
                                  installed.get(row["name"], [])))
    hits.sort(key=lambda h: (-h.score, h.name, h.index))
    return hits[:limit] if limit else hits


def rank(row: dict[str, Any], words: list[str], phrase: str) -> float:
    """Name matches count most, then capabilities and tags, then the description."""
    if not words:
        return 0.0
    short = row["short"]
    score = 100.0 if phrase in (row["name"], short) else 50.0 if short.startswith(phrase) else 0.0
    name_words, labels, description = row["name_words"], row["label_words"], row["description_words"]
    for word in words:
        score += 20 if word in name_words else 10 if word in short else 0
        score += 8 if word in labels else 0
        score += 3 if word in description else 0
    return score


def search_table(source: IndexSource) -> list[dict[str, Any]]:
    """One row per expert, words precomputed and versions newest first, cached next to the entries by the
    index's commit (what makes a warm search read one small file and no more)."""
    commit = head_commit(source.path)
    path = search_table_path(source.name)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") == SEARCH_TABLE_VERSION and document.get("commit") == commit:
            return [dict(row, name_words=set(row["name_words"]), label_words=set(row["label_words"]),
                         description_words=set(row["description_words"])) for row in document["rows"]]
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass
    rows = [_row(entries) for entries in _by_name(load_entries(source)).values()]
    document = {"version": SEARCH_TABLE_VERSION, "commit": commit, "rows": rows}
    atomic_write_text(path, json.dumps(document, separators=(",", ":"), ensure_ascii=False))
    return search_table(source) if path.is_file() else rows


def search_table_path(name: str) -> Path:
    return cache_path(name).with_suffix(".search.json")


def _row(entries: list[IndexEntry]) -> dict[str, Any]:
    ordered = sorted(entries, key=lambda e: version_key(e.version), reverse=True)
    text = next((e for e in ordered if not e.yanked), ordered[0])
    name = text.name.lower()
    return {"name": text.name, "short": name.removeprefix("expert-"), "description": text.description,
            "tags": text.tags, "name_words": sorted(set(_WORD.findall(name))),
            "label_words": sorted(set(_WORD.findall(" ".join(text.capabilities + text.tags).lower()))),
            "description_words": sorted(set(_WORD.findall(text.description.lower()))),
            "versions": [[e.version, e.yanked, e.base_model_names, sorted({model_slug(b) for b in e.base_model_names}),
                          e.capabilities] for e in ordered]}


def expert_info(spec: str, index: str | None = None) -> ExpertInfo:
    """Every version of ``NAME`` (or just ``NAME@VERSION``), newest first, with what is installed."""
    typed, _, version = spec.strip().partition("@")
    index_name, entries = entries_named(typed.strip(), index)
    if version.strip():
        wanted = exact_version(version) or version.strip()
        entries = [e for e in entries if e.version == wanted]
        if not entries:
            raise InstallError(f"`{spec}` is not in index `{index_name}`",
                               hint=f"see its versions with `expert-cli info {typed.strip()}`")
    installed = _installed_versions().get(entries[0].name, [])
    newest = max(entries, key=lambda e: version_key(e.version))
    versions = [{"version": e.version, "base_models": e.base_model_names, "yanked": e.yanked,
                 "size_bytes": e.size_bytes, "adapter": e.adapter, "sha256": e.sha256,
                 "publisher": e.publisher, "requires": e.requires, "source": e.source,
                 "published_at": e.published_at, "installed": e.version in installed}
                for e in sorted(entries, key=lambda e: version_key(e.version), reverse=True)]
    return ExpertInfo(newest.name, index_name, newest.description, versions, installed)


def _by_name(entries: list[IndexEntry]) -> dict[str, list[IndexEntry]]:
    grouped: dict[str, list[IndexEntry]] = {}
    for entry in entries:
        grouped.setdefault(entry.name, []).append(entry)
    return grouped


def _has_capability(capabilities: list[str], capability: str | None) -> bool:
    if not capability:
        return True
    wanted = capability.lower()
    return any(c.lower() == wanted or c.lower().startswith(wanted + ":") for c in capabilities)


def _installed_versions() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for entry in read_registry().experts():
        out.setdefault(entry.name, []).append(entry.version)
    return out
