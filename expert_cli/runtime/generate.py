"""From a prompt and a composition of experts to :class:`Result` objects: template, decoding, grammar, stream.

The first expert of a composition decides the prompt template, dialect, decoding defaults and grammar (the
original's rule); the others only add their adapters. The bare base (no experts) gets the tokenizer's chat
template with no system message and the base model's own sampling settings when its ``generation_config.json``
states them (Qwen3's authors ship temperature 0.6, top_p 0.95, top_k 20, as vLLM and transformers apply them),
else the built-in decoding defaults. Imported lazily (it imports torch).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expert_cli.core.errors import GrammarError
from expert_cli.manifest.model import DecodingSpec
from expert_cli.prompts.cleaning import StreamCleaner
from expert_cli.prompts.templates import build_prompt
from expert_cli.runtime.bundle import ExpertBundle
from expert_cli.runtime.decoder import BatchDecoder, RowOutput, RowRequest, stop_token_ids
from expert_cli.runtime.options import PromptOptions
from expert_cli.runtime.pool import LoadedBase
from expert_cli.runtime.results import Result
from expert_cli.runtime.sampling import resolve_decoding

if TYPE_CHECKING:
    from typing_extensions import Self


@dataclass(frozen=True)
class Member:
    """One expert in a composition: its slot on the base, its files, its weight."""

    slot: str
    bundle: ExpertBundle
    weight: float = 1.0


def base_model_path(name: str) -> Path:
    """A base model name from a manifest (``builtin:...``, a folder, a Hugging Face id) -> its local folder."""
    from expert_cli.models.resolve import resolve_base_model

    return resolve_base_model(name)


def prepare_row(base: LoadedBase, prompt: str, members: Sequence[Member], options: PromptOptions) -> RowRequest:
    """Render the prompt, resolve decoding settings and the grammar for one row."""
    lead = members[0].bundle if members else None
    text = build_prompt(base.tokenizer, prompt, lead.template if lead else None,
                        capabilities=lead.capabilities if lead else None, system=options.system,
                        schema=options.schema, history=options.history, enable_thinking=options.enable_thinking)
    ids = base.tokenizer(text, add_special_tokens=False)["input_ids"]
    params = resolve_decoding(lead.decoding if lead else base_decoding(base.path), options.overrides)
    grammar = None
    if options.json_schema is not None:
        grammar = compiled_json_schema(base, options.json_schema)
    elif lead is not None and options.grammar and lead.grammar_path is not None:
        grammar = compiled_grammar(base, lead.grammar_path, lead.decoding.names_from_prompt,
                                   given_texts(prompt, options))
    return RowRequest(ids, tuple((m.slot, m.weight) for m in members), params, grammar, options.show_reasoning)


@functools.lru_cache(maxsize=16)
def base_decoding(folder: Path) -> DecodingSpec | None:
    """The sampling settings a base model's ``generation_config.json`` states: with ``do_sample: true`` the
    temperature, top_p, top_k, min_p and repetition_penalty it gives; with ``do_sample: false``, greedy; None
    when the file says neither (a model folder without one, or a GGUF import)."""
    try:
        config = json.loads((Path(folder) / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or not isinstance(config.get("do_sample"), bool):
        return None
    if not config["do_sample"]:
        return DecodingSpec(temperature=0.0)
    numbers = {key: config.get(key) for key in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")}
    return DecodingSpec(**{key: value for key, value in numbers.items()
                           if isinstance(value, (int, float)) and not isinstance(value, bool)})


def given_texts(prompt: str, options: PromptOptions) -> list[str]:
    """What the caller wrote for this row (prompt, system message, schema, earlier turns), not the template."""
    history = [str(turn.get("content") or "") for turn in options.history or ()]
    return [prompt, options.system or "", options.schema or "", *history]


def compiled_grammar(base: LoadedBase, path: Path, names_rule: str | None = None,
                     prompt_texts: Sequence[str] = ()) -> Any:
    """The expert's grammar compiled for ``base``; with ``names_rule``, that rule bound to the identifiers of
    ``prompt_texts`` (see :mod:`expert_cli.prompts.grammar_binding`)."""
    from expert_cli.runtime.grammar import compile_grammar, read_grammar

    text = read_grammar(path)
    if names_rule:
        text = bound_grammar(text, names_rule, prompt_texts, path)
    return compile_grammar(text, base.tokenizer, source=str(path), vocab_size=base.model.config.vocab_size,
                           stop_token_ids=list(stop_token_ids(base)))


def compiled_json_schema(base: LoadedBase, schema: Mapping[str, Any]) -> Any:
    """A JSON Schema compiled for ``base``: answers are JSON documents that the schema accepts."""
    from expert_cli.runtime.grammar import compile_json_schema

    return compile_json_schema(schema, base.tokenizer, vocab_size=base.model.config.vocab_size,
                               stop_token_ids=list(stop_token_ids(base)))


def bound_grammar(text: str, rule: str, prompt_texts: Sequence[str], path: Path) -> str:
    from expert_cli.prompts.grammar_binding import bind_rule, prompt_names

    try:
        return bind_rule(text, rule, prompt_names(prompt_texts))
    except ValueError as exc:
        raise GrammarError(f"`{path}`: {exc}, which `training.decoding.names_from_prompt` names",
                           hint=f"define `{rule} ::= ...` in the grammar or remove `names_from_prompt`") from exc


def to_result(output: RowOutput, row: RowRequest, members: Sequence[Member], base: LoadedBase) -> Result:
    return Result(text=output.text, tokens=len(output.token_ids), experts=[m.bundle.label for m in members],
                  latency_s=output.seconds, finish_reason=output.finish_reason, raw_text=output.raw_text,
                  token_ids=output.token_ids, prompt_tokens=output.prompt_tokens, base_model=str(base.path),
                  grammar=row.grammar is not None)


def generate_rows(base: LoadedBase, rows: Sequence[RowRequest], members: Sequence[Sequence[Member]]) -> list[Result]:
    """Decode rows together (each with its own experts) and return one Result per row, in order."""
    outputs = BatchDecoder(base, rows).run()
    return [to_result(out, row, mem, base) for out, row, mem in zip(outputs, rows, members)]


class TextStream:
    """Pieces of cleaned text as they are generated; their concatenation is the final ``Result.text``.

    Iterate it (``for piece in stream``); when it ends, :attr:`result` holds the Result (also the
    ``StopIteration`` value, so ``result = yield from stream`` works). :meth:`close` stops early and returns
    the partial Result (``finish_reason`` ``cancelled``). Usable as a context manager.
    """

    def __init__(self, base: LoadedBase, row: RowRequest, members: Sequence[Member]) -> None:
        self._base, self._row, self._members = base, row, list(members)
        self._decoder = BatchDecoder(base, [row])
        self._steps = self._decoder.steps()
        self._cleaner = StreamCleaner(row.params.stop, show_reasoning=row.show_reasoning)
        self.result: Result | None = None

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        while self.result is None:
            try:
                next(self._steps)
            except StopIteration:
                piece = self._cleaner.finish(self._decoder.raw_text(0))
                self._complete()
                if piece:
                    return piece
                break
            piece = self._cleaner.feed(self._decoder.raw_text(0))
            if piece:
                return piece
        raise StopIteration(self.result)

    def close(self) -> Result:
        """Stop generating (if still running) and return the Result so far."""
        if self.result is None:
            self._steps.close()
            self._complete()
        return self.result

    def _complete(self) -> None:
        output = self._decoder.outputs()[0]
        self.result = to_result(output, self._row, self._members, self._base)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
