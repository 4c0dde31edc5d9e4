"""Deterministic synthetic router candidates and queries, for ``bench_router.py`` (benchmarks only).

Each synthetic expert owns a small made-up vocabulary (pronounceable pseudo-words, so no two domains
share terms by accident) and mixes in common English words the way real manifests do ("find", "list",
"show"). Shapes follow the real manifests: ~20-30 keywords with a few phrases, exclude keywords, ~15
``kind:value`` capabilities (with ``language:en``), a two-sentence description and 50 exemplar prompts.
"""

from __future__ import annotations

import random

from expert_cli.routing.router import RouterCandidate

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
_COMMON = ["find", "get", "show", "list", "all", "count", "where", "from", "return", "match", "update", "delete", "path", "table", "order", "users"]
_FILLER = ["please", "write", "a", "query", "that", "for", "the", "with", "of", "and", "in", "to", "by", "each", "my"]
_EXCLUDES = ["what is", "what are", "explain", "meaning", "definition", "describe", "tell me about", "why"]


def pseudo_words(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def synthetic_candidates(count: int, seed: int = 0) -> list[RouterCandidate]:
    rng = random.Random(seed)
    taken: set[str] = set()
    return [_candidate(rng, index, pseudo_words(rng, 30, taken)) for index in range(count)]


def _candidate(rng: random.Random, index: int, vocab: list[str]) -> RouterCandidate:
    keywords = vocab[:18] + [f"{vocab[18]} {vocab[19]}", f"{vocab[20]} {vocab[21]}"] + rng.sample(_COMMON, 6)
    capabilities = [f"feature:{vocab[i]}_{vocab[i + 1]}" for i in range(0, 20, 2)]
    capabilities += [f"domain:{vocab[0]}", f"task:{vocab[1]}", "language:en", f"usecase:{vocab[22]}"]
    description = (f"{vocab[0].title()} {vocab[1]} generation expert for {vocab[2]} and {vocab[3]} tasks. "
                   f"Trained on validated {vocab[4]} examples with {vocab[5]} and {vocab[6]} patterns.")
    exemplars = [" ".join(rng.choice(vocab[:24]) if rng.random() < 0.4 else rng.choice(_FILLER + _COMMON)
                          for _ in range(rng.randint(8, 16))) for _ in range(50)]
    return RouterCandidate(
        name=f"expert-{vocab[0]}-{index}",
        description=description,
        keywords=tuple(keywords),
        exclude_keywords=tuple(rng.sample(_EXCLUDES, 5)),
        priority=round(rng.uniform(0.5, 0.95), 2),
        capabilities=tuple(capabilities),
        exemplars=tuple(exemplars),
    )


def synthetic_queries(candidates: list[RouterCandidate], count: int, seed: int = 0) -> list[str]:
    """Prompts of 8-20 words about one expert's domain (some about two), with filler and common words."""
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        owners = rng.sample(candidates, 2 if rng.random() < 0.15 else 1)
        vocab = [word for owner in owners for word in owner.keywords[:18]]
        words = [rng.choice(vocab) if rng.random() < 0.35 else rng.choice(_FILLER + _COMMON)
                 for _ in range(rng.randint(8, 20))]
        queries.append(" ".join(words).capitalize() + ".")
    return queries
