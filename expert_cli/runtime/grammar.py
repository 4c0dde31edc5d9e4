"""Grammar-constrained decoding: an expert's ``grammar.gbnf`` restricts which tokens the model may pick.

Library choice: **xgrammar**. It is actively maintained (the structured-generation backend of vLLM, SGLang
and TensorRT-LLM), parses GBNF/EBNF directly (the original's llama.cpp grammars compile unchanged, left
recursion included, thanks to its Earley parser), precomputes per-state token masks so a decoding step
costs microseconds, and builds its tokenizer info straight from a Hugging Face tokenizer. The others:
``outlines`` compiles regex/JSON-schema/CFG through its own formats (GBNF needs rewriting) and its CFG path is
slow; ``llama-cpp-python`` enforces GBNF only inside llama.cpp's own runtime, not on a transformers model;
``transformers-cfg`` speaks GBNF but is a small, slow, pure-Python project with few maintainers.

Use: :func:`check_grammar` (no tokenizer; for ``validate``), :func:`compile_grammar` (cached per grammar text,
tokenizer, model vocabulary size and stop tokens; the 64 most recent grammars per tokenizer),
:func:`compile_json_schema` (structured output: a JSON Schema instead of a grammar file) and
:func:`grammar_logits_processor` (one per ``generate`` call; rows of a batch may each have their own grammar
or none). Errors are
:class:`~expert_cli.core.errors.GrammarError` naming the file and the line at fault.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.errors import GrammarError, require

_ERROR_AT = re.compile(r"error at line (\d+), column (\d+): (.*)", re.DOTALL)
_LOG_PREFIX = re.compile(r"^\[[\d:]+\]\s+\S+:\d+:\s+")
_CACHE_LOCK = threading.Lock()
# tokenizer -> {key: GrammarCompiler or CompiledGrammar}; entries vanish with their tokenizer.
_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple, Any]] = weakref.WeakKeyDictionary()
MAX_CACHED_GRAMMARS = 64


@dataclass(frozen=True)
class GrammarCheck:
    """The outcome of compiling a grammar without a tokenizer; ``line``/``column`` are 1-based."""

    ok: bool
    source: str | None = None
    error: str | None = None
    line: int | None = None
    column: int | None = None
    line_text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_grammar(path: str | Path) -> str:
    """The text of a grammar file, or GrammarError when it cannot be read as UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GrammarError(f"cannot read grammar `{path}`: {exc}") from exc


def check_grammar(text: str, source: str | None = None) -> GrammarCheck:
    """Parse ``text`` as GBNF/EBNF (root rule ``root``) and report the first error with its line."""
    xgr = require("xgrammar", "chat")
    try:
        xgr.Grammar.from_ebnf(text)
    except RuntimeError as exc:
        return _failed_check(str(exc), text, source)
    return GrammarCheck(ok=True, source=source)


def _failed_check(raw: str, text: str, source: str | None) -> GrammarCheck:
    message = _LOG_PREFIX.sub("", raw.strip())
    found = _ERROR_AT.search(message)
    if found is None:
        return GrammarCheck(ok=False, source=source, error=message)
    line, column = int(found.group(1)), int(found.group(2))
    lines = text.splitlines()
    line_text = lines[line - 1] if 0 < line <= len(lines) else None
    return GrammarCheck(False, source, found.group(3).strip(), line, column, line_text)


def grammar_error(check: GrammarCheck) -> GrammarError:
    """A GrammarError for a failed check: `grammar `f` does not compile: line 3, column 1: ...`."""
    where = f"`{check.source}`" if check.source else "the grammar"
    if check.line is None:
        return GrammarError(f"grammar {where} does not compile: {check.error}", hint="check the GBNF syntax")
    snippet = f" (`{check.line_text.strip()}`)" if check.line_text and check.line_text.strip() else ""
    return GrammarError(
        f"grammar {where} does not compile: line {check.line}, column {check.column}: {check.error}{snippet}",
        hint=f"fix line {check.line} of {where}, then run `expert-cli validate` on the expert",
    )


def compile_grammar(
    text: str,
    tokenizer: Any,
    *,
    source: str | None = None,
    vocab_size: int | None = None,
    stop_token_ids: int | Iterable[int] | None = None,
) -> Any:
    """Compile ``text`` for ``tokenizer`` into an ``xgrammar.CompiledGrammar`` (cached).

    ``vocab_size`` must be the MODEL's vocabulary size (rows of its embedding / lm_head, e.g.
    ``model.config.vocab_size``), which can exceed ``len(tokenizer)``; the mask then also forbids the
    padding ids. ``stop_token_ids`` are the ids that end generation (pass the model's
    ``generation_config.eos_token_id``); default: the tokenizer's EOS. The grammar allows them only where
    it is complete.
    """
    xgr = require("xgrammar", "chat")

    def parse() -> Any:
        try:
            return xgr.Grammar.from_ebnf(text)
        except RuntimeError as exc:
            raise grammar_error(_failed_check(str(exc), text, source)) from exc

    return _compiled(("grammar", _digest(text)), parse, tokenizer, vocab_size, stop_token_ids)


