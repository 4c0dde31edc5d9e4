"""Names from the prompt: bind one rule of an expert's grammar to the identifiers that the prompt contains.

A small model asked for SQL over a schema it has never seen knows the shape of the query but often misspells
a table or column it has to copy (``hospments`` for ``hospitals``). When the manifest says
``"training": {"decoding": {"names_from_prompt": "schema-name"}}``, the grammar rule ``schema-name`` (the
places where the grammar expects a table, column, label or property) is rewritten for each prompt into a
choice among the identifiers that the prompt declares. The model can then pick a name but never invent one,
in the spirit of PICARD-style constrained decoding.

Where the names come from: a schema is written as declarations, a name followed by a bracketed list
(``CREATE TABLE ships (id INTEGER, name TEXT, ...)``, ``(:Ship {name: STRING, crew: INTEGER})``,
``Fields: name (string), crew (integer), ...``). When the prompt has such a line, the names are those of the
paragraphs that hold one (a relationship line such as ``(:Ship)-[:DOCKED_AT]->(:Port)`` next to its node
lines comes along); the question's own words are left out, so a question word (``lowest``) or a singular
(``ship``) cannot be written where a table or column belongs. A prompt without declarations (a schema
described in prose) binds every identifier it contains.

The grammar file keeps a free definition of the rule (``schema-name ::= [a-zA-Z_] [a-zA-Z0-9_]*``), so it
stays a valid grammar on its own and for other tools; only this module's rewrite binds it. Pure text
functions, no xgrammar here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_NAMES = 2048  # a prompt with more distinct identifiers keeps the rule's free definition
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_TOKEN = re.compile(r"<\|[^|<>]*\|>")
_RULE_START = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)\s*::=")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_BRACKETED_LIST = re.compile(r"[(\[{][^()\[\]{}]*,[^()\[\]{}]*[)\]}]")  # ( a, b ) [ a, b ] { a: x, b: y }
_LIST_OF_TYPED = re.compile(r"\w+\s*[(\[]\s*\w+\s*[)\]]\s*,")  # name (string), ...
_PROPERTY_MAP = re.compile(r"\{\s*\w+\s*:")  # {name: STRING}


def prompt_names(texts: Iterable[str]) -> list[str]:
    """The distinct identifiers that ``texts`` declare, sorted (chat special tokens such as ``<|im_start|>``
    removed): those of the paragraphs holding a declaration line, or every identifier when none does."""
    paragraphs = [part for text in texts for part in _PARAGRAPH_BREAK.split(_SPECIAL_TOKEN.sub(" ", text))]
    declaring = [part for part in paragraphs if any(map(is_declaration, part.splitlines()))]
    names: set[str] = set()
    for part in declaring or paragraphs:
        names.update(_NAME.findall(part))
    return sorted(names)


def is_declaration(line: str) -> bool:
    """Whether ``line`` declares names: a bracketed, comma-separated list (``students (id INTEGER, name
    TEXT)``), a property map (``{name: STRING}``) or a list of typed names (``name (string), age (integer)``)."""
    return any(pattern.search(line) for pattern in (_BRACKETED_LIST, _PROPERTY_MAP, _LIST_OF_TYPED))


def defines_rule(grammar: str, rule: str) -> bool:
    return any(_defines(line, rule) for line in grammar.splitlines())


def bind_rule(grammar: str, rule: str, names: Iterable[str]) -> str:
    """``grammar`` with the definition of ``rule`` replaced by a choice among ``names``.

    The definition runs from ``rule ::=`` to the next line that starts a rule, a comment or is blank
    (continuation lines are indented). With no names, or more than ``MAX_NAMES``, the grammar is returned
    unchanged. Raises ``ValueError`` when ``rule`` is not defined.
    """
    chosen = sorted({name for name in names if _NAME.fullmatch(name)})
    lines = grammar.splitlines()
    start = next((i for i, line in enumerate(lines) if _defines(line, rule)), None)
    if start is None:
        raise ValueError(f"the grammar defines no rule `{rule}`")
    if not chosen or len(chosen) > MAX_NAMES:
        return grammar
    end = start + 1
    while end < len(lines) and lines[end][:1] in (" ", "\t") and lines[end].strip():
        end += 1
    bound = f"{rule} ::= " + " | ".join(f'"{name}"' for name in chosen)
    return "\n".join([*lines[:start], bound, *lines[end:]]) + ("\n" if grammar.endswith("\n") else "")


def _defines(line: str, rule: str) -> bool:
    match = _RULE_START.match(line)
    return match is not None and match.group(1) == rule
