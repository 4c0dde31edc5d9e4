"""Checks that ``validate`` borrows from the inference layer (they need xgrammar, imported lazily)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from expert_cli.manifest.locations import inside
from expert_cli.manifest.model import Manifest
from expert_cli.manifest.validation import FAIL, PASS, WARN, Check, ValidationContext

GRAMMAR_FILE = "grammar.gbnf"


def find_grammar(manifest: Manifest, folder: Path | None = None) -> Path | None:
    """The expert's grammar: ``training.decoding.grammar_file`` when it exists, else ``grammar.gbnf``."""
    root = folder or manifest.root
    if root is None:
        return None
    declared = manifest.decoding.grammar_file
    candidates = [inside(root, declared), root / Path(declared).name] if declared else []
    candidates.append(root / GRAMMAR_FILE)
    return next((c for c in candidates if c is not None and c.is_file()), None)


def check_grammar_compiles(context: ValidationContext) -> Iterable[Check]:
    """The grammar compiles with xgrammar; a failure names the grammar line at fault."""
    from expert_cli.runtime.grammar import check_grammar, read_grammar

    assert context.manifest is not None
    grammar = find_grammar(context.manifest, context.folder)
    if grammar is None:
        if context.manifest.decoding.use_grammar or context.manifest.decoding.grammar_file:
            if context.kind == "manifest":  # a bare manifest file: its grammar ships with the expert, not beside it
                yield Check("grammar compiles", WARN, "no grammar file beside the manifest; validate the expert "
                            "folder or package to check it")
            else:
                yield Check("grammar compiles", FAIL, "the manifest asks for a grammar but no grammar file was found")
        return
    text = read_grammar(grammar)
    result = check_grammar(text, source=str(grammar))
    if result.ok:
        yield Check("grammar compiles", PASS, str(grammar))
        yield from _check_names_rule(context.manifest, text, grammar)
        return
    where = f"line {result.line}" + (f": `{result.line_text.strip()}`" if result.line_text else "") if result.line else ""
    yield Check("grammar compiles", FAIL, f"{grammar} {where} - {result.error}".strip())


def _check_names_rule(manifest: Manifest, text: str, grammar: Path) -> Iterable[Check]:
    """``training.decoding.names_from_prompt`` names a rule that the grammar defines."""
    from expert_cli.prompts.grammar_binding import defines_rule

    rule = manifest.decoding.names_from_prompt
    if not rule:
        return
    if defines_rule(text, rule):
        yield Check("names from the prompt", PASS, f"grammar rule `{rule}` is bound to the names each prompt declares")
    else:
        yield Check("names from the prompt", FAIL, f"training.decoding.names_from_prompt names `{rule}`, which "
                    f"{grammar} does not define; add `{rule} ::= [a-zA-Z_] [a-zA-Z0-9_]*` and use it")
