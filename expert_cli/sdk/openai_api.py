"""OpenAI's request and response shapes, checked field by field: what the server reads and writes.

Pure Python. A bad field is an :class:`APIError` naming it (``param``), with the HTTP status OpenAI uses; the
server turns it into ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from expert_cli.runtime.results import Result
from expert_cli.sdk.requests import Request

ROLES = ("system", "developer", "user", "assistant")
FINISH_REASONS = {"stop": "stop", "stop_sequence": "stop", "length": "length", "cancelled": "stop"}


class APIError(Exception):
    """An error response: HTTP ``status`` and OpenAI's error object."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad(param: str, message: str) -> APIError:
    return APIError(400, f"`{param}`: {message}", param=param, code="invalid_value")


@dataclass
class Call:
    """A parsed request: who answers (``model``, ``experts`` weights when given) and the request itself."""

    model: str
    request: Request
    stream: bool = False
    include_usage: bool = False
    experts: dict[str, float] | None = None
    chat: bool = True
    options: dict[str, Any] = field(default_factory=dict)


def parse_chat(body: Any, max_tokens_cap: int) -> Call:
    """``POST /v1/chat/completions``: messages -> system, history and the last user prompt."""
    body = _object(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("messages", "must be a non-empty list of {role, content} objects")
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise bad(where, "must be an object with `role` and `content`")
        role = message.get("role")
        if role not in ROLES:
            raise bad(f"{where}.role", f"must be one of {', '.join(ROLES)}")
        text = _content(message.get("content"), f"{where}.content")
        if role in ("system", "developer"):
            system.append(text)
        else:
            turns.append({"role": role, "content": text})
    if not turns or turns[-1]["role"] != "user":
        raise bad("messages", "the last message must come from the user")
    request = Request(turns[-1]["content"], system="\n\n".join(system) or None, history=turns[:-1],
                      overrides=_decoding(body, max_tokens_cap), fit_context=False)
    _response_format(body.get("response_format"), request)
    return _call(body, request, chat=True)


def parse_completion(body: Any, max_tokens_cap: int) -> Call:
    """``POST /v1/completions``: one prompt in, text out (the prompt is answered as one user turn)."""
    body = _object(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad("prompt", "must be a non-empty string (one prompt per request)")
    return _call(body, Request(prompt, overrides=_decoding(body, max_tokens_cap)), chat=False)


def parse_call(body: Any, *, chat: bool, max_tokens_cap: int) -> Call:
    """``/v1/chat/completions`` (``chat``) or ``/v1/completions`` as a :class:`Call`."""
    return parse_chat(body, max_tokens_cap) if chat else parse_completion(body, max_tokens_cap)


def _call(body: dict[str, Any], request: Request, *, chat: bool) -> Call:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad("model", "must name an expert, several joined with `+`, the base model id, or `auto`")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad("stream", "must be true or false")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad("stream_options", "must be an object")
    return Call(model.strip(), request, stream, bool(options.get("include_usage")), _weights(body.get("experts")),
                chat)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object", code="invalid_json")
    n = body.get("n", 1)
    if n != 1:
        raise bad("n", "only 1 is supported")
    return body


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # [{"type": "text", "text": "..."}]
        parts = []
        for index, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad(f"{where}[{index}]", "only text parts (`{\"type\": \"text\", \"text\": ...}`) are supported")
            parts.append(part["text"])
        return "".join(parts)
    raise bad(where, "must be a string or a list of text parts")


def _decoding(body: dict[str, Any], max_tokens_cap: int) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        if not _is_int(max_tokens) or not 1 <= max_tokens <= max_tokens_cap:
            raise bad(name, f"must be an integer from 1 to {max_tokens_cap}")
        overrides["max_tokens"] = max_tokens
    for name, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        value = body.get(name)
        if value is None:
            continue
        if not _is_number(value) or not low <= value <= high or (name == "top_p" and value == 0):
            raise bad(name, f"must be a number in {'(' if name == 'top_p' else '['}{low:g}, {high:g}]")
        overrides[name] = float(value)
    top_k = body.get("top_k")  # an extension, as vLLM's: sample among the k likeliest tokens (0 = off)
    if top_k is not None:
        if not _is_int(top_k) or top_k < 0:
            raise bad("top_k", "must be a non-negative integer (0 = off)")
        overrides["top_k"] = top_k
    seed = body.get("seed")
    if seed is not None:
        if not _is_int(seed) or not 0 <= seed < 2**63:
            raise bad("seed", "must be a non-negative integer")
        overrides["seed"] = seed
    ignore_eos = body.get("ignore_eos")  # vLLM's extension: run to max_tokens (benchmarks)
    if ignore_eos is not None:
        if not isinstance(ignore_eos, bool):
            raise bad("ignore_eos", "must be true or false")
        overrides["ignore_eos"] = ignore_eos
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
            raise bad("stop", "must be a string or a list of up to 4 non-empty strings")
        overrides["stop"] = stops
    return overrides


def _response_format(value: Any, request: Request) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or value.get("type") not in ("text", "json_schema", "json_object"):
        raise bad("response_format", "must be {\"type\": \"text\" | \"json_object\" | \"json_schema\", ...}")
    if value["type"] == "json_object":
        request.json_schema = {"type": "object"}
    elif value["type"] == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad("response_format.json_schema.schema", "must be a JSON Schema object")
        request.json_schema = schema


def _weights(value: Any) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise bad("experts", "must be an object of expert names and weights, e.g. {\"expert-sql\": 0.7}")
    for name, weight in value.items():
        if not _is_number(weight) or not 0 < weight <= 4:
            raise bad(f"experts.{name}", "must be a weight in (0, 4]")
    return {str(name): float(weight) for name, weight in value.items()}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# -- responses ---------------------------------------------------------------------------------------
def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(result: Result) -> dict[str, int]:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.tokens,
            "total_tokens": result.prompt_tokens + result.tokens}


def completion_body(call: Call, result: Result, ident: str, experts: dict[str, float]) -> dict[str, Any]:
    """The whole answer, as ``chat.completion`` or ``text_completion``."""
    finish = FINISH_REASONS.get(result.finish_reason, "stop")
    if call.chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": result.text}, "finish_reason": finish,
                  "logprobs": None}
    else:
        choice = {"index": 0, "text": result.text, "finish_reason": finish, "logprobs": None}
    return {"id": ident, "object": "chat.completion" if call.chat else "text_completion",
            "created": int(time.time()), "model": call.model, "choices": [choice], "usage": usage(result),
            "experts": experts}


