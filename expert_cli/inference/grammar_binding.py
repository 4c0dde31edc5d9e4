"""Names from the prompt: bind one rule of an expert's grammar to the identifiers that the prompt contains.

A small model asked for SQL over a schema it has never seen knows the shape of the query but often misspells
a table or column it has to copy (``hospments`` for ``hospitals``). When the manifest says
``"training": {"decoding": {"names_from_prompt": "schema-name"}}``, the grammar rule ``schema-name`` (the
places where the grammar expects a table, column, label or property) is rewritten for each prompt into a
choice among the identifiers found in that prompt: the schema, the question, the system message. The
model can then pick a name but never invent one, in the spirit of PICARD-style constrained decoding.

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
_RULE_START = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)\s*::=", re.MULTILINE)


def prompt_names(texts: Iterable[str]) -> list[str]:
    """The distinct identifiers in ``texts`` (chat special tokens such as ``<|im_start|>`` removed), sorted."""
    names: set[str] = set()
    for text in texts:
        names.update(_NAME.findall(_SPECIAL_TOKEN.sub(" ", text)))
    return sorted(names)


def defines_rule(grammar: str, rule: str) -> bool:
    return any(match.group(1) == rule for match in _RULE_START.finditer(grammar))


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
