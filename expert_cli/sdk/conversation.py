"""A chat with installed experts on one shared base model: routing per turn, composition, bounded history.

    from expert_cli.sdk.conversation import ChatSettings, open_chat
    with open_chat(ChatSettings(experts=["sql", "neo4j"])) as chat:
        reply = chat.ask("Users older than 30")          # or: stream = chat.stream(...); for piece in stream
        print(reply.answer, reply.experts, reply.weights)

Who answers a turn (``ChatReply.mode``):

- ``routed``: the router picks zero, one or several of the session's experts (none: the base model answers),
  composed with the router's weights;
- ``all`` (``ChatSettings.route=False``): every expert of the session, equal weights summing to 1;
- ``forced`` (:meth:`ChatSession.force_experts`): the experts named, equal weights (none named: the base);
- ``base``: a session without experts (a bare ``base_model``).

Whose settings win when several experts are composed:

1. Settings given for the call (``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``grammar=False``,
   ``show_reasoning``) override everything.
2. Otherwise the LEAD expert alone decides the prompt template, the system/dialect line, the decoding
   parameters (``training.decoding``) and the grammar. The lead is the expert with the highest weight (ties:
   the router's order, i.e. score, then priority, then name); with equal weights (``all``, ``forced``), the
   first one named.
3. The other experts add only their adapters, scaled by their weights.
4. The bare base model: its tokenizer's chat template, the built-in decoding defaults, no grammar.

History: earlier turns (user and assistant messages) go with each prompt. When the prompt would not fit the
model's context window (``max_position_embeddings``) with room for ``max_tokens`` new tokens, the oldest
exchanges are dropped (for good); when even the prompt alone leaves less room, ``max_tokens`` shrinks to fit,
and a prompt longer than the window is an error. Importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from expert_cli.sdk.chat_setup import ChatSettings, ChatSetup, prepare_chat
from expert_cli.core.errors import InferenceError, UsageError
from expert_cli.packages.registry import InstalledExpert
from expert_cli.core.specs import parse_expert_spec
from expert_cli.routing.selection import composition_weights

__all__ = ["ChatReply", "ChatSession", "ChatSettings", "ChatStream", "open_chat"]


@dataclass
class ChatReply:
    """One answered turn. ``experts``/``weights`` are the composition (lead first; empty: the base model)."""

    answer: str
    mode: str
    experts: list[str]
    weights: dict[str, float]
    versions: dict[str, str]
    decision: Any  # the RouteDecision when routed, else None
    base_model: str
    tokens: int
    prompt_tokens: int
    finish_reason: str
    decoding: dict[str, Any]
    grammar: bool
    template: str | None
    history_dropped: int
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        return self.timing.get("total_s", 0.0)

    def to_dict(self) -> dict[str, Any]:
        generation = self.timing.get("generation_s", 0.0)
        return {
            "answer": self.answer, "mode": self.mode, "experts": list(self.experts), "weights": dict(self.weights),
            "versions": dict(self.versions), "route": self.decision.to_dict() if self.decision else None,
            "base_model": self.base_model, "tokens": self.tokens, "prompt_tokens": self.prompt_tokens,
            "latency_s": self.latency_s, "tokens_per_second": round(self.tokens / generation, 3) if generation else 0.0,
            "finish_reason": self.finish_reason, "template": self.template, "grammar": self.grammar,
            "decoding": dict(self.decoding), "history_dropped": self.history_dropped, "timing": dict(self.timing),
        }


@dataclass
class _Turn:
    prompt: str
    mode: str
    weights: dict[str, float]
    decision: Any
    started: float
    timing: dict[str, float]
    base: Any = None
    row: Any = None
    members: list[Any] = field(default_factory=list)
    dropped: int = 0


def open_chat(settings: ChatSettings) -> ChatSession:
    """Check ``settings`` and return a session; models load on the first turn that needs them."""
    return ChatSession(prepare_chat(settings), settings)


class ChatSession:
    """A conversation; see the module docstring for who answers and whose settings win."""

    def __init__(self, setup: ChatSetup, settings: ChatSettings) -> None:
        self.setup = setup
        self.settings = settings
        self.history: list[dict[str, str]] = []
        self.forced: list[str] | None = None
        self.last: ChatReply | None = None
        self._entries = {entry.name: entry for entry in setup.experts}
        self._loaded: dict[str, Any] = {}
        self._bare: Any = None

    # -- who answers -----------------------------------------------------------------------------
    @property
    def experts(self) -> list[InstalledExpert]:
        return list(self.setup.experts)

    @property
    def mode(self) -> str:
        if not self.setup.experts:
            return "base"
        if self.forced is not None:
            return "forced"
        return "routed" if self.setup.router is not None else "all"

    def force_experts(self, specs: Sequence[str] | None) -> list[str]:
        """Answer every later turn with these experts (``[]``: the base model; None: back to routing)."""
        if specs is None:
            self.forced = None
            return []
        names = []
        for text in specs:
            spec = parse_expert_spec(text)
            entry = self._entries.get(spec.name)
            if entry is None or (spec.version and spec.version != entry.version):
                known = ", ".join(f"`{e.spec}`" for e in self.setup.experts) or "none"
                raise UsageError(f"`{text}` is not an expert of this chat (experts: {known})",
                                 hint="start the chat with it: `expert-cli chat --experts ...`")
            if entry.name not in names:
                names.append(entry.name)
        self.forced = names
        return names

    def reset(self) -> None:
        """Forget the conversation so far (the forced experts stay)."""
        self.history = []

    # -- turns -------------------------------------------------------------------------------------
    def ask(self, prompt: str) -> ChatReply:
        """Answer ``prompt`` in one go."""
        from expert_cli.runtime.generate import generate_rows

        turn = self._start(prompt)
        started = time.perf_counter()
        result = generate_rows(turn.base, [turn.row], [turn.members])[0]
        turn.timing["generation_s"] = round(time.perf_counter() - started, 6)
        return self._finish(turn, result)

    def stream(self, prompt: str) -> ChatStream:
        """Answer ``prompt`` piece by piece; see :class:`ChatStream`."""
        from expert_cli.runtime.generate import TextStream

        turn = self._start(prompt)
        return ChatStream(self, turn, TextStream(turn.base, turn.row, turn.members))

    def _start(self, prompt: str) -> _Turn:
        if not prompt.strip():
            raise UsageError("the prompt is empty", hint='pass some text, e.g. `expert-cli chat --prompt "list all users"`')
        turn = self._plan(prompt)
        started = time.perf_counter()
        turn.base, turn.members = self._composition(turn.weights)
        turn.timing["load_s"] = round(time.perf_counter() - started, 6)
        turn.row, turn.dropped = self._fit(turn)
        return turn

    def _plan(self, prompt: str) -> _Turn:
        started = time.perf_counter()
        mode, decision = self.mode, None
        if mode == "forced":
            weights = composition_weights(self.forced, [1.0] * len(self.forced))
        elif mode == "all":
            names = [entry.name for entry in self.setup.experts]
            weights = composition_weights(names, [1.0] * len(names))
        elif mode == "routed":
            decision = self.setup.router.route(prompt)
            order = sorted(range(len(decision.experts)), key=lambda i: -decision.weights[decision.experts[i]])
            weights = {decision.experts[i]: decision.weights[decision.experts[i]] for i in order}
        else:
            weights = {}
        route_ms = round((time.perf_counter() - started) * 1000, 4)
        return _Turn(prompt, mode, weights, decision, started, {"route_ms": route_ms})

    def _finish(self, turn: _Turn, result: Any) -> ChatReply:
        self.history += [{"role": "user", "content": turn.prompt}, {"role": "assistant", "content": result.text}]
        lead = turn.members[0].bundle if turn.members else None
        turn.timing["total_s"] = round(time.perf_counter() - turn.started, 6)
        reply = ChatReply(
            answer=result.text, mode=turn.mode, experts=list(turn.weights), weights=dict(turn.weights),
            versions={m.bundle.name: m.bundle.version for m in turn.members}, decision=turn.decision,
            base_model=self.setup.base_model, tokens=result.tokens, prompt_tokens=result.prompt_tokens,
            finish_reason=result.finish_reason, decoding=turn.row.params.to_dict(), grammar=result.grammar,
            template=lead.template if lead else None, history_dropped=turn.dropped, timing=turn.timing)
        self.last = reply
        return reply

    # -- models ------------------------------------------------------------------------------------
    def _composition(self, weights: dict[str, float]) -> tuple[Any, list[Any]]:
        """The loaded base and the members (lead first) for ``weights``; loads what is missing."""
        from expert_cli.runtime.generate import Member

        if not self.settings.progress:
            from expert_cli.models.loading import disable_loading_progress

            disable_loading_progress()
        if not weights:
            return self._bare_base(), []
        experts = [self._expert(name) for name in weights]
        base = experts[0].base
        if any(expert.base is not base for expert in experts):
            raise InferenceError(f"experts {', '.join(f'`{n}`' for n in weights)} load onto different copies of "
                                 "the base model (different RoPE scaling) and cannot be composed",
                                 hint="force one of them with `/experts NAME`, or chat with `--experts NAME`")
        return base, [Member(e.slot, e.bundle, w) for e, w in zip(experts, weights.values())]

    def _expert(self, name: str) -> Any:
        if name not in self._loaded:
            from expert_cli.sdk.expert import Expert

            entry = self._entries[name]
            self._loaded[name] = Expert.load(entry.path, self.settings.device, model_path=self.setup.base_path)
        return self._loaded[name]

    def _bare_base(self) -> Any:
        if self._bare is None:
            from expert_cli.runtime.pool import default_pool

            self._bare = default_pool().acquire(self.setup.base_path, self.settings.device)
        return self._bare

    def _fit(self, turn: _Turn) -> tuple[Any, int]:
        """The prompt row with as much history as fits the context window (see the module docstring)."""
        from expert_cli.runtime.generate import PromptOptions, prepare_row

        options = PromptOptions(overrides=self.settings.given_overrides(), grammar=self.settings.grammar,
                                json_schema=self.settings.json_schema, show_reasoning=self.settings.show_reasoning,
                                enable_thinking=self.settings.show_reasoning)
        window = context_window(turn.base)
        history, dropped = list(self.history), 0
        while True:
            row = prepare_row(turn.base, turn.prompt, turn.members, dataclasses.replace(options, history=history))
            room = window - len(row.prompt_ids) - _prefix_length(turn.base, row) if window else None
            if room is None or room >= row.params.max_tokens or not history:
                break
            history, dropped = history[2:], dropped + 2
        self.history = history
        if room is not None and room < 1:
            raise UsageError(f"the prompt is {window - room} tokens, more than the model's context of {window}",
                             hint="shorten the prompt")
        if room is not None and room < row.params.max_tokens:
            row.params = dataclasses.replace(row.params, max_tokens=room)
        return row, dropped // 2

    def close(self) -> None:
        """Unload the experts and give back the base model."""
        for expert in self._loaded.values():
            expert.unload()
        self._loaded = {}
        if self._bare is not None:
            from expert_cli.runtime.pool import default_pool

            default_pool().drop(self._bare)
            self._bare = None

    def __enter__(self) -> ChatSession:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChatStream:
    """Pieces of the cleaned answer as they are generated (their concatenation is ``reply.answer``).

    ``reply`` is set when the stream ends; :meth:`close` stops early and keeps the partial answer (its
    ``finish_reason`` is ``cancelled``). Either way the turn joins the history.
    """

    def __init__(self, session: ChatSession, turn: _Turn, stream: Any) -> None:
        self._session, self._turn, self._stream = session, turn, stream
        self._generation_started = time.perf_counter()
        self.reply: ChatReply | None = None

    def __iter__(self) -> Iterator[str]:
        yield from self._stream
        self._complete()

    def close(self) -> ChatReply:
        if self.reply is None:
            self._stream.close()
            self._complete()
        return self.reply

    def _complete(self) -> None:
        if self.reply is None:
            self._turn.timing["generation_s"] = round(time.perf_counter() - self._generation_started, 6)
            self.reply = self._session._finish(self._turn, self._stream.result)


def context_window(base: Any) -> int | None:
    """The model's context length in tokens, or None when its config does not say."""
    config = base.model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text_config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def _prefix_length(base: Any, row: Any) -> int:
    prefix = base.prompt_prefix(row.composition)
    return 0 if prefix is None else int(prefix.shape[0])
