# ruff: noqa: SIM905  (word lists read best as split strings)
"""Open-vocabulary names: tables, columns, labels and properties the model has never seen before.

A fixed pool of thirty tables teaches a small model to recall names, not to read them. Expert datasets hold
out whole schemas, so what the base must learn is to copy whatever identifiers the schema or the question
carries: drawing names from thousands of English words (harvested from the standard-library docstrings
the corpus already reads) and from made-up syllable words makes copying the only strategy that works.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable

from .queries import NUMERIC_KINDS

STOPWORDS = set(("the and for that this with from are not was were been being have has had but its into "
                 "than then them they their there these those which while what when where who whom whose "
                 "will would shall should can could may might must does did doing done also only very such "
                 "each other some any all more most less none both either neither about above after again "
                 "against below between during before through under until upon within without your you "
                 "our ours his her hers him she itself himself herself yourself just like how why").split())
RESERVED = set(("select from where delete update insert into order group table values set join limit match "
                "return create index key null like between case end distinct union having exists merge "
                "detach with unwind optional true false").split())  # SQL / Cypher keywords
EXCLUDED = STOPWORDS | RESERVED
ONSETS = "b c d f g h j k l m n p r s t v w z br ch cl cr dr fl gr pl pr sh st str th tr".split()
VOWELS = "a e i o u a e i o u ai ea io ou".split()
CODAS = ["", "", "", "", "n", "r", "s", "l", "m", "t", "ck", "nd", "st"]
TEXT_KINDS = ("person", "city", "country", "status", "category", "genre", "company", "color", "title",
              "product", "subject", "level", "project")
VALUE_KINDS = (*TEXT_KINDS, *sorted(NUMERIC_KINDS), "date", "bool")
WORD = re.compile(r"\b[a-z]{3,11}\b")


class NamePool:
    """English words and made-up words, combined into snake_case identifiers."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = sorted(set(words))
        if not self.words:
            raise ValueError("a name pool needs at least one word")

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = 3, limit: int = 4000) -> NamePool:
        """The ``limit`` most frequent lower-case words of ``texts`` (ties broken alphabetically)."""
        counts = Counter(word for text in texts for word in WORD.findall(text) if word not in EXCLUDED)
        ranked = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls(ranked[:limit])

    def word(self, rng: random.Random) -> str:
        """A dictionary word, two of them run together (`stackframe`), or a made-up one (`brastolen`): the
        last two split into several tokens, so copying them takes more than recalling one."""
        roll = rng.random()
        if roll < 0.3:
            return pseudo_word(rng)
        if roll < 0.45:
            return rng.choice(self.words) + rng.choice(self.words)
        return rng.choice(self.words)

    def identifier(self, rng: random.Random, max_parts: int = 3) -> str:
        """One to ``max_parts`` words joined by underscores, mostly one or two."""
        parts = rng.choices(range(1, max_parts + 1), weights=[5, 4, 1][:max_parts])[0]
        return "_".join(self.word(rng) for _ in range(parts))

    def table(self, rng: random.Random) -> str:
        name = self.identifier(rng, 2)
        return name if name.endswith("s") or rng.random() < 0.2 else name + "s"

    def label(self, rng: random.Random) -> str:
        return "".join(part.capitalize() for part in self.identifier(rng, 2).split("_"))

    def relationship(self, rng: random.Random) -> str:
        return self.identifier(rng, 2).upper()

    def kind(self, rng: random.Random) -> str:
        return rng.choice(VALUE_KINDS)


def pseudo_word(rng: random.Random) -> str:
    """Two to four pronounceable syllables from a wide inventory (onset, vowel, optional coda)."""
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(rng.randint(2, 4)))


def phrase(identifier: str) -> str:
    """How a question names an identifier: `hire_year` -> `hire year`, `FlightCrew` -> `flight crew`."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", identifier).replace("_", " ")
    return spaced.lower()
