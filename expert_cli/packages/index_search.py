"""``search`` and ``info`` over every added index.

Search ranks experts by where the query's words appear: the name (exact, prefix, part), then capabilities and
tags, then the description. Each hit shows the newest version that is not yanked (among those built for
``--base-model`` when given) and whether it is built for a base model this machine already uses (the base of
an installed expert, or a built-in one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from expert_cli.core.errors import InstallError
from expert_cli.core.versions import version_key
from expert_cli.manifest.model import model_slug
from expert_cli.packages.index import IndexEntry
from expert_cli.packages.index_sources import load_entries
from expert_cli.packages.registry import read_registry
from expert_cli.packages.resolve import bases_on_hand, entries_named, exact_version, fits, sources_for

_WORD = re.compile(r"[a-z0-9]+")


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
    hits = []
    for source in sources_for(index):
        for name, entries in _by_name(load_entries(source)).items():
            live = [e for e in entries if not e.yanked and fits(e, base_model) and _has_capability(e, capability)]
            if not live:
                continue
            newest = max(live, key=lambda e: version_key(e.version))
            score = rank(newest, words, phrase)
            if words and score <= 0:
                continue
            hits.append(SearchHit(name, newest.version, newest.description, source.name, score,
                                  newest.base_model_names, newest.capabilities, newest.tags,
                                  any(model_slug(b) in bases for e in live for b in e.base_model_names),
                                  installed.get(name, [])))
    hits.sort(key=lambda h: (-h.score, h.name, h.index))
    return hits[:limit] if limit else hits


def rank(entry: IndexEntry, words: list[str], phrase: str) -> float:
    """Name matches count most, then capabilities and tags, then the description."""
    if not words:
        return 0.0
    name = entry.name.lower()
    short = name.removeprefix("expert-")
    score = 100.0 if phrase in (name, short) else 50.0 if short.startswith(phrase) else 0.0
    name_words = set(_WORD.findall(name))
    labels = set(_WORD.findall(" ".join(entry.capabilities + entry.tags).lower()))
    description = set(_WORD.findall(entry.description.lower()))
    for word in words:
        score += 20 if word in name_words else 10 if word in short else 0
        score += 8 if word in labels else 0
        score += 3 if word in description else 0
    return score


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


def _has_capability(entry: IndexEntry, capability: str | None) -> bool:
    if not capability:
        return True
    wanted = capability.lower()
    return any(c.lower() == wanted or c.lower().startswith(wanted + ":") for c in entry.capabilities)


def _installed_versions() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for entry in read_registry().experts():
        out.setdefault(entry.name, []).append(entry.version)
    return out