def chunk_body(call: Call, ident: str, created: int, *, delta: str | None = None, role: bool = False,
               finish: str | None = None, result: Result | None = None, experts: dict[str, float] | None = None,
               ) -> dict[str, Any]:
    """One streamed chunk; ``result`` alone makes the usage chunk (no choices)."""
    body: dict[str, Any] = {"id": ident, "object": "chat.completion.chunk" if call.chat else "text_completion",
                            "created": created, "model": call.model}
    if result is not None and delta is None and finish is None:
        body["choices"], body["usage"] = [], usage(result)
        return body
    reason = FINISH_REASONS.get(finish, "stop") if finish else None
    if call.chat:
        content: dict[str, Any] = {"role": "assistant"} if role else {}
        if delta is not None:
            content["content"] = delta
        body["choices"] = [{"index": 0, "delta": content, "finish_reason": reason, "logprobs": None}]
    else:
        body["choices"] = [{"index": 0, "text": delta or "", "finish_reason": reason, "logprobs": None}]
    if experts is not None:
        body["experts"] = experts
    return body


def model_list(base_model: str, experts: Sequence[tuple[str, str]], created: int) -> dict[str, Any]:
    """``GET /v1/models``: the experts (``parent``: their base, as vLLM lists adapters), the base, ``auto``."""
    def entry(ident: str, parent: str | None) -> dict[str, Any]:
        return {"id": ident, "object": "model", "created": created, "owned_by": "expert-cli", "root": base_model,
                "parent": parent}

    data = [entry(name, base_model) for name, _ in experts]
    data += [entry(base_model, None), entry("auto", base_model)]
    return {"object": "list", "data": data}
