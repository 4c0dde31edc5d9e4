"""What the router looks for in a prompt, per expert: features compiled once from the expert's manifest.

A feature is a stemmed word or phrase with a kind, a weight and a strength. Strong features (the expert's
name, a keyword or capability that is not a common word) can decide a route; weak ones (keywords made only
of common words such as "find" or "list all", description terms) only add support.

| kind        | from                                   | weight                    | strong            |
|-------------|----------------------------------------|---------------------------|-------------------|
| name        | the name without ``expert-``           | 2.0 (its words: 1.0 each) | yes               |
| keyword     | ``routing.keywords``                   | 1.0 (+0.25 per extra word)| unless common     |
| keyword     | ... made only of common words          | 0.3 (phrase 0.45)         | no                |
| capability  | the ``value`` of ``kind:value``        | 0.5 (phrase 0.6)          | yes               |
| description | topic words of ``description``         | 0.25 (0.75 at most)       | no                |
| lexicon     | the domain lexicon's ``terms``         | 1.25 (+0.25 per extra word)| unless common    |
| task        | ... its ``task_phrases``               | 1.0                       | yes (and a task)  |
| support     | ... its ``support`` words              | 0.3                       | no                |
| grammar     | literals in capitals of its grammar    | 0.3                       | no                |
| tag         | the manifest's ``tags``                | 0.4                       | no                |
| exclude     | ``routing.exclude_keywords``           | -2.5 (a penalty)          | -                 |
| handoff     | ... that another expert routes on      | -2.5 unless named         | -                 |

Lexicon features come from the domains the expert inherits (:mod:`expert_cli.routing.lexicon`); a word the
manifest itself lists keeps the manifest's kind. A common-word keyword (or grammar or support word) written in capitals in the prompt (``MATCH (p) RETURN p``, ``SELECT ... WHERE``,
``CREATE TABLE``: for a phrase, its first word) is code, not prose: it counts as a strong keyword (kind
``code``), unless more than 64 experts claim it.
An exclude keyword that is another loaded expert's strong term ("cypher" excluded by the SQL expert
while a Cypher expert is loaded) is a hand-off: it costs like any exclude keyword, unless the prompt also
names this expert's own domain (its name or a capability matches), so "the SQL and the Cypher for ..."
composes both experts while "a Cypher query over the rows" stays with the Cypher expert. Every weight except exclude penalties is divided by ``1 + ln(n)`` when ``n`` experts share the term.

An exclude keyword that is a question opener ("what is", "explain", "tell me about", "definition") is the
manifest's own knowledge-question gate; the router has one for every expert (a penalty that a schema or code
in the prompt lifts, see :mod:`expert_cli.routing.selection`), so such excludes are not compiled.

Natural-language capabilities (``language:en``) describe the prompt's language, not its topic, and are
skipped; every other capability is matched as whole words, never as a substring.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from expert_cli.routing.text import content_terms, is_common, is_question_phrase, normalize

NAME_WEIGHT = 2.0
NAME_PART_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
PHRASE_EXTRA_WEIGHT = 0.25
COMMON_KEYWORD_WEIGHT = 0.3
COMMON_PHRASE_WEIGHT = 0.45
CAPABILITY_WEIGHT = 0.5
CAPABILITY_PHRASE_WEIGHT = 0.6
DESCRIPTION_WEIGHT = 0.25
EXCLUDE_PENALTY = 2.5
HANDOFF_PENALTY = EXCLUDE_PENALTY
CODE_SHARE_LIMIT = 64
LEXICON_WEIGHT = 1.25  # curated to mean little outside the domain: one such word can route a task
LEXICON_PHRASE_EXTRA = 0.25
TASK_PHRASE_WEIGHT = 1.0
SUPPORT_WEIGHT = 0.3
GRAMMAR_WEIGHT = 0.3
TAG_WEIGHT = 0.4
WEAK_KINDS = frozenset({"keyword", "support", "grammar"})  # weak words that count as code in capitals

NAME_PREFIX = "expert-"
_NATURAL_LANGUAGE_KINDS = frozenset({"language", "lang", "locale", "natural_language", "nl"})
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][a-z]{2,4})?$")
_DESCRIPTION_BOILERPLATE = frozenset(normalize(
    "expert experts model models trained training train dataset datasets example examples validated "
    "source sources version checkpoint generation optimized official documentation multiple performance "
    "quality adapter lora consistent short answers response responses based specialized"
))


@dataclass(frozen=True, slots=True)
class Feature:
    """One thing to look for on behalf of one candidate (by index)."""

    candidate: int
    kind: str
    label: str
    weight: float
    strong: bool
    shared: int = 1  # how many candidates hold the same key (weights are divided by 1 + ln(shared))

    def describe(self) -> str:
        if self.kind == "exclude":
            return f'exclude keyword "{self.label}" (-{self.weight:g})'
        if self.kind == "handoff":
            return f'exclude keyword "{self.label}" (-{self.weight:g} unless this expert is named too: another expert\'s term)'
        if self.kind == "keyword" and not self.strong:
            return f'keyword "{self.label}" (common words: weak)'
        if self.kind == "code":
            return f'keyword "{self.label}" written as code ({self.label.upper()})'
        if self.kind == "capability":
            return f"capability {self.label}"
        if self.kind == "lexicon":
            return f'domain term "{self.label}" (lexicon)'
        if self.kind == "task":
            return f'task phrase "{self.label}" (lexicon)'
        if self.kind in ("support", "grammar", "tag"):
            return f'{self.kind} word "{self.label}" (weak)'
        return f'{self.kind} "{self.label}"'


def as_handoff(feature: Feature) -> Feature:
    return Feature(feature.candidate, "handoff", feature.label, HANDOFF_PENALTY, False)


def shared_weight(weight: float, shared: int) -> float:
    """A term many experts claim says less about each of them."""
    return weight / (1.0 + math.log(shared)) if shared > 1 else weight


def as_code(feature: Feature) -> Feature | None:
    """The strong twin of a common-word keyword that the prompt writes in capitals; None when too many
    experts claim that word for it to tell them apart."""
    if feature.shared > CODE_SHARE_LIMIT:
        return None
    return Feature(feature.candidate, "code", feature.label, shared_weight(KEYWORD_WEIGHT, feature.shared), True,
                   feature.shared)


def capability_terms(capability: str) -> tuple[str, ...] | None:
    """The stemmed words of a capability's value, or None when it says nothing about the topic."""
    kind, separator, value = capability.partition(":")
    if not separator:
        kind, value = "", kind
    kind, value = kind.strip().lower(), value.strip().lower()
    if kind in _NATURAL_LANGUAGE_KINDS and _LANGUAGE_CODE.match(value):
        return None
    stems = normalize(value)
    if not stems or is_common(stems) or (len(stems) == 1 and len(stems[0]) <= 2):
        return None
    return stems


