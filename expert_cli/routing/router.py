"""The router: per prompt, on the CPU, decide whether the bare base or which experts answer, and why.

Pure Python, deterministic, no torch. Everything about the candidates is compiled once at construction
(:mod:`expert_cli.routing.features`, :mod:`expert_cli.routing.index`); a query costs
one tokenisation and dict lookups.

Rules, in order:

1. Each candidate's score is the sum of its matched features (per query span: the best feature counts
   fully, each other feature on the same words adds half its weight), minus exclude-keyword penalties, plus
   the lexicon patterns of its domains found in the prompt (a table or graph schema, code: 1.5 or the
   pattern's own weight, +0.5 per further one), its exemplar similarity above 0.2 (scaled to at most 3.0)
   and the optional semantic similarity, times a mild priority factor ``0.8 + 0.4 x priority`` (1.0 when
   unset). Features come from the manifest (name, keywords, capabilities, description, tags, the grammar's
   keywords) and from the domain lexicon the expert inherits (:mod:`expert_cli.routing.lexicon`, data in
   ``data/lexicon.json``): dialects, constructs, frameworks and file kinds its manifest does not list.
   ``features`` has the weights, ``scores`` the sum.
2. Strong evidence is a name, keyword, capability or lexicon term that is not a common word, a common
   keyword written as code (``MATCH``), three distinct common keywords, a lexicon pattern, a high
   exemplar/semantic similarity, or the expert's own notation (punctuation typical of its exemplars,
   ``]->(:``; see ``notation``). Common words alone never route.
3. ``selection`` chooses: a candidate needs strong evidence and a score of 1.25 (2.0 for a question). A
   knowledge question ("What is a CTE?", not "Which customers ...?") is one signal among the others: it
   costs 6.0 unless the prompt holds task evidence for the candidate (a schema or code of its domain, a
   task phrase, its keywords written as code), so "How many orders ...? Table orders(id, ...)" goes to the
   SQL expert and "What are the advantages of SQL?" to the base. Notation alone never beats another
   expert's words; a prompt that names a lexicon domain no loaded expert covers ("an Elasticsearch query"
   with only SQL loaded) goes to no other domain's expert on generic words. With nothing qualifying the
   base model answers. Others join the best (up to 10) when the prompt names their domain too. Weights
   are proportional to scores and sum to 1. ``RouteDecision.to_dict`` shows the threshold, whether the
   prompt is a (knowledge) question, and every candidate's evidence.

Only candidates with strong evidence can be chosen, so only they are scored per query; the report of the
others (weak evidence only) is built when ``decision.candidates`` is first read, and only for routers of at
most ``MAX_REPORTED`` candidates. Ties are broken by priority, then name: the result never depends on
dict or set order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from expert_cli.core.errors import ExpertError, UsageError
from expert_cli.manifest.locations import inside
from expert_cli.routing.domains import DomainIndex
from expert_cli.routing.features import (
    CODE_SHARE_LIMIT,
    WEAK_KINDS,
    Feature,
    as_handoff,
    compile_features,
    shared_weight,
)
from expert_cli.routing.index import ExemplarIndex, TermIndex
from expert_cli.routing.lexicon import Lexicon, Pattern, grammar_terms, load_lexicon
from expert_cli.routing.notation import NotationIndex
from expert_cli.routing.scores import (
    EXEMPLAR_STRONG,
    SEMANTIC_STRONG,
    WEAK_QUORUM,
    Scored,
    score_candidate,
)
from expert_cli.routing.selection import (
    CHOSEN,
    MIN_SCORE,
    NOT_STRONG,
    QUESTION_MIN_SCORE,
    choose,
    composition_weights,
)
from expert_cli.routing.text import (
    content_terms,
    has_task_cue,
    is_knowledge_question,
    is_question,
    stems_of,
    tokenize_with_case,
)

if TYPE_CHECKING:
    from expert_cli.manifest.model import Manifest
    from expert_cli.routing.semantic import SemanticScorer

MAX_EXPERTS = 10
_NON_DILUTING = frozenset({"exclude", "support", "grammar", "tag", "description"})  # weak: never dilute others
MAX_REPORTED = 20
Hits = dict[int, list[tuple[int, int, int]]]


@dataclass(frozen=True)
class RouterCandidate:
    """What the router knows about one expert: its manifest's routing data and its exemplar prompts."""

    name: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    exclude_keywords: tuple[str, ...] = ()
    priority: float | None = None
    capabilities: tuple[str, ...] = ()
    exemplars: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    grammar_terms: tuple[str, ...] = ()

    @classmethod
    def from_manifest(cls, manifest: Manifest, exemplars: Iterable[str] | None = None) -> RouterCandidate:
        routing = manifest.routing
        priority = routing.priority if routing is not None else None
        tags = manifest.data.get("tags")
        return cls(
            name=manifest.name,
            description=manifest.description,
            keywords=tuple(routing.keywords) if routing else (),
            exclude_keywords=tuple(routing.exclude_keywords) if routing else (),
            priority=float(priority) if isinstance(priority, (int, float)) else None,
            capabilities=tuple(manifest.capabilities),
            exemplars=tuple(text for text in exemplars or () if isinstance(text, str) and text.strip()),
            tags=tuple(tag for tag in tags if isinstance(tag, str)) if isinstance(tags, list) else (),
            grammar_terms=_manifest_grammar_terms(manifest),
        )


