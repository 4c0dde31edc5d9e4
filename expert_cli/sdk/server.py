"""``expert-cli serve``: an OpenAI-compatible HTTP server over one base model and its experts.

Starlette (not FastAPI): the API is a handful of routes whose bodies we check field by field into OpenAI's
error shape ourselves, so pydantic models would add a dependency and a second validation layer for nothing.
Requests go through the same path as ``chat`` and the SDK (an :class:`~expert_cli.sdk.manager.ExpertManager`
and :mod:`expert_cli.sdk.requests`), fed to the continuous-batching :class:`~expert_cli.sdk.scheduler.Scheduler`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from expert_cli.core.errors import (
    CompositionError,
    ExpertError,
    NotInstalledError,
    OutOfMemoryError,
    SpecError,
    UsageError,
)
from expert_cli.sdk.openai_api import (
    APIError,
    Call,
    chunk_body,
    completion_body,
    model_list,
    new_id,
    parse_call,
)
from expert_cli.sdk.scheduler import Job, OverloadedError
from expert_cli.sdk.serving import ServeSettings, ServingState

EXPERTS_HEADER = "x-expert-cli-experts"


@dataclass
class Routes:
    """The handlers, bound to one :class:`ServingState`."""

    state: ServingState
    settings: ServeSettings

    @property
    def relay(self) -> EventRelay:
        """The one :class:`EventRelay` of these routes (made on first use; not a field, so subclasses that
        add fields need no defaults)."""
        relay = self.__dict__.get("_relay")
        if relay is None:
            relay = self.__dict__["_relay"] = EventRelay()
        return relay

    # -- guards -----------------------------------------------------------------------------------
    def check_auth(self, request: Any) -> None:
        key = self.settings.api_key
        if not key:
            return
        given = request.headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), key.encode()):
            raise APIError(401, "a valid API key is required (`Authorization: Bearer KEY`)", code="invalid_api_key")

    def check_ready(self) -> None:
        if self.state.error is not None:
            raise APIError(503, f"the server failed to load: {self.state.error}", kind="server_error",
                           code="load_failed")
        if not self.state.ready.is_set():
            raise APIError(503, "the model is still loading", kind="server_error", code="loading",
                           headers={"Retry-After": "2"})

    async def read_json(self, request: Any) -> Any:
        declared = request.headers.get("content-length")
        limit = self.settings.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise APIError(413, f"the request body is over {limit} bytes", code="body_too_large")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise APIError(413, f"the request body is over {limit} bytes", code="body_too_large")
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise APIError(400, f"the request body is not valid JSON ({exc})", code="invalid_json") from None

    async def aclose(self) -> None:
        """Release what the routes hold (the gateway's HTTP client); called once at shutdown."""

    # -- endpoints --------------------------------------------------------------------------------
    async def health(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        if self.state.error is not None:
            return JSONResponse({"status": "failed", "error": self.state.error}, status_code=503)
        if not self.state.ready.is_set():
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "2"})
        return JSONResponse({"status": "ok", "base_model": self.state.base_model,
                             "experts": sorted(self.state.served)})

    async def metrics(self, request: Any) -> Any:
        from starlette.responses import Response

        self.check_auth(request)
        body, content_type = self.state.metrics.render()
        return Response(body, media_type=content_type)

    async def models(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        self.check_auth(request)
        served = [(name, entry.version) for name, entry in sorted(self.state.served.items())]
        return JSONResponse(model_list(self.state.base_model, served, self.state.started))

    async def chat_completions(self, request: Any) -> Any:
        return await self.complete(request, chat=True)

    async def completions(self, request: Any) -> Any:
        return await self.complete(request, chat=False)

    async def load_expert(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        self.check_auth(request)
        self.check_ready()
        entry = await asyncio.to_thread(self.state.load, request.path_params["name"])
        return JSONResponse({"loaded": entry.name, "version": entry.version, "experts": sorted(self.state.served)})

    async def unload_expert(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        self.check_auth(request)
        self.check_ready()
        name = await asyncio.to_thread(self.state.unload, request.path_params["name"])
        return JSONResponse({"unloaded": name, "experts": sorted(self.state.served)})

    # -- completions ------------------------------------------------------------------------------
    async def accept(self, request: Any, *, chat: bool) -> tuple[Any, Call, dict[str, float]]:
        """What every completion starts with: auth, readiness, a bounded JSON body, OpenAI's fields checked,
        and who answers (experts and weights, lead first)."""
        self.check_auth(request)
        self.check_ready()
        body = await self.read_json(request)
        call = parse_call(body, chat=chat, max_tokens_cap=self.settings.max_tokens_cap)
        return body, call, self.state.composition_for(call)

    async def complete(self, request: Any, *, chat: bool) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        _, call, weights = await self.accept(request, chat=chat)
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        job = self.state.submit(weights, call, self.relay.sink(events))
        headers = {EXPERTS_HEADER: ",".join(f"{name}={weight:g}" for name, weight in weights.items()) or "none"}
        if call.stream:
            return StreamingResponse(self.sse(call, job, events, weights), media_type="text/event-stream",
                                     headers={**headers, "Cache-Control": "no-cache"})
        try:
            while True:
                kind, payload = await events.get()
                if kind == "error":
                    raise payload
                if kind == "done":
                    return JSONResponse(completion_body(call, payload, new_id("chatcmpl" if chat else "cmpl"),
                                                        weights), headers=headers)
        finally:
            job.cancel()  # no-op when done; frees the row when the client went away

    async def sse(self, call: Call, job: Job, events: asyncio.Queue, weights: dict[str, float],
                  ) -> AsyncIterator[bytes]:
        ident, created = new_id("chatcmpl" if call.chat else "cmpl"), int(time.time())
        try:
            if call.chat:
                yield _event(chunk_body(call, ident, created, delta="", role=True, experts=weights))
            while True:
                kind, payload = await events.get()
                if kind == "delta":
                    text, following = _pending_text(events, payload)
                    yield _event(chunk_body(call, ident, created, delta=text))
                    if following is None:
                        continue
                    kind, payload = following
                if kind == "error":
                    yield _event(error_body(payload).body()) + DONE
                    return
                last = _event(chunk_body(call, ident, created, finish=payload.finish_reason, experts=weights))
                if call.include_usage:
                    last += _event(chunk_body(call, ident, created, result=payload))
                yield last + DONE  # one write for the end of the stream
                return
        finally:
            job.cancel()


class EventRelay:
    """Events from the scheduler's thread to the requests' queues on the event loop, coalesced: the first event
    of a burst schedules one drain on the loop, the others of the same step ride along (a step of 16 streams
    wakes the loop once, not 16 times)."""

    def __init__(self) -> None:
        self._pending: list[tuple[asyncio.Queue, tuple[str, Any]]] = []
        self._lock = threading.Lock()
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def sink(self, queue: asyncio.Queue) -> Any:
        """The ``on_event`` callback for one request whose events go to ``queue``."""
        self._loop = asyncio.get_running_loop()
        return lambda kind, payload: self._put(queue, (kind, payload))

    def _put(self, queue: asyncio.Queue, event: tuple[str, Any]) -> None:
        with self._lock:
            self._pending.append((queue, event))
            if self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            pending, self._pending, self._scheduled = self._pending, [], False
        for queue, event in pending:
            queue.put_nowait(event)


DONE = b"data: [DONE]\n\n"


def _pending_text(events: asyncio.Queue, text: str) -> tuple[str, tuple[str, Any] | None]:
    """``text`` joined with the deltas already waiting behind it, and the first other event met (or None): a
    stream that fell behind the model sends one chunk for what piled up, not one per token."""
    pieces = [text]
    while not events.empty():
        kind, payload = events.get_nowait()
        if kind != "delta":
            return "".join(pieces), (kind, payload)
        pieces.append(payload)
    return "".join(pieces), None


def _event(document: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(document).encode() + b"\n\n"  # ASCII: no U+2028 or NEL can split a line


def error_body(exc: BaseException) -> APIError:
    """Any error of a request as an :class:`APIError` with OpenAI's status for it."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, OverloadedError):
        return APIError(503, exc.message, kind="server_error", code="overloaded", headers={"Retry-After": "1"})
    if isinstance(exc, OutOfMemoryError):
        return APIError(503, exc.message, kind="server_error", code="out_of_memory", headers={"Retry-After": "5"})
    if isinstance(exc, (NotInstalledError, SpecError)):
        return APIError(404, exc.message, code="model_not_found")
    if isinstance(exc, UsageError) and "context" in exc.message:
        return APIError(400, exc.message, param="messages", code="context_length_exceeded")
    if isinstance(exc, (UsageError, CompositionError)):
        return APIError(400, exc.message, code="invalid_value")
    if isinstance(exc, ExpertError):
        return APIError(400, exc.message, code="invalid_request")
    return APIError(500, "the server failed to answer this request", kind="server_error", code="internal_error")


def build_app(settings: ServeSettings, state: ServingState | None = None, routes: Routes | None = None) -> Any:
    """The Starlette application; the base and experts load in the background (``/health`` says when).
    ``routes``: other handlers over their own state (the gateway's)."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.requests import Request as HTTPRequest
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if routes is None:
        routes = Routes(state or ServingState(settings), settings)
    state = routes.state

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        loader = threading.Thread(target=state.start, name="expert-cli-loader", daemon=True)
        loader.start()
        yield
        await asyncio.to_thread(state.close, settings.drain_seconds)
        await routes.aclose()

    async def on_error(request: HTTPRequest, exc: Exception) -> Any:
        error = error_body(exc)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    app = Starlette(routes=[
        Route("/health", routes.health),
        Route("/metrics", routes.metrics),
        Route("/v1/models", routes.models),
        Route("/v1/chat/completions", routes.chat_completions, methods=["POST"]),
        Route("/v1/completions", routes.completions, methods=["POST"]),
        Route("/v1/experts/{name}/load", routes.load_expert, methods=["POST"]),
        Route("/v1/experts/{name}/unload", routes.unload_expert, methods=["POST"]),
    ], lifespan=lifespan, exception_handlers={APIError: on_error, ExpertError: on_error, Exception: on_error, 404: not_found,
                                                     405: not_allowed})
    app.state.serving = state
    return app


async def not_found(request: Any, exc: Any) -> Any:
    from starlette.responses import JSONResponse

    error = APIError(404, f"no route `{request.url.path}`", code="not_found")
    return JSONResponse(error.body(), status_code=404)


async def not_allowed(request: Any, exc: Any) -> Any:
    from starlette.responses import JSONResponse

    error = APIError(405, f"`{request.method}` is not allowed on `{request.url.path}`", code="method_not_allowed")
    return JSONResponse(error.body(), status_code=405)


def serve(settings: ServeSettings, on_listening: Any = None, make_app: Any = None) -> None:
    """Run the server until SIGINT/SIGTERM: stop taking requests, finish the running ones (bounded), exit.

    ``on_listening(url)`` is called once the socket is bound (``port`` 0 picks a free port); ``make_app()``
    builds another application (the gateway's) in place of the local server's."""
    import socket

    import uvicorn

    settings.check()
    # bad expert names, mixed bases: errors before the socket opens
    if make_app is not None:
        app = make_app()
    else:
        state = ServingState(settings)
        for warning in state.warnings:  # experts left out: the server's log is stderr
            logging.getLogger("expert_cli.serve").warning("warning: %s", warning)
        app = build_app(settings, state)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on `{settings.host}:{settings.port}` ({exc.strerror})",
                         hint="pick another `--port`, or `--port 0` for any free one") from None
    sock.listen(2048)  # connections queue from now on, so the URL printed below is reachable at once
    port = sock.getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=int(settings.drain_seconds) + 1, lifespan="on")
    server = uvicorn.Server(config)
    if on_listening is not None:
        on_listening(f"http://{host}:{port}")
    server.run(sockets=[sock])
