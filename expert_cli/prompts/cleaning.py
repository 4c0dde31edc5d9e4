"""Output cleaning: cut at chat-format artefacts and stop sequences, hide reasoning, for whole and streamed text.

The rules (:func:`clean_output`), applied in this order:

1. Cut at the first chat-format artefact anywhere (``<|im_end|>``, ``<|im_start|>``, ``<|end|>``,
   ``<|endoftext|>`` and the legacy role markers ``<|user|>``, ``<|system|>``, ``<|assistant|>``): the model
   has ended its turn or started a new one.
2. Cut at the first stop sequence (the stop text itself is removed). A stop sequence inside a reasoning
   block (``<think>...</think>``, ``<redacted_reasoning>...``, or an unclosed one) does not count: the
   manifests' stops (``\\n\\n``, ``;``) are meant for the answer, not for the model's thinking.
3. Unless ``show_reasoning``: remove closed reasoning blocks, a dangling unclosed ``<think>`` (to the end)
   and stray closing tags. Tags match case-insensitively.
4. Trim surrounding whitespace.

:class:`StopChecker` applies rules 1-2 to decoded text while streaming (where generation must stop, and how
much text is safe to emit without ever showing a stop sequence); :class:`StreamCleaner` turns the growing
decoded text into pieces whose concatenation equals :func:`clean_output` of the final text.

Nothing here guesses at the answer. The original's lossy heuristics (jumping to a query keyword, dropping
"Okay"/"Let me" lines, picking a JSON span) live in the explicit, optional :func:`extract_answer`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

ARTEFACTS: tuple[str, ...] = (
    "<|im_end|>",
    "<|im_start|>",
    "<|end|>",
    "<|endoftext|>",
    "<|user|>",
    "<|system|>",
    "<|assistant|>",
)
REASONING_TAGS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<redacted_reasoning>", "</redacted_reasoning>"),
)
_OPENER = re.compile("|".join(re.escape(opener) for opener, _ in REASONING_TAGS), re.IGNORECASE)
_CLOSER = re.compile("|".join(re.escape(closer) for _, closer in REASONING_TAGS), re.IGNORECASE)
_ALL_TAGS = tuple(tag for pair in REASONING_TAGS for tag in pair)
_INCOMPLETE_CHAR = "\ufffd"  # what a byte-level tokenizer decodes half of a UTF-8 character to


@dataclass(frozen=True)
class StopMatch:
    """Where decoded text must end: ``index`` of the first character of ``sequence``."""

    index: int
    sequence: str


def normalize_stops(stop: str | Iterable[str] | None) -> tuple[str, ...]:
    """Stop sequences as a tuple without empties or duplicates (a single string is one sequence)."""
    if stop is None:
        return ()
    items = [stop] if isinstance(stop, str) else list(stop)
    return tuple(dict.fromkeys(item for item in items if item))


def reasoning_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each reasoning block; an unclosed one runs to the end of the text."""
    spans: list[tuple[int, int]] = []
    position = 0
    while (opener := _OPENER.search(text, position)) is not None:
        closer_tag = dict(REASONING_TAGS)[opener.group(0).lower()]
        close_at = text.lower().find(closer_tag, opener.end())
        end = len(text) if close_at < 0 else close_at + len(closer_tag)
        spans.append((opener.start(), end))
        position = end
    return spans


def find_stop(text: str, stops: Iterable[str], *, artefacts: bool = True) -> StopMatch | None:
    """The earliest artefact (anywhere) or stop sequence (outside reasoning) in ``text``."""
    candidates = [StopMatch(text.find(a), a) for a in (ARTEFACTS if artefacts else ()) if a in text]
    spans = reasoning_spans(text) if stops else []
    for stop in stops:
        index = text.find(stop)
        while index >= 0 and any(start <= index < end for start, end in spans):
            index = text.find(stop, index + 1)
        if index >= 0:
            candidates.append(StopMatch(index, stop))
    return min(candidates, key=lambda match: match.index, default=None)


def strip_reasoning(text: str) -> str:
    """Remove reasoning blocks, a dangling unclosed one, and stray closing tags (until none is left)."""
    while True:
        kept, position = [], 0
        for start, end in reasoning_spans(text):
            kept.append(text[position:start])
            position = end
        kept.append(text[position:])
        stripped = _CLOSER.sub("", "".join(kept))
        if stripped == text:
            return text
        text = stripped  # removal can join the halves of another tag ("<thi" + "nk>"): go again


def clean_output(text: str, show_reasoning: bool = False, stop: str | Iterable[str] | None = None) -> str:
    """Clean one generated answer (see the module docstring for the rules)."""
    match = find_stop(text, normalize_stops(stop))
    if match is not None:
        text = text[: match.index]
    if not show_reasoning:
        text = strip_reasoning(text)
        # Removing a block can join two halves of an artefact ("<|im_" + "end|>"): cut again.
        joined = find_stop(text, ())
        if joined is not None:
            text = text[: joined.index]
    return text.strip()


def _partial_suffix(text: str, patterns: tuple[str, ...], *, ignore_case: bool = False) -> int:
    """Length of the longest end of ``text`` that is a proper beginning of one of ``patterns``.

    Called for every streamed token of every row, so it looks only at the last few characters of ``text``
    (no pattern is longer) against a set of the patterns' beginnings, not at the whole text."""
    beginnings, longest = _beginnings(patterns, ignore_case)
    tail = text[-longest:] if longest else ""
    if ignore_case:
        tail = tail.lower()
    for size in range(len(tail), 0, -1):
        if tail[-size:] in beginnings:
            return size
    return 0


