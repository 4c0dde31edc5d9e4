"""The router's domain lexicon: vocabulary and notations per domain, kept as data (``data/lexicon.json``).

A manifest lists a few keywords; a user names the domain in many more ways (a dialect, a construct, a
framework, a file kind, a pasted schema). The lexicon holds, per domain, ``anchors`` (the words that tie
an expert to the domain), ``terms`` (strong, they name the domain), ``support`` (weak), ``task_phrases``
(plain-English phrasings of the domain's tasks) and ``patterns`` (regular expressions, with bounded
repetitions, for its code and
schemas, run only on a prompt that contains their ``needs`` text, in any case). See the file's ``about`` and ``sources``.

An expert inherits the domains whose anchors its name contains; an expert whose name names none inherits
those its capabilities, keywords or tags name. ``EXPERT_ROUTER_LEXICON`` adds JSON files of the same shape
(``os.pathsep``-separated): their domains extend the built-in ones of the same name.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from expert_cli.core.errors import UsageError
from expert_cli.routing.text import normalize

LEXICON_ENV = "EXPERT_ROUTER_LEXICON"
MAX_PATTERN_TEXT = 20_000  # patterns look at the start of a prompt: a schema or code comes early
_LISTS = ("anchors", "terms", "support", "task_phrases")


@dataclass(frozen=True)
class Pattern:
    domain: str
    name: str
    needs: str
    regex: re.Pattern[str]
    weight: float = 1.5


@dataclass(frozen=True)
class Domain:
    name: str
    anchors: tuple[tuple[str, ...], ...]
    terms: tuple[str, ...]
    support: tuple[str, ...]
    task_phrases: tuple[str, ...]
    patterns: tuple[Pattern, ...]


@dataclass(frozen=True)
class Lexicon:
    domains: tuple[Domain, ...]
    ignored_tags: frozenset[str]

    def domains_of(self, name_stems: Sequence[str], other_texts: Iterable[str]) -> list[Domain]:
        """The domains an expert inherits: those its name names, else those its other texts name."""
        stems = tuple(name_stems)
        named = [domain for domain in self.domains if _names(domain, stems, set(stems))]
        if named:
            return named
        stems = tuple(stem for text in other_texts for stem in normalize(text) + ("",))
        present = set(stems)
        return [domain for domain in self.domains if _names(domain, stems, present)]


def _names(domain: Domain, stems: tuple[str, ...], present: set[str]) -> bool:
    for anchor in domain.anchors:
        if anchor[0] not in present:
            continue
        size = len(anchor)
        if size == 1 or any(stems[start:start + size] == anchor for start in range(len(stems) - size + 1)):
            return True
    return False


def builtin_lexicon_data() -> dict[str, Any]:
    text = resources.files("expert_cli.routing").joinpath("data", "lexicon.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_lexicon() -> Lexicon:
    """The built-in lexicon plus the files named by ``EXPERT_ROUTER_LEXICON`` (read at call time, cached)."""
    return _load(os.environ.get(LEXICON_ENV, "").strip())


@functools.lru_cache(maxsize=8)
def _load(extra: str) -> Lexicon:
    data = builtin_lexicon_data()
    for part in filter(None, extra.split(os.pathsep)):
        _merge(data, _read_user_file(Path(part)))
    return compile_lexicon(data)


def _read_user_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"the router lexicon `{path}` cannot be read ({exc})",
                         hint=f"fix the file, or unset {LEXICON_ENV}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("domains", {}), dict):
        raise UsageError(f"the router lexicon `{path}` has no `domains` object",
                         hint='write {"domains": {"name": {"anchors": [...], "terms": [...]}}}')
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    domains = base.setdefault("domains", {})
    for name, entry in extra.get("domains", {}).items():
        target = domains.setdefault(name, {})
        for key in (*_LISTS, "patterns"):
            target[key] = list(target.get(key, [])) + list(entry.get(key, []))
    base["ignored_tags"] = list(base.get("ignored_tags", [])) + list(extra.get("ignored_tags", []))


def compile_lexicon(data: dict[str, Any]) -> Lexicon:
    domains = []
    for name, entry in sorted(data.get("domains", {}).items()):
        lists = {key: tuple(str(item) for item in entry.get(key, []) if str(item).strip()) for key in _LISTS}
        anchors = tuple(key for key in (normalize(anchor) for anchor in lists["anchors"]) if key)
        patterns = tuple(_pattern(name, item) for item in entry.get("patterns", []))
        domains.append(Domain(name, anchors, lists["terms"], lists["support"], lists["task_phrases"], patterns))
    ignored = frozenset(str(tag).lower() for tag in data.get("ignored_tags", []))
    return Lexicon(tuple(domains), ignored)


def _pattern(domain: str, item: dict[str, Any]) -> Pattern:
    try:
        regex = re.compile(item["regex"])
    except (KeyError, TypeError, re.error) as exc:
        raise UsageError(f"the router lexicon's domain `{domain}` has a bad pattern ({exc})",
                         hint='each pattern is {"name": ..., "needs": ..., "regex": ...}') from exc
    weight = item.get("weight", 1.5)
    if not isinstance(weight, (int, float)) or weight <= 0:
        raise UsageError(f"the router lexicon's domain `{domain}` has a pattern with a bad weight `{weight}`",
                         hint="a pattern's weight is a positive number (default 1.5)")
    needs = str(item.get("needs", "")).lower()
    return Pattern(domain, str(item.get("name") or item["regex"]), needs, regex, float(weight))


def find_patterns(prompt: str, patterns: Sequence[Pattern]) -> dict[str, list[Pattern]]:
    """Domain -> its patterns found in ``prompt``."""
    found: dict[str, list[Pattern]] = {}
    prompt = prompt[:MAX_PATTERN_TEXT]
    lowered = prompt.lower()
    for pattern in patterns:
        if pattern.needs in lowered and pattern.regex.search(prompt):
            found.setdefault(pattern.domain, []).append(pattern)
    return found


_GRAMMAR_LITERAL = re.compile(r'"([A-Z][A-Z_]{2,})"')


def grammar_terms(text: str) -> tuple[str, ...]:
    """The keywords a GBNF grammar spells as literals in capitals (``"SELECT"``, ``"MATCH"``), sorted."""
    return tuple(sorted({word.lower() for word in _GRAMMAR_LITERAL.findall(text)}))