@dataclass
class RouteDecision:
    """The chosen experts (empty: the base model answers), their weights, and the scored candidates.

    ``candidates`` (``[{"name", "score", "reasons"}]``, best first) is built on first read.
    """

    prompt: str
    experts: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    question: bool = False
    explain: Callable[[], list[dict[str, Any]]] | None = field(default=None, repr=False, compare=False)
    knowledge: bool = False  # a knowledge question: candidates without task evidence pay KNOWLEDGE_PENALTY
    threshold: float = MIN_SCORE  # the score a candidate needs (after any penalty) to be chosen

    @functools.cached_property
    def candidates(self) -> list[dict[str, Any]]:
        return self.explain() if self.explain is not None else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "experts": list(self.experts),
            "weights": dict(self.weights),
            "question": self.question,
            "knowledge_question": self.knowledge,
            "threshold": self.threshold,
            "candidates": [dict(c, reasons=list(c["reasons"])) for c in self.candidates],
        }


class Router:
    """Routes prompts among a fixed set of candidates. Build once, call :meth:`route` per prompt."""

    def __init__(self, candidates: Sequence[RouterCandidate], *, semantic: SemanticScorer | None = None,
                 max_experts: int = MAX_EXPERTS, lexicon: Lexicon | None = None) -> None:
        names = [candidate.name for candidate in candidates]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise UsageError(f"expert `{duplicates[0]}` is given more than once to the router")
        self.candidates = list(candidates)
        self.max_experts = max(1, min(max_experts, MAX_EXPERTS))
        self._positions = {name: index for index, name in enumerate(names)}
        self._priorities = [_priority(candidate) for candidate in self.candidates]
        self._priority_factors = [0.8 + 0.4 * priority for priority in self._priorities]
        self._features: list[Feature] = []
        self._strong, self._weak, self._weak_keywords = TermIndex(), TermIndex(), TermIndex()
        self._local = [TermIndex() for _ in self.candidates]
        self._domains = DomainIndex(lexicon if lexicon is not None else load_lexicon())
        self._compile()
        self._exemplars = ExemplarIndex([candidate.exemplars for candidate in self.candidates], EXEMPLAR_STRONG)
        self._notation = NotationIndex([candidate.exemplars for candidate in self.candidates])
        self._semantic = semantic
        self._semantic_decisive = getattr(semantic, "decisive", True)  # False: the score only supports
        if semantic is not None:
            semantic.fit(self.candidates)

    @classmethod
    def from_manifests(cls, manifests: Iterable[Manifest], **kwargs: Any) -> Router:
        return cls([RouterCandidate.from_manifest(manifest) for manifest in manifests], **kwargs)

    def _compile(self) -> None:
        """Strong features go to one shared index; weak and exclude ones to the candidate's own index
        (and to a shared one, for capitalised words and for reports)."""
        compiled = []
        holders: dict[tuple[str, ...], set[int]] = {}
        strong_holders: dict[tuple[str, ...], set[int]] = {}
        for index, candidate in enumerate(self.candidates):
            vocabulary = self._domains.vocabulary(index, candidate.name, candidate.capabilities, candidate.keywords,
                                                  candidate.tags, candidate.grammar_terms)
            for key, feature in compile_features(index, candidate.name, candidate.description, candidate.keywords,
                                                 candidate.exclude_keywords, candidate.capabilities, vocabulary):
                compiled.append((key, feature))
                if feature.kind not in _NON_DILUTING:
                    holders.setdefault(key, set()).add(index)
                if feature.strong:
                    strong_holders.setdefault(key, set()).add(index)
        for key, feature in compiled:
            shared = len(holders.get(key, set()) | {feature.candidate}) if feature.kind != "exclude" else 1
            if feature.kind == "exclude" and strong_holders.get(key, set()) - {feature.candidate}:
                feature = as_handoff(feature)
            elif shared > 1:
                feature = Feature(feature.candidate, feature.kind, feature.label,
                                  shared_weight(feature.weight, shared), feature.strong, shared)
            feature_id = len(self._features)
            self._features.append(feature)
            if feature.strong:
                self._strong.add(key, feature_id)
            else:
                self._weak.add(key, feature_id)
                self._local[feature.candidate].add(key, feature_id)
                if feature.kind in WEAK_KINDS and shared <= CODE_SHARE_LIMIT:
                    self._weak_keywords.add(key, feature_id)
        self._domains.finish()

    def route(self, prompt: str, among: Collection[str] | None = None) -> RouteDecision:
        """Score the candidates (or those named in ``among``) and choose zero, one or several experts."""
        tokens, capitals = tokenize_with_case(prompt)
        stems = stems_of(tokens)
        allowed = self._allowed(among)
        hits = self._strong_hits(stems, capitals)
        similarities = self._exemplars.similarities(content_terms(stems), hits) if self._exemplars else {}
        semantic = self._semantic.similarities(prompt) if self._semantic is not None else {}
        notation = self._notation.signatures(prompt) if self._notation else {}
        structures = self._domains.structures(prompt)
        running = set(hits) | set(notation) | set(structures)
        running.update(index for index, value in similarities.items() if value >= EXEMPLAR_STRONG)
        if self._semantic_decisive:
            running.update(index for index, value in semantic.items() if value >= SEMANTIC_STRONG)
        if allowed is not None:
            running &= allowed
        scored = [self._score(index, hits.get(index, []), stems, capitals, similarities, semantic,
                              notation.get(index, ()), structures.get(index, ())) for index in running]
        scored.sort(key=self._rank)
        question = is_question(prompt, tokens)
        knowledge = question and is_knowledge_question(tokens) and not has_task_cue(tokens)
        in_domain = self._domains.in_domain
        judged = any(entry.index in in_domain and not entry.named for entry in scored)
        foreign = self._domains.foreign(prompt, stems) if judged else []
        chosen, verdicts = choose(scored, question, knowledge, self.max_experts, foreign, in_domain)
        weights = composition_weights([self.candidates[entry.index].name for entry in chosen],
                                      [entry.score for entry in chosen])

        def explain() -> list[dict[str, Any]]:
            entries = list(zip(scored, verdicts))
            if len(self.candidates) <= MAX_REPORTED:
                entries += self._weak_entries(stems, capitals, similarities, semantic, running, allowed)
                entries.sort(key=lambda pair: self._rank(pair[0]))
            return [self._report(entry, verdict, weights) for entry, verdict in entries[:MAX_REPORTED]]

        return RouteDecision(prompt, list(weights), weights, question, explain, knowledge,
                             QUESTION_MIN_SCORE if question else MIN_SCORE)

    def _score(self, index: int, hits: list, stems: tuple[str, ...], capitals: frozenset[int],
               similarities: dict[int, float], semantic: dict[int, float], notation: Sequence[str] = (),
               structures: Sequence[Pattern] = ()) -> Scored:
        local = self._local[index]
        all_hits = hits + local.matches(stems) if local else hits
        return score_candidate(index, all_hits, self._features, similarities.get(index, 0.0),
                               semantic.get(index, 0.0), self._priority_factors[index], capitals, notation,
                               structures, self._semantic_decisive)

    def _rank(self, entry: Scored) -> tuple[float, float, str]:
        return (-entry.score, -self._priorities[entry.index], self.candidates[entry.index].name)

    def _strong_hits(self, stems: tuple[str, ...], capitals: frozenset[int]) -> Hits:
        """Strong features in the prompt; candidates join (with no hit yet) when they have common keywords
        written in capitals or ``WEAK_QUORUM`` distinct common keywords in the prompt."""
        features = self._features
        hits: Hits = {}
        for hit in self._strong.matches(stems):
            hits.setdefault(features[hit[0]].candidate, []).append(hit)
        weak_spans: dict[int, set[tuple[int, int]]] = {}
        for feature_id, start, end in self._weak_keywords.matches(stems):
            candidate = features[feature_id].candidate
            if start in capitals:
                hits.setdefault(candidate, [])
            weak_spans.setdefault(candidate, set()).add((start, end))
        for candidate, spans in weak_spans.items():
            if len(spans) >= WEAK_QUORUM:
                hits.setdefault(candidate, [])
        return hits

    def _weak_entries(self, stems: tuple[str, ...], capitals: frozenset[int], similarities: dict[int, float],
                      semantic: dict[int, float], running: set[int], allowed: set[int] | None) -> list:
        """Candidates with weak evidence only (never chosen), for the report of small routers."""
        touched = {self._features[hit[0]].candidate for hit in self._weak.matches(stems)}
        touched.update(similarities)
        touched.update(semantic)
        touched -= running
        if allowed is not None:
            touched &= allowed
        return [(self._score(index, [], stems, capitals, similarities, semantic), NOT_STRONG) for index in touched]

    def _allowed(self, among: Collection[str] | None) -> set[int] | None:
        if among is None:
            return None
        unknown = [name for name in among if name not in self._positions]
        if unknown:
            known = ", ".join(f"`{name}`" for name in self._positions) or "none"
            raise UsageError(f"`{unknown[0]}` is not among the router's experts ({known})")
        return {self._positions[name] for name in among}

    def _report(self, entry: Scored, verdict: str, weights: dict[str, float]) -> dict[str, Any]:
        candidate = self.candidates[entry.index]
        reasons = entry.reasons
        if candidate.priority is not None:
            reasons.append(f"priority {candidate.priority:g}")
        reasons.append(f"chosen (weight {weights[candidate.name]:g})" if verdict == CHOSEN else verdict)
        return {"name": candidate.name, "score": round(entry.score, 4), "reasons": reasons}


def _manifest_grammar_terms(manifest: Manifest) -> tuple[str, ...]:
    """Keywords of the expert's grammar (``decoding.grammar_file``, else ``grammar.gbnf`` beside the manifest)."""
    if manifest.root is None:
        return ()
    try:
        path = inside(manifest.root, manifest.decoding.grammar_file or "grammar.gbnf")
        return grammar_terms(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else ()
    except (OSError, UnicodeDecodeError, ValueError, ExpertError):
        return ()


def _priority(candidate: RouterCandidate) -> float:
    value = candidate.priority
    return min(1.0, max(0.0, value)) if value is not None else 0.5
