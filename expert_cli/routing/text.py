"""Text handling for the router: tokens, a light stemmer, common words and the question form of a prompt.

Everything here is pure Python and deterministic. Matching is always on whole tokens (never substrings):
``language:en`` cannot fire on "Generate", ``sql`` cannot fire on "mysql". The stemmer only has to be
consistent (it runs on manifests and prompts alike), so it folds plurals and ``-ing``/``-ed`` forms
("queries" -> "query", "matching" -> "match", "updated" -> "updat" like "update").
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[^\W_]+(?:\+\+|#)?")
_CAPITAL_RUN = re.compile(r"[A-Z]{3}")
_NO_CAPITALS: frozenset[int] = frozenset()
_VOWELS = frozenset("aeiouy")
_STEM_CACHE: dict[str, str] = {}
_STEM_CACHE_LIMIT = 100_000

# General English and instruction words: present in prompts of every domain, so a routing keyword made
# only of them ("find", "list all", "show") is weak evidence that supports but never decides a route.
_COMMON_TEXT = """
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing done down during each either else even ever every few for
from further had has have having he her here hers him his how i if in into is it its itself just let like
may me might mine more most much must my myself neither no nor not now of off often on once one only or
other our ours out over own per please quite rather same shall she should since so some such than that the
their theirs them then there these they this those though through thus to too under until up upon us very
via was we well were what whatever when where whether which while who whom whose why will with within
without would yes yet you your yours yourself
add answer ask build call change check choose come compute convert create describe do explain find fix
generate get give go help keep know let look make mean need put remove return run say see select set show
sort take tell think try turn use want work write
able another back bad best better big case different end example first following give given good great
high important kind large last least less little long low many new next number old part place point
possible right second show small something start state such sure thing things third time top true way
whole within word world wrong year
count sum total average mean max min maximum minimum order update delete insert list table match path
key value name type data item items result results info information user thing line text file
"""

COMMON_WORDS: frozenset[str] = frozenset()  # stemmed; filled below once stem() exists

# Openers that make a prompt an explanatory or knowledge question ("what is ...", "explain ...").
_WH_WORDS = frozenset({"what", "whats", "who", "whom", "whose", "where", "when", "why", "how", "which"})
_EXPLAIN_VERBS = frozenset({"explain", "describe", "define", "summarize", "summarise", "compare"})
_AUXILIARIES = frozenset({"is", "are", "do", "does", "did", "can", "could", "should", "would", "will", "was",
                          "were", "has", "have", "am", "may", "might", "shall"})
_FILLERS = frozenset({"please", "hey", "hi", "hello", "ok", "okay", "so", "and", "but", "quick", "question",
                      "pls", "now", "then", "also", "just"})
_YOU_CAN = frozenset({"can", "could", "would", "will"})
# Words that make a question a task: artefact-making verbs, singular artefact nouns, pointers to given text.
_TASK_WORDS = frozenset(["write", "generate", "create", "convert", "translate", "rewrite", "fix", "optimize", "optimise", "debug", "refactor", "implement", "produce", "use", "using", "query", "statement", "code", "script", "snippet", "schema", "command", "syntax", "expression", "error", "exception", "traceback", "this", "these", "following", "below", "attached"])
_HOW_TO = re.compile(r"\bhow (?:do|can|should|would|could|to) (?:i|we|you)?\b|\bhow to\b")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; ``c++`` and ``c#`` stay whole, everything else splits on punctuation."""
    return _TOKEN.findall(text.lower())


def tokenize_with_case(text: str) -> tuple[list[str], frozenset[int]]:
    """Tokens as :func:`tokenize`, plus the positions of words written in capitals (``MATCH``, ``SELECT``)
    when the prompt is not shouted as a whole: code keywords are written that way."""
    if _CAPITAL_RUN.search(text) is None:  # the common case: one pass over the lower-cased text
        return _TOKEN.findall(text.lower()), _NO_CAPITALS
    raw = _TOKEN.findall(text)
    capitals = [index for index, token in enumerate(raw) if len(token) >= 3 and token.isupper()]
    if len(capitals) * 2 > len(raw):
        capitals = []
    return [token.lower() for token in raw], frozenset(capitals)


def stems_of(tokens: list[str]) -> tuple[str, ...]:
    """``tuple(map(stem, tokens))``, with the cache consulted inline (the per-query hot path)."""
    cache = _STEM_CACHE
    return tuple([cache[token] if token in cache else stem(token) for token in tokens])