def name_terms(name: str) -> tuple[str, ...]:
    bare = name[len(NAME_PREFIX):] if name.lower().startswith(NAME_PREFIX) else name
    return normalize(bare)


@dataclass(frozen=True)
class Vocabulary:
    """Words from beyond the manifest's routing section: its domains' lexicon, its grammar, its tags."""

    terms: tuple[str, ...] = ()
    task_phrases: tuple[str, ...] = ()
    support: tuple[str, ...] = ()
    grammar: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


def compile_features(index: int, name: str, description: str, keywords: tuple[str, ...],
                     excludes: tuple[str, ...], capabilities: tuple[str, ...],
                     vocabulary: Vocabulary = Vocabulary()) -> list[tuple[tuple[str, ...], Feature]]:
    """Every ``(stemmed key, feature)`` of one candidate; one feature per distinct key and kind."""
    out: dict[tuple[tuple[str, ...], str], Feature] = {}

    def put(key: tuple[str, ...], feature: Feature) -> None:
        out.setdefault((key, feature.kind), feature)

    stems = name_terms(name)
    if stems and not is_common(stems):
        put(stems, Feature(index, "name", " ".join(stems) if len(stems) > 1 else stems[0], NAME_WEIGHT, True))
        if len(stems) > 1:
            for part in stems:
                if len(part) > 2 and not is_common((part,)):
                    put((part,), Feature(index, "name", part, NAME_PART_WEIGHT, True))
    for keyword in keywords:
        _put_keyword(index, keyword, put)
    for capability in capabilities:
        key = capability_terms(capability)
        if key:
            weight = CAPABILITY_WEIGHT if len(key) == 1 else CAPABILITY_PHRASE_WEIGHT
            put(key, Feature(index, "capability", capability, weight, True))
    for exclude in excludes:
        key = normalize(exclude)
        if key and not is_question_phrase(key):
            put(key, Feature(index, "exclude", exclude.strip().lower(), EXCLUDE_PENALTY, False))
    _put_vocabulary(index, vocabulary, out)
    covered = {part for key, _kind in out for part in key}
    for term in sorted(content_terms(normalize(description)) - covered - _DESCRIPTION_BOILERPLATE):
        if len(term) > 2 and term.isalnum() and not term.isdigit():
            put((term,), Feature(index, "description", term, DESCRIPTION_WEIGHT, False))
    return [(key, feature) for (key, _kind), feature in out.items()]


def _put_keyword(index: int, keyword: str, put) -> None:
    key = normalize(keyword)
    if not key:
        return
    label = keyword.strip().lower()
    if is_common(key):
        weight = COMMON_KEYWORD_WEIGHT if len(key) == 1 else COMMON_PHRASE_WEIGHT
        put(key, Feature(index, "keyword", label, weight, False))
    else:
        put(key, Feature(index, "keyword", label, KEYWORD_WEIGHT + PHRASE_EXTRA_WEIGHT * (len(key) - 1), True))


def _put_vocabulary(index: int, vocabulary: Vocabulary, out: dict[tuple[tuple[str, ...], str], Feature]) -> None:
    """Lexicon, grammar and tag features. A lexicon term the manifest lists too is added beside the manifest's
    feature (on one span the best counts fully, the other at half: the two sources corroborate); weak words
    the manifest already routes on are not added again."""
    listed = {key for key, _kind in out}  # the manifest's own words, weak ones included
    added: set[tuple[str, ...]] = set()
    for kind, words in (("task", vocabulary.task_phrases), ("lexicon", vocabulary.terms),
                        ("grammar", vocabulary.grammar), ("tag", vocabulary.tags), ("support", vocabulary.support)):
        for word in words:
            key = normalize(word)
            if not key or key in added or (kind not in ("task", "lexicon") and key in listed):
                continue
            added.add(key)
            out[(key, kind)] = _vocabulary_feature(index, kind, word.strip().lower(), key)


def _vocabulary_feature(index: int, kind: str, label: str, key: tuple[str, ...]) -> Feature:
    if kind == "task":
        return Feature(index, kind, label, TASK_PHRASE_WEIGHT, True)
    if kind == "lexicon":
        if is_common(key):
            return Feature(index, "support", label, SUPPORT_WEIGHT, False)
        return Feature(index, kind, label, LEXICON_WEIGHT + LEXICON_PHRASE_EXTRA * (len(key) - 1), True)
    weight = {"grammar": GRAMMAR_WEIGHT, "tag": TAG_WEIGHT}.get(kind, SUPPORT_WEIGHT)
    return Feature(index, kind, label, weight, False)
