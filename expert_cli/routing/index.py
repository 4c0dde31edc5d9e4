"""The router's two precomputed indexes, built once at router construction.

- :class:`TermIndex`: stemmed words and phrases (keywords, capabilities, name and description terms) ->
  the features that hold them. A query is matched in one pass over its tokens: a dict lookup per token,
  plus a tuple lookup only at tokens that start some phrase.
- :class:`ExemplarIndex`: a TF-IDF profile of each expert's routing exemplars (prompts sampled from its
  training data). A query's similarity to an expert is the share of the query's topic terms (IDF-weighted)
  that are typical of that expert's prompts, in ``[0, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from expert_cli.routing.text import content_terms, normalize

MAX_EXEMPLARS = 500
SATURATION_SHARE = 0.1  # a term found in 10% of an expert's exemplars counts fully
FREQUENT_FLOOR = 32  # with up to this many experts, every term is walked through


class TermIndex:
    """Maps token tuples to feature ids; finds every feature a stemmed query contains as whole words."""

    def __init__(self) -> None:
        self._unigrams: dict[str, list[int]] = {}
        self._phrases: dict[tuple[str, ...], list[int]] = {}
        self._phrase_lengths: dict[str, tuple[int, ...]] = {}

    def add(self, key: tuple[str, ...], feature_id: int) -> None:
        if len(key) == 1:
            self._unigrams.setdefault(key[0], []).append(feature_id)
            return
        self._phrases.setdefault(key, []).append(feature_id)
        lengths = set(self._phrase_lengths.get(key[0], ())) | {len(key)}
        self._phrase_lengths[key[0]] = tuple(sorted(lengths))

    def __bool__(self) -> bool:
        return bool(self._unigrams or self._phrases)

    def word(self, token: str) -> list[int]:
        """The features that are exactly this one (stemmed) word."""
        return self._unigrams.get(token, [])

    def matches(self, stems: tuple[str, ...]) -> list[tuple[int, int, int]]:
        """``(feature_id, start, end)`` for each occurrence of an indexed word or phrase in ``stems``."""
        found: list[tuple[int, int, int]] = []
        unigrams, phrases, lengths_of = self._unigrams, self._phrases, self._phrase_lengths
        size = len(stems)
        for start, token in enumerate(stems):
            postings = unigrams.get(token)
            if postings:
                found.extend((feature_id, start, start + 1) for feature_id in postings)
            lengths = lengths_of.get(token)
            if lengths:
                for length in lengths:
                    end = start + length
                    if end > size:
                        break
                    postings = phrases.get(stems[start:end])
                    if postings:
                        found.extend((feature_id, start, end) for feature_id in postings)
        return found


class ExemplarIndex:
    """TF-IDF profiles of exemplar prompts, one per candidate (candidates without exemplars have none).

    With many experts, a term held by a large share of them (``frequent``) is not walked through for every
    holder: it can add at most its IDF share to anyone's similarity, so it is added only for candidates
    that are in the running (touched by a rarer term, or named in ``must``) unless the frequent terms alone
    could reach ``strong_share``; then every posting is walked. The similarities of those candidates are
    exact either way.
    """

    def __init__(self, exemplar_sets: Sequence[Sequence[str]], strong_share: float = 0.45) -> None:
        shares = [_term_shares(exemplars[:MAX_EXEMPLARS]) for exemplars in exemplar_sets]
        holders: dict[str, int] = {}
        for share in shares:
            for term in share:
                holders[term] = holders.get(term, 0) + 1
        count = sum(1 for share in shares if share)
        self._strong_share = strong_share
        self._idf = {term: math.log(1.0 + count / held) for term, held in holders.items()}
        self._unseen_idf = math.log(1.0 + count) if count else 0.0
        self._frequent = {term for term, held in holders.items() if held > max(FREQUENT_FLOOR, count // 8)}
        self._profiles: list[dict[str, float]] = []
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for candidate, share in enumerate(shares):
            profile = {term: self._idf[term] * min(1.0, math.sqrt(fraction / SATURATION_SHARE))
                       for term, fraction in sorted(share.items())}
            self._profiles.append(profile)
            for term, weight in profile.items():
                self._postings.setdefault(term, []).append((candidate, weight))

    def __bool__(self) -> bool:
        return bool(self._postings)

    def similarities(self, terms: set[str], must: Collection[int] = ()) -> dict[int, float]:
        """Candidate index -> similarity in ``[0, 1]`` for the candidates in the running (see the class)."""
        if not terms or not self._postings:
            return {}
        idf, unseen, frequent = self._idf, self._unseen_idf, self._frequent
        total = sum(idf.get(term, unseen) for term in terms)
        common = [term for term in terms if term in frequent]
        walk_all = sum(idf[term] for term in common) >= self._strong_share * total
        scores: dict[int, float] = {}
        for term in terms:
            if term in frequent and not walk_all:
                continue
            for candidate, weight in self._postings.get(term, ()):
                scores[candidate] = scores.get(candidate, 0.0) + weight
        if common and not walk_all:
            for candidate in must:
                scores.setdefault(candidate, 0.0)
            profiles = self._profiles
            for candidate in scores:
                profile = profiles[candidate]
                scores[candidate] += sum(profile.get(term, 0.0) for term in common)
        return {candidate: value / total for candidate, value in scores.items() if value > 0.0}


def _term_shares(exemplars: Sequence[str]) -> dict[str, float]:
    """Term -> fraction of the exemplars that contain it (topic terms only)."""
    documents = [content_terms(normalize(text)) for text in exemplars if isinstance(text, str) and text.strip()]
    if not documents:
        return {}
    counts: dict[str, int] = {}
    for document in documents:
        for term in document:
            counts[term] = counts.get(term, 0) + 1
    return {term: held / len(documents) for term, held in counts.items()}