@functools.lru_cache(maxsize=256)
def _beginnings(patterns: tuple[str, ...], ignore_case: bool) -> tuple[frozenset[str], int]:
    """Every proper, non-empty beginning of ``patterns`` (lower-cased when ``ignore_case``), and the longest."""
    found = {(pattern.lower() if ignore_case else pattern)[:size]
             for pattern in patterns for size in range(1, len(pattern))}
    return frozenset(found), max((len(item) for item in found), default=0)


class StopChecker:
    """Finds stop sequences and artefacts in growing decoded text, for early stopping while streaming."""

    def __init__(self, stop: str | Iterable[str] | None = None, *, include_artefacts: bool = True) -> None:
        self.stops = normalize_stops(stop)
        self.include_artefacts = include_artefacts
        self._patterns = self.stops + (ARTEFACTS if include_artefacts else ())

    def find(self, text: str) -> StopMatch | None:
        """Where ``text`` must end, or None while no stop sequence or artefact has appeared."""
        return find_stop(text, self.stops, artefacts=self.include_artefacts)

    def safe_length(self, text: str) -> int:
        """How many leading characters can be shown: up to a stop, minus a tail that may begin one."""
        match = self.find(text)
        if match is not None:
            return match.index
        return len(text) - _partial_suffix(text, self._patterns)


class StreamCleaner:
    """Turns growing decoded text into pieces whose concatenation is :func:`clean_output` of the whole.

    Call :meth:`feed` with the full decoded text after each token; it returns the new piece (often "") and
    sets :attr:`stopped` once a stop sequence or artefact appears (stop generating then). Call
    :meth:`finish` with the final text to get the last piece. Text that might still change (the beginning
    of a stop sequence, an artefact, a reasoning tag or a half-decoded character) is held back.
    """

    def __init__(self, stop: str | Iterable[str] | None = None, *, show_reasoning: bool = False) -> None:
        self.checker = StopChecker(stop)
        self.show_reasoning = show_reasoning
        self.emitted = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The next piece to show, given all the text decoded so far."""
        match = self.checker.find(text)
        if match is not None:
            self.stopped = True
            return self._advance(text[: match.index])
        safe = text[: self.checker.safe_length(text)].rstrip(_INCOMPLETE_CHAR)
        safe = safe[: len(safe) - _partial_suffix(safe, _ALL_TAGS, ignore_case=True)]
        return self._advance(safe, final=False)

    def finish(self, text: str) -> str:
        """The last piece: after it, everything shown equals ``clean_output(text)``."""
        return self._advance(text)

    def _advance(self, raw: str, final: bool = True) -> str:
        cleaned = clean_output(raw, self.show_reasoning, self.checker.stops)
        if not final:
            cleaned = cleaned[: len(cleaned) - _partial_suffix(cleaned, ARTEFACTS)]
        if not cleaned.startswith(self.emitted):
            return ""  # cannot take back what was shown; wait for text that extends it
        piece, self.emitted = cleaned[len(self.emitted) :], cleaned
        return piece


# --- Optional, lossy extraction (the original's heuristics, made explicit) -------------------------------

_FENCE = re.compile(r"```[\w+.-]*[ \t]*\n(.*?)```", re.DOTALL)
_QUERY_START = {
    "sql": re.compile(r"^\s*(WITH|SELECT|INSERT|UPDATE|DELETE|CREATE)\b", re.IGNORECASE | re.MULTILINE),
    "cypher": re.compile(
        r"^\s*(MATCH|OPTIONAL\s+MATCH|CREATE|MERGE|RETURN|WITH|UNWIND|CALL)\b", re.IGNORECASE | re.MULTILINE
    ),
}
_PREAMBLE = re.compile(
    r"^\s*(okay|let me|i need|wait|hmm|so|first|the user|looking at)\b.*(\n|$)", re.IGNORECASE
)


def extract_answer(text: str, dialect: str | None = None) -> str:
    """Best-effort pick of the answer from chatty output. LOSSY: use only when asked.

    In order: the first fenced code block; for ``json`` (or text starting with ``{``/``[``) the first
    span that parses as JSON; for ``sql``/``cypher`` everything from the first line that starts with a
    query keyword; otherwise the text without leading "Okay", "Let me", ... lines. Reasoning is removed
    first. Falls back to the trimmed text.
    """
    text = strip_reasoning(text).strip()
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(1).strip()
    if dialect == "json" or text[:1] in ("{", "["):
        span = first_json_span(text)
        if span is not None:
            return span
    pattern = _QUERY_START.get(dialect or "")
    if pattern is not None and (start := pattern.search(text)) is not None:
        return text[start.start() :].strip()
    while (preamble := _PREAMBLE.match(text)) is not None and preamble.end() < len(text):
        text = text[preamble.end() :].lstrip()
    return text.strip()


def first_json_span(text: str) -> str | None:
    """The first substring starting at ``{`` or ``[`` that parses as one JSON value, else None."""
    decoder = json.JSONDecoder()
    for index, char in enumerate(text):
        if char in "{[":
            try:
                _, end = decoder.raw_decode(text, index)
            except ValueError:
                continue
            return text[index:end]
    return None