def json_schema_grammar(schema: Mapping[str, Any], source: str | None = None) -> Any:
    """The ``xgrammar.Grammar`` of the JSON documents that ``schema`` (a JSON Schema) accepts, written on one
    line with ``", "`` and ``": "`` separators (the way ``json.dumps`` writes); properties come in the
    schema's order and none beyond them (strict mode). GrammarError names what xgrammar could not convert."""
    xgr = require("xgrammar", "chat")
    if not isinstance(schema, Mapping):
        raise GrammarError(f"JSON schema {_where(source)}must be a JSON object, not {type(schema).__name__}",
                           hint='write a schema such as {"type": "object", "properties": {...}}')
    try:
        return xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False, strict_mode=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        reason = _LOG_PREFIX.sub("", str(exc).strip())
        raise GrammarError(f"JSON schema {_where(source)}is not supported: {reason}",
                           hint="use JSON Schema's type, properties, required, enum, items and anyOf") from exc


def read_json_schema(path: str | Path) -> dict[str, Any]:
    """A JSON Schema file, parsed and checked (:func:`json_schema_grammar`); GrammarError says what is wrong
    and where (the line and column of a JSON syntax error)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GrammarError(f"cannot read JSON schema `{path}`: {exc.strerror or exc}",
                           hint="pass the path of a JSON Schema file") from exc
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GrammarError(
            f"JSON schema `{path}` is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}",
            hint=f"fix line {exc.lineno} of `{path}`") from exc
    json_schema_grammar(schema, str(path))
    return schema


def compile_json_schema(
    schema: Mapping[str, Any],
    tokenizer: Any,
    *,
    source: str | None = None,
    vocab_size: int | None = None,
    stop_token_ids: int | Iterable[int] | None = None,
) -> Any:
    """:func:`json_schema_grammar` compiled for ``tokenizer`` (cached like :func:`compile_grammar`)."""
    key = ("grammar", _digest("json-schema:" + json.dumps(schema, sort_keys=True, default=str)))
    return _compiled(key, lambda: json_schema_grammar(schema, source), tokenizer, vocab_size, stop_token_ids)


def _compiled(key: tuple, parse: Any, tokenizer: Any, vocab_size: int | None,
              stop_token_ids: int | Iterable[int] | None) -> Any:
    stops = _stop_ids(stop_token_ids)
    key = (*key, vocab_size, stops)
    with _CACHE_LOCK:
        cache = _CACHE.setdefault(tokenizer, {})
        if key in cache:
            return cache[key]
        compiled = _compiler(cache, tokenizer, vocab_size, stops).compile_grammar(parse())
        _evict_oldest_grammar(cache)
        cache[key] = compiled
        return compiled


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _where(source: str | None) -> str:
    return f"`{source}` " if source else ""


def _evict_oldest_grammar(cache: dict[tuple, Any]) -> None:
    """Keep at most ``MAX_CACHED_GRAMMARS`` compiled grammars per tokenizer (grammars bound to a prompt's names
    differ per prompt); the oldest goes first. Compilers stay."""
    grammars = [key for key in cache if key[0] == "grammar"]
    if len(grammars) >= MAX_CACHED_GRAMMARS:
        del cache[grammars[0]]


def _stop_ids(stop_token_ids: int | Iterable[int] | None) -> tuple[int, ...] | None:
    if stop_token_ids is None:
        return None
    ids = [stop_token_ids] if isinstance(stop_token_ids, int) else list(stop_token_ids)
    return tuple(sorted({int(token_id) for token_id in ids})) or None


def _compiler(cache: dict[tuple, Any], tokenizer: Any, vocab_size: int | None, stops: tuple | None) -> Any:
    key = ("compiler", vocab_size, stops)
    if key not in cache:
        xgr = require("xgrammar", "chat")
        info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=list(stops) if stops else None
        )
        cache[key] = xgr.GrammarCompiler(info)
    return cache[key]


def compile_grammar_file(path: str | Path, tokenizer: Any, **options: Any) -> Any:
    """:func:`compile_grammar` on a file; errors name the file."""
    return compile_grammar(read_grammar(path), tokenizer, source=str(path), **options)


def grammar_logits_processor(compiled: Any, batch_size: int) -> Any:
    """A transformers ``LogitsProcessor`` enforcing grammars row by row, for ONE ``generate`` call.

    ``compiled`` is one compiled grammar (every row) or a list with one entry per row, each a compiled
    grammar or None (that row is not constrained). ``batch_size`` counts rows as ``generate`` sees them
    (prompts x ``num_return_sequences``).
    """
    grammars = list(compiled) if isinstance(compiled, (list, tuple)) else [compiled] * batch_size
    if len(grammars) != batch_size:
        raise GrammarError(f"got {len(grammars)} grammars for a batch of `{batch_size}` rows")
    return GrammarLogitsProcessor(grammars)


class GrammarLogitsProcessor:
    """Masks each constrained row's logits to the tokens its grammar allows next (xgrammar bitmasks).

    A plain callable with the ``LogitsProcessor`` signature; ``generate`` runs it before temperature, top-k
    and top-p. A row whose grammar is complete may only pick a stop token, so it ends; a row that ``generate``
    finished some other way (it appends padding, which the grammar rejects) is released from the mask.
    """

    def __init__(self, grammars: list[Any]) -> None:
        xgr = require("xgrammar", "chat")
        self._matchers = [None if grammar is None else xgr.GrammarMatcher(grammar) for grammar in grammars]
        sizes = {grammar.tokenizer_info.vocab_size for grammar in grammars if grammar is not None}
        if len(sizes) > 1:
            raise GrammarError(
                f"grammars in one batch were compiled for different vocabularies: {sorted(sizes)}"
            )
        self.vocab_size = sizes.pop() if sizes else 0
        self._bitmask = (
            xgr.allocate_token_bitmask(len(grammars), self.vocab_size) if self.vocab_size else None
        )
        self._released = [matcher is None for matcher in self._matchers]
        self._length: int | None = None
        self._batch_filler: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._bitmask is None:
            return scores
        self._accept_sampled(input_ids)
        masked, finished = [], []
        for row, matcher in enumerate(self._matchers):
            if self._released[row]:
                continue
            if matcher.is_terminated():
                finished.append(row)
            else:
                masked.append(row)
        if masked:
            self._fill_bitmask(masked)
            self._apply_bitmask(scores, masked)
        for row in finished:
            _keep_only(scores, row, self._matchers[row].stop_token_ids)
        return scores

    def _accept_sampled(self, input_ids: Any) -> None:
        rows, length = input_ids.shape
        if rows != len(self._matchers):
            raise GrammarError(f"the processor was built for `{len(self._matchers)}` rows, got `{rows}`")
        if self._length is not None:
            if length != self._length + 1:
                raise GrammarError("a grammar logits processor serves one `generate` call; build a new one")
            for row, matcher in enumerate(self._matchers):
                if not self._released[row] and not matcher.is_terminated():
                    self._released[row] = not matcher.accept_token(int(input_ids[row, -1]))
        self._length = length

    def _fill_bitmask(self, rows: list[int]) -> None:
        """Next-token masks of ``rows``; several rows are filled in parallel threads by xgrammar."""
        if len(rows) == 1:
            self._matchers[rows[0]].fill_next_token_bitmask(self._bitmask, rows[0])
            return
        if self._batch_filler is None:
            self._batch_filler = require("xgrammar", "chat").BatchGrammarMatcher()
        self._batch_filler.batch_fill_next_token_bitmask(
            [self._matchers[row] for row in rows], self._bitmask, indices=rows
        )

    def _apply_bitmask(self, scores: Any, rows: list[int]) -> None:
        xgr = require("xgrammar", "chat")
        on_device = scores.device.type in ("cpu", "cuda")
        target = scores if on_device else scores.cpu()
        width = min(target.shape[-1], self.vocab_size)
        xgr.apply_token_bitmask_inplace(
            target, self._bitmask.to(target.device), vocab_size=width, indices=rows
        )
        if target.shape[-1] > self.vocab_size:  # model rows beyond the tokenizer's vocabulary: never allowed
            target[rows, self.vocab_size :] = float("-inf")
        if not on_device:
            scores.copy_(target)


def _keep_only(scores: Any, row: int, token_ids: list[int]) -> None:
    """Set every logit of ``row`` to -inf except ``token_ids`` (a finished grammar may only stop)."""
    import torch

    ids = torch.tensor(token_ids, dtype=torch.long, device=scores.device)
    kept = scores[row, ids].clone()
    scores[row] = float("-inf")
    scores[row, ids] = kept