def stem(token: str) -> str:
    """A light, consistent stemmer (plurals, ``-ing``, ``-ed``, final ``e``); cached."""
    cached = _STEM_CACHE.get(token)
    if cached is not None:
        return cached
    result = _stem(token)
    if len(_STEM_CACHE) >= _STEM_CACHE_LIMIT:
        _STEM_CACHE.clear()
    _STEM_CACHE[token] = result
    return result


def _stem(word: str) -> str:
    if len(word) <= 3 or not word.isalpha():
        return word
    word = word.removesuffix("'s")
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "ches", "shes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5 and _VOWELS & set(word[:-3]):
        word = _undouble(word[:-3])
    elif word.endswith("ed") and len(word) > 4 and _VOWELS & set(word[:-2]):
        word = _undouble(word[:-2])
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _undouble(word: str) -> str:
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        return word[:-1]
    return word


def normalize(text: str) -> tuple[str, ...]:
    """The stemmed token sequence of ``text``: the unit every router match is made of."""
    return tuple(stem(token) for token in tokenize(text))


def is_common(stems: tuple[str, ...]) -> bool:
    """True when every token is a common word (or a number / one letter): weak evidence only."""
    return all(s in COMMON_WORDS or s.isdigit() or len(s) < 2 for s in stems)


def content_terms(stems: tuple[str, ...] | list[str]) -> set[str]:
    """Distinct tokens that can carry topic: not common, not numbers, at least two characters."""
    return {s for s in stems if len(s) > 1 and not s.isdigit() and s not in COMMON_WORDS}


def question_form(tokens: list[str]) -> str | None:
    """``"question"`` when the prompt opens like a knowledge or explanation request ("what is",
    "explain", "tell me", "can you describe"), else None. Looks at the opening words (after fillers such
    as "please" or "hey"), never at substrings. ``tokens`` are the raw (unstemmed) tokens.
    """
    words = tokens[:8]
    index = 0
    while index < len(words) and words[index] in _FILLERS:
        index += 1
    head = words[index:index + 4]
    if not head:
        return None
    first = head[0]
    if first in _WH_WORDS or first in _EXPLAIN_VERBS:
        return "question"
    if first == "tell" and len(head) > 1 and head[1] in ("me", "us"):
        return "question"
    if first in ("meaning", "definition", "difference") and len(head) > 1 and head[1] in ("of", "between"):
        return "question"
    if first in _YOU_CAN and len(head) > 2 and head[1] == "you":
        rest = head[2:]
        if rest and rest[0] == "please":
            rest = rest[1:]
        if rest and (rest[0] in _EXPLAIN_VERBS or rest[0] == "tell"):
            return "question"
    return None


def has_task_cue(tokens: list[str]) -> bool:
    """Whether a question asks for something an expert makes (a query, code, a fix) or about given
    content ("this error"), rather than for knowledge: "How do I ...", "... Write the query.",
    "Explain this TypeScript error" have one; "What are the advantages of SQL?" has none."""
    if _HOW_TO.search(" ".join(tokens[:4])):
        return True
    return not _TASK_WORDS.isdisjoint(tokens)


_DATA_OPENERS = frozenset({"which", "whose"})
_DATA_PAIRS = frozenset({("how", "many"), ("how", "much"), ("who", "are"), ("who", "is")})


_QUESTION_PHRASE_HEADS = frozenset(stem(word) for word in (
    "what", "whats", "why", "how", "who", "when", "where", "explain", "describe", "define", "definition",
    "meaning", "tell", "summarize", "summarise", "compare"))


def is_question_phrase(stems: tuple[str, ...]) -> bool:
    """Whether a stemmed phrase only opens a question ("what is", "tell me about", "meaning of")."""
    return bool(stems) and stems[0] in _QUESTION_PHRASE_HEADS and is_common(stems[1:])


def is_knowledge_question(tokens: list[str]) -> bool:
    """Whether a question asks for knowledge ("what is a CTE?", "explain joins", "is Elasticsearch a
    database?") rather than for data ("which customers ...", "how many orders ..."): the latter are
    questions about the user's data that an expert answers with a query."""
    index = 0
    while index < len(tokens) and tokens[index] in _FILLERS:
        index += 1
    head = tuple(tokens[index:index + 2])
    return not (head[:1] and head[0] in _DATA_OPENERS) and head not in _DATA_PAIRS


def is_question(text: str, tokens: list[str]) -> bool:
    """A question by form: an explanatory opener, or an auxiliary opener with a trailing ``?``."""
    if question_form(tokens) is not None:
        return True
    stripped = text.rstrip()
    return bool(tokens) and stripped.endswith("?") and tokens[0] in _AUXILIARIES


COMMON_WORDS = frozenset(stem(word) for word in _COMMON_TEXT.split())
