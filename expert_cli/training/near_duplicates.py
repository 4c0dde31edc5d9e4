"""Exact and near-duplicate detection for dataset rows: a normalised hash, and MinHash/LSH over word shingles.

Text is normalised first (lower case, punctuation dropped, whitespace collapsed), so ``SELECT name FROM t;`` and
``select name from t`` are one exact duplicate. Near duplicates are pairs whose estimated Jaccard similarity of
word 3-shingles reaches a threshold (0.85 by default); :class:`NearDuplicateIndex` uses ``datasketch``'s
``MinHashLSH`` to find candidates, then confirms each with the MinHash estimate. ``datasketch`` is imported when
the first index is built (the ``generate`` extra).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from expert_cli.core.errors import require

DEFAULT_THRESHOLD = 0.85
NUM_PERM = 64
SHINGLE = 3
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalise(text: str) -> str:
    """Lower case, punctuation replaced by spaces, whitespace collapsed."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def exact_key(text: str) -> str:
    """The SHA-256 of the normalised text: equal keys are exact duplicates."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def shingles(text: str, size: int = SHINGLE) -> set[str]:
    """Word ``size``-grams of the normalised text (the whole text when it is shorter)."""
    words = normalise(text).split()
    if len(words) <= size:
        return {" ".join(words)}
    return {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}


@dataclass(frozen=True)
class Match:
    """The earlier entry a text duplicates: its label (``file:line`` or ``seed 3``) and the similarity."""

    label: str
    similarity: float


class NearDuplicateIndex:
    """Texts added so far, queried for ones at least ``threshold`` similar (estimated Jaccard)."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, num_perm: int = NUM_PERM) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        datasketch = require("datasketch", "generate")
        self.threshold = threshold
        template = datasketch.MinHash(num_perm=num_perm, seed=1)
        self._new_sketch = lambda: datasketch.MinHash(
            num_perm=num_perm, permutations=template.permutations, scheme=template.scheme)
        self._lsh = datasketch.MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._hashes: dict[int, object] = {}
        self._labels: list[str] = []

    def __len__(self) -> int:
        return len(self._labels)

    def sketch(self, text: str):
        minhash = self._new_sketch()  # the permutations are drawn once: drawing them per text costs 0.3 ms
        minhash.update_batch([s.encode("utf-8") for s in shingles(text)])
        return minhash

    def find(self, text: str, sketch=None) -> Match | None:
        """The most similar earlier text at or above the threshold, or None."""
        sketch = sketch if sketch is not None else self.sketch(text)
        best: Match | None = None
        for key in self._lsh.query(sketch):
            similarity = sketch.jaccard(self._hashes[key])
            if similarity >= self.threshold and (best is None or similarity > best.similarity):
                best = Match(self._labels[key], round(similarity, 3))
        return best

    def add(self, text: str, label: str, sketch=None) -> None:
        sketch = sketch if sketch is not None else self.sketch(text)
        key = len(self._labels)
        self._labels.append(label)
        self._hashes[key] = sketch
        self._lsh.insert(key, sketch)
