"""``expert-cli serve --upstream URL``: our router and OpenAI API in front of another OpenAI-compatible server
that serves experts by name (another ``expert-cli serve``, or vLLM started with ``--lora-modules``).

No model is loaded here. Each request is checked and routed as the local server does it
(:meth:`~expert_cli.sdk.serving.ServingState.composition_for` over the installed experts' manifests), forwarded
with ``model=<expert>``, and its answer (whole or streamed) relayed back with the experts that answered, in the
body and the ``x-expert-cli-experts`` header. Upstream errors keep their status and OpenAI's shape; an upstream
that cannot be reached is a 502 (a 504 when it does not answer in time).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from expert_cli.core.errors import UsageError
from expert_cli.sdk.openai_api import APIError, Call
from expert_cli.sdk.server import DONE, EXPERTS_HEADER, Routes, build_app
from expert_cli.sdk.serving import ServeSettings, ServingState

MODELS_TTL_S = 30.0


@dataclass
class GatewaySettings:
    """Where the upstream is: ``url`` as the openai client's ``base_url`` (``http://host:8000/v1``)."""

    url: str
    api_key: str | None = None
    timeout_s: float = 600.0

    def check(self) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"`--upstream` must be an http(s) URL such as `http://host:8000/v1`, not `{self.url}`",
                             hint="pass the URL the openai client would use as its `base_url`")
        self.url = self.url.rstrip("/")


@dataclass
class UpstreamModels:
    """What the upstream serves, from its ``/v1/models``: ids, its base model, whether it composes experts."""

    ids: set[str]
    base: str | None
    composes: bool
    fetched: float = field(default_factory=time.monotonic)

    @classmethod
    def from_body(cls, body: Any) -> UpstreamModels:
        data = [entry for entry in (body or {}).get("data", []) if isinstance(entry, dict) and "id" in entry]
        ids = {str(entry["id"]) for entry in data}
        base = next((str(entry["id"]) for entry in data if entry.get("parent") is None and entry["id"] != "auto"),
                    None)
        ours = any(entry.get("owned_by") == "expert-cli" for entry in data)
        return cls(ids, base, composes=ours and "auto" in ids)


class GatewayState(ServingState):
    """The served experts and their router, as the local server has them; no base model, no scheduler."""

    def start(self) -> None:
        try:
            self._reroute()
        except Exception as exc:  # noqa: BLE001 - reported by /health and every request, never a crash
            self.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            return
        self.ready.set()

    def close(self, drain_seconds: float) -> None:
        return None


def forward_body(body: dict[str, Any], call: Call, weights: dict[str, float], upstream: UpstreamModels, url: str,
                 ) -> tuple[dict[str, Any], dict[str, float]]:
    """The body to send upstream (``model=<expert>``) and the experts that will answer it."""
    forward = {key: value for key, value in body.items() if key != "experts"}
    if not weights:
        forward["model"] = upstream.base or call.model
        return forward, {}
    missing = [name for name in weights if name not in upstream.ids]
    if missing:
        raise APIError(404, f"the upstream `{url}` does not serve `{missing[0]}` (it serves: "
                            f"{', '.join(sorted(upstream.ids)) or 'nothing'})", param="model", code="model_not_found")
    lead = next(iter(weights))
    forward["model"] = lead
    if len(weights) == 1:
        return forward, {lead: 1.0}
    if upstream.composes:
        forward["experts"] = weights
        return forward, weights
    if call.model == "auto" and call.experts is None:  # the router's pick, narrowed to what the upstream can do
        return forward, {lead: 1.0}
    raise APIError(400, f"the upstream `{url}` answers with one expert per request, so `{call.model}` cannot be "
                        "composed there", param="model", code="composition_unsupported")


