"""Choosing experts from scored candidates, and the weights for composing them.

1. A candidate qualifies with at least one strong piece of evidence and a score of at least
   ``MIN_SCORE``; a prompt phrased as a question or an explanation request needs ``QUESTION_MIN_SCORE``.
2. A knowledge question (a definitional or explanatory opener, and nothing in it that asks for a query,
   code or a fix or points at given text: see ``text.is_knowledge_question`` and ``text.has_task_cue``)
   costs every candidate ``KNOWLEDGE_PENALTY``, unless the prompt holds task evidence for it: its
   keywords written as code (``MATCH ... RETURN``), a schema or code of its domain (a lexicon pattern), a
   task phrase of its domain, or a high exemplar or semantic similarity (a question-answering expert gets
   its questions). The question is one signal among the others, not a veto: strong domain evidence can
   outweigh it. No candidate qualifies -> the base model answers.
   When the prompt names a domain of the lexicon that no loaded expert covers ("an Elasticsearch query"
   with only a SQL expert loaded), a candidate of another lexicon domain is chosen only when the prompt
   names it too; a candidate outside every lexicon domain is not judged by this rule.
   A candidate whose only strong evidence is its learned notation (punctuation runs) is not chosen while
   another qualifying candidate has words or patterns for it: notation never beats meaning.
3. When the prompt names some qualifying experts' domains (their name or a capability value, e.g.
   "a Cypher query"), only those can be chosen. The best candidate is chosen; others join (up to
   ``max_experts``) when the prompt clearly spans their domain too: they qualify, score at least
   ``SECONDARY_SHARE`` of the best, the prompt names their domain, and they have strong evidence on words
   that no already chosen expert matched.
4. Weights are proportional to the scores, rounded to 4 places, and sum to exactly 1.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from expert_cli.routing.scores import Scored

MIN_SCORE = 1.25
QUESTION_MIN_SCORE = 2.0
KNOWLEDGE_PENALTY = 6.0  # calibrated on the development part: 5-8 score alike there, 4 and below worse
SECONDARY_SHARE = 0.25
CHOSEN = "chosen"
NOT_STRONG = "not chosen: no strong evidence (common words or weak similarity only)"
KNOWLEDGE = "not chosen: a knowledge question with no task for an expert (the base model answers)"
NOTATION_ONLY = "not chosen: only its notation, while the prompt's words name another expert's domain"


def choose(scored: Sequence[Scored], question: bool, knowledge: bool, max_experts: int,
           foreign: Sequence[str] = (), in_domain: Collection[int] = ()) -> tuple[list[Scored], list[str]]:
    """The chosen entries (best first) and a verdict for every entry of ``scored`` (sorted best first);
    ``foreign`` names the lexicon domains in the prompt that no candidate covers, ``in_domain`` holds the
    candidates (by index) that inherit some lexicon domain: only those can be told apart from it."""
    threshold = QUESTION_MIN_SCORE if question else MIN_SCORE
    if knowledge:
        for entry in scored:
            if not entry.task_like:
                entry.penalty = KNOWLEDGE_PENALTY
    verdicts = [_qualify(entry, threshold, question, knowledge) for entry in scored]
    if foreign:
        why = f"not chosen: the prompt names another domain ({', '.join(foreign)}) and not this expert's"
        verdicts = [why if v is None and not e.named and e.index in in_domain else v for e, v in zip(scored, verdicts)]
    if any(v is None and e.meaning for e, v in zip(scored, verdicts)):
        verdicts = [NOTATION_ONLY if v is None and not e.meaning else v for e, v in zip(scored, verdicts)]
    named_present = any(v is None and e.named for e, v in zip(scored, verdicts))
    chosen: list[Scored] = []
    claimed: list[tuple[int, int]] = []
    for position, entry in enumerate(scored):
        if verdicts[position] is None:
            verdicts[position] = _select(entry, chosen, claimed, named_present, max_experts)
        if verdicts[position] == CHOSEN:
            chosen.append(entry)
            claimed.extend(entry.spans)
    return chosen, [verdict or CHOSEN for verdict in verdicts]


def _qualify(entry: Scored, threshold: float, question: bool, knowledge: bool) -> str | None:
    """Why ``entry`` cannot be chosen on its own merits, or None when it qualifies."""
    if not entry.strong:
        return NOT_STRONG
    if entry.penalty and entry.score - entry.penalty < threshold:
        return KNOWLEDGE
    if entry.score < threshold:
        return f"not chosen: score below {threshold:g}, needed for {'a question' if question else 'a task'}"
    return None


def _select(entry: Scored, chosen: list[Scored], claimed: list[tuple[int, int]], named_present: bool,
            max_experts: int) -> str:
    if named_present and not entry.named:
        return "not chosen: the prompt names other experts' domains, not this one's"
    if not chosen:
        return CHOSEN
    if len(chosen) >= max_experts:
        return f"not chosen: {max_experts} experts already chosen"
    if entry.score < SECONDARY_SHARE * chosen[0].score:
        return f"not chosen: score below {SECONDARY_SHARE:.0%} of the best"
    if not entry.named:
        return "not chosen: a second expert joins only when the prompt names its domain too"
    if all(_overlaps(span, claimed) for span in entry.spans):
        return "not chosen: no words of its own beyond the chosen experts"
    return CHOSEN


def _overlaps(span: tuple[int, int], claimed: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in claimed)


def composition_weights(names: Sequence[str], scores: Sequence[float]) -> dict[str, float]:
    """Weights proportional to ``scores``, rounded to 4 places; the last takes the remainder (sum 1)."""
    if not names:
        return {}
    if sum(scores) <= 0:
        scores = [1.0] * len(names)
    total = sum(scores)
    rounded = [round(score / total, 4) for score in scores]
    rounded[-1] = round(1.0 - sum(rounded[:-1]), 4)
    return dict(zip(names, rounded))
