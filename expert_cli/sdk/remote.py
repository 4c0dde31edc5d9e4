"""A chat answered by a running ``expert-cli serve`` (``chat --server URL``): the same session interface as
:class:`~expert_cli.sdk.conversation.ChatSession`, over HTTP, so a script pays the model load once.

Standard library only (``urllib``): the server speaks OpenAI's API, and the answers stream as server-sent
events. Who answers is the request's ``model``: ``auto`` (the server's router), the experts joined with ``+``
(``--no-route``, or forced with ``/experts``), or the base model id. When the conversation no longer fits
the model's context, the oldest exchanges are dropped and the turn is sent again, as the local chat does.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from expert_cli.core.errors import ExpertError, InferenceError, UsageError
from expert_cli.core.specs import canonical_name, parse_expert_spec
from expert_cli.sdk.conversation import ChatReply

TIMEOUT_S = 600


@dataclass(frozen=True)
class RemoteExpert:
    """An expert the server serves (what the REPL lists)."""

    name: str

    @property
    def spec(self) -> str:
        return self.name


@dataclass
class RemoteSetup:
    base_model: str
    warnings: tuple[str, ...] = ()


class ServerError(InferenceError):
    """The server answered with an error (its OpenAI error object), or could not be reached."""

    def __init__(self, message: str, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


class RemoteChat:
    """A conversation with a server; see the module docstring."""

    def __init__(self, url: str, experts: Sequence[str] | None = None, *, route: bool = True,
                 api_key: str | None = None, overrides: dict[str, Any] | None = None,
                 json_schema: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/").removesuffix("/v1")
        self.api_key = api_key
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self.json_schema = json_schema
        served, base = self._models()
        self.setup = RemoteSetup(base)
        chosen = served if experts is None else [self._served(text, served) for text in experts]
        self.experts = [RemoteExpert(name) for name in chosen]
        self.route = route
        self.history: list[dict[str, str]] = []
        self.forced: list[str] | None = None
        self.last: ChatReply | None = None

    # -- who answers (as ChatSession) ---------------------------------------------------------------
    @property
    def mode(self) -> str:
        if not self.experts:
            return "base"
        if self.forced is not None:
            return "forced"
        return "routed" if self.route else "all"

    def force_experts(self, specs: Sequence[str] | None) -> list[str]:
        if specs is None:
            self.forced = None
            return []
        names = [self._served(text, [e.name for e in self.experts]) for text in specs]
        self.forced = list(dict.fromkeys(names))
        return self.forced

    def reset(self) -> None:
        self.history = []

    def close(self) -> None:
        """Nothing to free: the server keeps the model."""

    def __enter__(self) -> RemoteChat:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _model(self) -> str:
        names = self.forced if self.forced is not None else [e.name for e in self.experts]
        if self.mode == "routed":
            return "auto"
        return "+".join(names) if names else self.setup.base_model

    # -- turns --------------------------------------------------------------------------------------
    def ask(self, prompt: str) -> ChatReply:
        stream = self.stream(prompt)
        for _ in stream:
            pass
        return stream.close()

    def stream(self, prompt: str) -> RemoteStream:
        if not prompt.strip():
            raise UsageError("the prompt is empty", hint='pass some text, e.g. `expert-cli chat --prompt "hi"`')
        return RemoteStream(self, prompt)

    def _open(self, prompt: str) -> tuple[Any, int]:
        """The streaming response for ``prompt``, dropping the oldest exchanges while it does not fit."""
        dropped = 0
        while True:
            body = {"model": self._model(), "stream": True, "stream_options": {"include_usage": True},
                    "messages": [*self.history, {"role": "user", "content": prompt}], **self.overrides}
            if self.json_schema is not None:
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"name": "answer", "schema": self.json_schema}}
            try:
                return self._request("/v1/chat/completions", body), dropped
            except ServerError as exc:
                if exc.code != "context_length_exceeded" or not self.history:
                    raise
                self.history, dropped = self.history[2:], dropped + 1

    # -- HTTP ---------------------------------------------------------------------------------------
    def _models(self) -> tuple[list[str], str]:
        with self._request("/v1/models") as response:
            data = json.load(response)["data"]
        base = next((m["id"] for m in data if m.get("parent") is None), "")
        return [m["id"] for m in data if m.get("parent") and m["id"] != "auto"], base

    def _served(self, text: str, served: Sequence[str]) -> str:
        spec = parse_expert_spec(text)
        for name in (spec.name, canonical_name(spec.name)):
            if name in served:
                return name
        listed = ", ".join(f"`{name}`" for name in served) or "none"
        raise UsageError(f"`{text}` is not served by `{self.url}` (experts: {listed})",
                         hint="load it on the server: `POST /v1/experts/NAME/load`, or restart it with it")

    def _request(self, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            raise _server_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerError(f"cannot reach the server at `{self.url}` ({reason})",
                              hint="start it with `expert-cli serve`, or check `--server` / `EXPERT_SERVER`") from None


def _server_error(exc: Any) -> ServerError:
    try:
        error = json.loads(exc.read() or b"{}").get("error") or {}
    except ValueError:
        error = {}
    message = error.get("message") or f"HTTP {exc.code}"
    hint = "pass the server's key with `EXPERT_API_KEY`" if exc.code == 401 else None
    return ServerError(f"the server refused the request: {message}", hint=hint, code=error.get("code"))


class RemoteStream:
    """Pieces of the answer as the server sends them; :meth:`close` ends early and returns the reply."""

    def __init__(self, chat: RemoteChat, prompt: str) -> None:
        self._chat, self._prompt = chat, prompt
        self._started = time.perf_counter()
        self._response, self._dropped = chat._open(prompt)
        self._parts: list[str] = []
        self._experts: dict[str, float] = {}
        self._finish = "cancelled"
        self._usage: dict[str, int] = {}
        self.reply: ChatReply | None = None

    def __iter__(self) -> Iterator[str]:
        for event in _events(self._response):
            if "error" in event:
                raise ServerError(f"the server failed mid-answer: {event['error'].get('message')}")
            self._experts = event.get("experts", self._experts)
            self._usage = event.get("usage") or self._usage
            for choice in event.get("choices", []):
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    self._parts.append(piece)
                    yield piece
                if choice.get("finish_reason"):
                    self._finish = choice["finish_reason"]
        self.close()

    def close(self) -> ChatReply:
        if self.reply is not None:
            return self.reply
        self._response.close()
        chat, answer = self._chat, "".join(self._parts)
        chat.history = [*chat.history, {"role": "user", "content": self._prompt},
                        {"role": "assistant", "content": answer}]
        total = round(time.perf_counter() - self._started, 6)
        self.reply = ChatReply(
            answer=answer, mode=chat.mode, experts=list(self._experts), weights=dict(self._experts), versions={},
            decision=None, base_model=chat.setup.base_model, tokens=self._usage.get("completion_tokens", 0),
            prompt_tokens=self._usage.get("prompt_tokens", 0), finish_reason=self._finish, decoding={},
            grammar=chat.json_schema is not None, template=None, history_dropped=self._dropped,
            timing={"total_s": total, "generation_s": total})
        chat.last = self.reply
        return self.reply


def _events(response: Any) -> Iterator[dict[str, Any]]:
    """The JSON documents of a server-sent event stream, until ``[DONE]``."""
    for raw in response:
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except ValueError:
            raise ExpertError(f"the server sent an event that is not JSON: `{data[:80]}`") from None