def upstream_error(status: int, content: bytes, url: str) -> APIError:
    """An upstream error response in OpenAI's shape, with its status (vLLM's flat form is lifted into it)."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = body if isinstance(body, dict) and "message" in body else None
    if error is None:
        text = content.decode("utf-8", "replace").strip()[:200] or "no body"
        return APIError(status, f"the upstream `{url}` answered {status}: {text}", kind="upstream_error",
                        code="upstream_error")
    return APIError(status, str(error.get("message", "")), param=error.get("param"), code=error.get("code"),
                    kind=str(error.get("type") or "upstream_error"))


def unreachable(exc: Exception, url: str) -> APIError:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return APIError(504, f"the upstream `{url}` did not answer in time", kind="server_error",
                        code="upstream_timeout")
    reason = str(exc) or type(exc).__name__
    return APIError(502, f"the upstream `{url}` cannot be reached ({reason})", kind="server_error",
                    code="upstream_unreachable")


@dataclass
class GatewayRoutes(Routes):
    """:class:`~expert_cli.sdk.server.Routes` whose completions are answered by the upstream."""

    gateway: GatewaySettings | None = None
    client: Any = None
    upstream: UpstreamModels | None = None

    def http(self) -> Any:
        import httpx

        if self.client is None:  # made in the event loop that uses it
            assert self.gateway is not None
            headers = {"Authorization": f"Bearer {self.gateway.api_key}"} if self.gateway.api_key else {}
            self.client = httpx.AsyncClient(base_url=self.gateway.url, headers=headers,
                                            timeout=httpx.Timeout(self.gateway.timeout_s, connect=10.0),
                                            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        return self.client

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def models_upstream(self) -> UpstreamModels:
        import httpx

        cached = self.upstream
        if cached is not None and time.monotonic() - cached.fetched < MODELS_TTL_S:
            return cached
        try:
            response = await self.http().get("/models")
        except httpx.HTTPError as exc:
            raise unreachable(exc, self.gateway.url) from None
        if response.status_code != 200:
            raise upstream_error(response.status_code, response.content, self.gateway.url)
        self.upstream = UpstreamModels.from_body(response.json())
        return self.upstream

    async def load_expert(self, request: Any) -> Any:
        raise APIError(400, "a gateway loads no experts: load them on the upstream server", code="unsupported")

    unload_expert = load_expert

    async def complete(self, request: Any, *, chat: bool) -> Any:
        import httpx
        from starlette.responses import JSONResponse, StreamingResponse

        body, call, composition = await self.accept(request, chat=chat)
        url = self.gateway.url
        forward, weights = forward_body(body, call, composition, await self.models_upstream(), url)
        headers = {EXPERTS_HEADER: ",".join(f"{name}={weight:g}" for name, weight in weights.items()) or "none"}
        client = self.http()
        outgoing = client.build_request("POST", "/chat/completions" if chat else "/completions", json=forward)
        try:
            response = await client.send(outgoing, stream=call.stream)
        except httpx.HTTPError as exc:
            self.state.metrics.record(weights, "error")
            raise unreachable(exc, url) from None
        if response.status_code != 200:
            content = await response.aread()
            await response.aclose()
            self.state.metrics.record(weights, "error")
            error = upstream_error(response.status_code, content, url)
            if "retry-after" in response.headers:
                error.headers["Retry-After"] = response.headers["retry-after"]
            raise error
        if call.stream:
            return StreamingResponse(self.relay(call, response, weights), media_type="text/event-stream",
                                     headers={**headers, "Cache-Control": "no-cache"})
        document = response.json()
        document["model"], document["experts"] = call.model, weights
        self.state.metrics.record(weights, "ok")
        return JSONResponse(document, headers=headers)

    async def relay(self, call: Call, response: Any, weights: dict[str, float]) -> AsyncIterator[bytes]:
        """The upstream's SSE events, each re-labelled with the asked model and (first and last) the experts."""
        import httpx

        outcome = "ok"
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                yield b"data: " + json.dumps(relabel(json.loads(data), call, weights)).encode() + b"\n\n"
        except (httpx.HTTPError, ValueError) as exc:
            outcome = "error"
            error = unreachable(exc, self.gateway.url) if isinstance(exc, httpx.HTTPError) else APIError(
                502, f"the upstream `{self.gateway.url}` sent an event that is not JSON", kind="server_error",
                code="upstream_error")
            yield b"data: " + json.dumps(error.body()).encode() + b"\n\n"
        finally:
            await response.aclose()
            self.state.metrics.record(weights, outcome)
        yield DONE


def relabel(chunk: Any, call: Call, weights: dict[str, float]) -> Any:
    if not isinstance(chunk, dict) or "error" in chunk:
        return chunk
    chunk["model"] = call.model
    choices = chunk.get("choices") or []
    first = bool(choices) and isinstance(choices[0], dict) and (
        "role" in (choices[0].get("delta") or {}) or choices[0].get("finish_reason") is not None)
    if first:
        chunk["experts"] = weights
    else:
        chunk.pop("experts", None)
    return chunk


def build_gateway_app(settings: ServeSettings, gateway: GatewaySettings) -> Any:
    """The Starlette application of the gateway (the same routes as the local server)."""
    state = GatewayState(settings)
    return build_app(settings, routes=GatewayRoutes(state, settings, gateway))


def serve_gateway(settings: ServeSettings, gateway: GatewaySettings, on_listening: Any = None) -> None:
    """Run the gateway until SIGINT/SIGTERM (as :func:`~expert_cli.sdk.server.serve` runs the local server)."""
    from expert_cli.sdk.server import serve

    gateway.check()
    serve(settings, on_listening, make_app=lambda: build_gateway_app(settings, gateway))
