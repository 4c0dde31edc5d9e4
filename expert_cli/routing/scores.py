"""Scoring one candidate from its matched features and similarities (see :mod:`expert_cli.routing.router`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from expert_cli.routing.features import WEAK_KINDS, Feature, as_code
from expert_cli.routing.lexicon import Pattern

CORROBORATION = 0.5
DESCRIPTION_CAP = 0.75
EXEMPLAR_WEIGHT = 3.0
EXEMPLAR_FLOOR = 0.2
EXEMPLAR_STRONG = 0.65
WEAK_QUORUM = 3  # this many distinct common-word keywords together count as strong evidence
SEMANTIC_WEIGHT = 2.0  # the contribution at SEMANTIC_STRONG similarity (MiniLM cosine: related topics ~0.3-0.6)
SEMANTIC_FLOOR = 0.15
SEMANTIC_STRONG = 0.3
NOTATION_WEIGHT = 1.25  # the expert's own notation counts like one keyword written as code (but see NOTATION_ONLY)
STRUCTURE_EXTRA = 0.5  # each further lexicon pattern of the domain, beyond the weightiest (its own weight)
NAMING_KINDS = frozenset({"name", "capability", "lexicon", "task"})

Hit = tuple[int, int, int]  # (feature id, start token, end token)


class Scored:
    """One candidate's score, whether it has strong evidence, the query spans it matched, and why."""

    __slots__ = ("evidence", "index", "meaning", "named", "notation", "penalty", "score", "semantic", "similarity",
                 "spans", "strong", "structures", "task_like")

    def __init__(self, index: int, score: float, strong: bool, spans: list[tuple[int, int]],
                 evidence: list[Feature], similarity: float, semantic: float, task_like: bool = False,
                 named: bool = False, notation: Sequence[str] = (), structures: Sequence[str] = ()) -> None:
        self.index = index
        self.structures = structures  # lexicon patterns of its domain found in the prompt (a schema, code)
        self.meaning = bool(spans) or bool(structures) or similarity > 0.0 or semantic > 0.0  # beyond notation
        self.penalty = 0.0  # the knowledge-question penalty, set by the selection
        self.named = named  # the prompt names this expert's domain (its name or a capability)
        self.task_like = task_like  # code keywords, or the prompt reads like this expert's own prompts
        self.score = score
        self.strong = strong
        self.spans = spans
        self.evidence = evidence
        self.similarity = similarity
        self.semantic = semantic
        self.notation = notation

    @property
    def reasons(self) -> list[str]:
        """Readable reasons, built only for the candidates a decision reports."""
        reasons = [feature.describe() for feature in self.evidence]
        reasons += [f"{name} (lexicon pattern)" for name in self.structures]
        if self.notation:
            reasons.append("its notation (" + " ".join(self.notation) + ")")
        if self.similarity:
            reasons.append(f"exemplar similarity {self.similarity:.2f}")
        if self.semantic:
            reasons.append(f"semantic similarity {self.semantic:.2f}")
        if self.penalty:
            reasons.append(f"a knowledge question with no task for it (-{self.penalty:g})")
        return reasons


def score_candidate(index: int, hits: Iterable[Hit], features: Sequence[Feature], similarity: float,
                    semantic: float, priority_factor: float, capitals: frozenset[int] = frozenset(),
                    notation: Sequence[str] = (), structures: Sequence[Pattern] = (),
                    semantic_decisive: bool = True) -> Scored:
    """Sum the evidence: per query span the best feature fully, the others on it at half (all of them at
    half for a span inside a longer matched one: "find" inside "find all"); then penalties."""
    seen: set[int] = set()
    spans: dict[tuple[int, int], list] = {}  # span -> [best weight, other weights, strong]
    evidence: list[Feature] = []
    penalty = description = handoff = 0.0
    code = named = task = False
    for feature_id, start, end in hits:
        if feature_id in seen:
            continue
        seen.add(feature_id)
        feature = features[feature_id]
        kind = feature.kind
        if kind == "grammar" and start not in capitals:
            continue  # a grammar's keywords ("AND", "MATCH") are evidence only when written as code
        if kind in WEAK_KINDS and not feature.strong and start in capitals:
            feature = as_code(feature) or feature
            code = code or feature.kind == "code"
        evidence.append(feature)
        if kind == "exclude":
            penalty += feature.weight
            continue
        if kind == "handoff":
            handoff += feature.weight
            continue
        named = named or kind in NAMING_KINDS
        task = task or kind == "task"
        if kind == "description":
            description += feature.weight
            continue
        weight = feature.weight
        entry = spans.get((start, end))
        if entry is None:
            spans[(start, end)] = [weight, 0.0, feature.strong]
        else:
            entry[1] += min(weight, entry[0])
            entry[0] = max(weight, entry[0])
            entry[2] = entry[2] or feature.strong
    total = min(description, DESCRIPTION_CAP)
    strong_spans = []
    wide = [other for other in spans if other[1] - other[0] > 1]  # only a phrase can hold another span
    for span, (best, others, strong) in spans.items():
        inside = any(o[0] <= span[0] and span[1] <= o[1] and o != span for o in wide) if wide else False
        total += CORROBORATION * (best + others) if inside else best + CORROBORATION * others
        if strong:
            strong_spans.append(span)
    if similarity > EXEMPLAR_FLOOR:
        total += EXEMPLAR_WEIGHT * (similarity - EXEMPLAR_FLOOR) / (1.0 - EXEMPLAR_FLOOR)
    if semantic > SEMANTIC_FLOOR:
        total += SEMANTIC_WEIGHT * semantic / SEMANTIC_STRONG
    if notation:
        total += NOTATION_WEIGHT
    if structures:
        weights = sorted((pattern.weight for pattern in structures), reverse=True)
        total += weights[0] + STRUCTURE_EXTRA * (len(weights) - 1)
    if handoff and not named:
        penalty += handoff
    like_training = similarity >= EXEMPLAR_STRONG or (semantic_decisive and semantic >= SEMANTIC_STRONG)
    strong = bool(strong_spans) or len(spans) >= WEAK_QUORUM or like_training or bool(notation) or bool(structures)
    strong_spans.sort()
    task_like = code or task or like_training or bool(notation) or bool(structures)
    return Scored(index, (total - penalty) * priority_factor, strong, strong_spans, evidence, similarity, semantic,
                  task_like, named, notation, tuple(dict.fromkeys(pattern.name for pattern in structures)))
