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

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from expert_cli.core.errors import CompositionError, UsageError
from expert_cli.core.specs import parse_expert_spec
from expert_cli.packages.registry import InstalledExpert
from expert_cli.routing.selection import composition_weights
from expert_cli.runtime.grammar import read_json_schema
from expert_cli.sdk import requests
from expert_cli.sdk.chat_setup import ChatSettings, ChatSetup, prepare_chat
from expert_cli.sdk.manager import ExpertManager
from expert_cli.sdk.requests import Prepared, Request

__all__ = ["ChatReply", "ChatSession", "ChatSettings", "ChatStream", "open_chat", "read_json_schema"]


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
    prepared: Prepared | None = None


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
        self.manager = ExpertManager(device=settings.device, base_model=setup.base_path)
        self._threads_set = False
        self._semantics_checked = False
        for entry in setup.experts:  # each loads on the first turn that needs it
            self.manager.load_expert(entry.name, entry.path, model_path=setup.base_path, lazy=True)

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
        turn = self._start(prompt)
        started = time.perf_counter()
        result = requests.run([turn.prepared])[0]
        turn.timing["generation_s"] = round(time.perf_counter() - started, 6)
        return self._finish(turn, result)

    def stream(self, prompt: str) -> ChatStream:
        """Answer ``prompt`` piece by piece; see :class:`ChatStream`."""
        turn = self._start(prompt)
        return ChatStream(self, turn, requests.stream(turn.prepared))

    def _start(self, prompt: str) -> _Turn:
        if not prompt.strip():
            raise UsageError("the prompt is empty", hint='pass some text, e.g. `expert-cli chat --prompt "list all users"`')
        turn = self._plan(prompt)
        if not self.settings.progress:
            from expert_cli.models.loading import disable_loading_progress

            disable_loading_progress()
        started = time.perf_counter()
        request = Request(prompt, history=self.history, grammar=self.settings.grammar,
                          json_schema=self.settings.json_schema, show_reasoning=self.settings.show_reasoning,
                          enable_thinking=self.settings.show_reasoning, overrides=self.settings.given_overrides(),
                          fit_context=True)
        try:
            turn.prepared = self.manager.prepare(turn.weights, request)
        except CompositionError as exc:
            raise CompositionError(exc.message, hint="force one of them with `/experts NAME`, or chat with "
                                                     "`--experts NAME`") from None
        if not self._threads_set:  # as serve: one thread for a small model on the CPU
            from expert_cli.models.device import apply_cpu_threads

            apply_cpu_threads(turn.prepared.base.model, turn.prepared.base.placement, "EXPERT_THREADS")
            self._threads_set = True
        turn.timing["load_s"] = round(time.perf_counter() - started, 6)
        self.history = list(turn.prepared.history)  # what did not fit is dropped for good
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
            if not self._semantics_checked:  # the base model's own view, once it is loaded anyway
                from expert_cli.sdk.routing import semantics_want_base, with_base_semantics

                self._semantics_checked = True
                if semantics_want_base():
                    self.setup.router = with_base_semantics(self.setup.router, self.manager.bare_base())
            decision = self.setup.router.route(prompt)
            order = sorted(range(len(decision.experts)), key=lambda i: -decision.weights[decision.experts[i]])
            weights = {decision.experts[i]: decision.weights[decision.experts[i]] for i in order}
        else:
            weights = {}
        route_ms = round((time.perf_counter() - started) * 1000, 4)
        return _Turn(prompt, mode, weights, decision, started, {"route_ms": route_ms})

    def _finish(self, turn: _Turn, result: Any) -> ChatReply:
        self.history += [{"role": "user", "content": turn.prompt}, {"role": "assistant", "content": result.text}]
        prepared = turn.prepared
        lead = prepared.members[0].bundle if prepared.members else None
        turn.timing["total_s"] = round(time.perf_counter() - turn.started, 6)
        reply = ChatReply(
            answer=result.text, mode=turn.mode, experts=list(turn.weights), weights=dict(turn.weights),
            versions={m.bundle.name: m.bundle.version for m in prepared.members}, decision=turn.decision,
            base_model=self.setup.base_model, tokens=result.tokens, prompt_tokens=result.prompt_tokens,
            finish_reason=result.finish_reason, decoding=prepared.row.params.to_dict(), grammar=result.grammar,
            template=lead.template if lead else None, history_dropped=prepared.history_dropped, timing=turn.timing)
        self.last = reply
        return reply

    def close(self) -> None:
        """Unload the experts and give back the base model."""
        self.manager.close()

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
