"""Notation signatures: punctuation that marks one expert's prompts, learned from its routing exemplars.

A graph schema pasted into a prompt (``(:Person {name: STRING})``, ``(:Person)-[:ACTED_IN]->(:Movie)``)
says "Cypher" as clearly as any keyword, yet holds no word the router could match. So each expert's
exemplars are scanned for runs of two or more punctuation characters (``(:``, ``]->(:``, ``{"``); a run
found in at least ``SIGNATURE_SHARE`` of one expert's exemplars and in at most ``RIVAL_SHARE`` of every
other expert's is that expert's signature. A prompt that carries a signature is code written in the
expert's notation: strong evidence, like a keyword written as code. Nothing is hard-coded per language;
an expert without exemplars has no signatures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SIGNATURE_SHARE = 0.5
RIVAL_SHARE = 0.05
MIN_EXEMPLARS = 10  # fewer exemplars say too little about what is typical
MAX_EXEMPLARS = 500
_RUN = re.compile(r"[^\w\s]{2,}")


def notation_runs(text: str) -> set[str]:
    """The distinct runs of two or more punctuation characters in ``text``."""
    return set(_RUN.findall(text))


class NotationIndex:
    """Signature run -> the one candidate whose exemplars it marks."""

    def __init__(self, exemplar_sets: Sequence[Sequence[str]]) -> None:
        shares = [_run_shares(exemplars[:MAX_EXEMPLARS]) for exemplars in exemplar_sets]
        self._owner: dict[str, int] = {}
        for candidate, share in enumerate(shares):
            for run, fraction in share.items():
                if fraction < SIGNATURE_SHARE:
                    continue
                rivals = (other.get(run, 0.0) for index, other in enumerate(shares) if index != candidate)
                if all(value <= RIVAL_SHARE for value in rivals):
                    self._owner[run] = candidate

    def __bool__(self) -> bool:
        return bool(self._owner)

    def signatures(self, prompt: str) -> dict[int, list[str]]:
        """Candidate index -> the signature runs of that candidate found in ``prompt`` (sorted)."""
        if not self._owner:
            return {}
        found: dict[int, list[str]] = {}
        for run in sorted(notation_runs(prompt)):
            owner = self._owner.get(run)
            if owner is not None:
                found.setdefault(owner, []).append(run)
        return found


def _run_shares(exemplars: Sequence[str]) -> dict[str, float]:
    texts = [text for text in exemplars if isinstance(text, str) and text.strip()]
    if len(texts) < MIN_EXEMPLARS:
        return {}
    counts: dict[str, int] = {}
    for text in texts:
        for run in notation_runs(text):
            counts[run] = counts.get(run, 0) + 1
    return {run: held / len(texts) for run, held in counts.items()}
