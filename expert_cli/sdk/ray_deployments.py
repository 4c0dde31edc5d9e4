"""The Ray Serve deployments behind ``expert-cli serve --ray`` (imported only by :mod:`expert_cli.sdk.ray_serving`,
which needs ``ray[serve]``): an ingress with our routes and router, and N model replicas, each a
:class:`~expert_cli.sdk.serving.ServingState` whose compositions arrive through Ray Serve's model multiplexing,
so a request for expert X goes to a replica that already served X when one exists."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

from ray import serve

from expert_cli.sdk.gateway import GatewayState
from expert_cli.sdk.openai_api import APIError, Call, completion_body, new_id, parse_call
from expert_cli.sdk.server import DONE, EXPERTS_HEADER, Routes, build_app, error_body
from expert_cli.sdk.serving import ServeSettings, ServingState

REPLICA_HEADER = "x-expert-cli-replica"  # the replica that answered: "<replica id> pid=<process id>"


def composition_key(weights: dict[str, float]) -> str:
    """The multiplexing key of a composition (as the experts header shows it); ``base`` for none."""
    return ",".join(f"{name}={weight:g}" for name, weight in weights.items()) or "base"


def key_weights(key: str) -> dict[str, float]:
    if key == "base":
        return {}
    return {name: float(weight) for name, weight in (part.split("=", 1) for part in key.split(","))}


class ExpertReplica:
    """One model replica: the base, the experts (loaded as requests need them, LRU above the limit) and the
    continuous-batching scheduler of the local server."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = ServeSettings(**settings)
        self.state = ServingState(self.settings)
        self.state.start()
        if self.state.error is not None:
            raise RuntimeError(self.state.error)
        self.routes = Routes(self.state, self.settings)
        self.replica = f"{serve.get_replica_context().replica_id.unique_id} pid={os.getpid()}"

    async def _composition(self, key: str) -> dict[str, float]:
        return key_weights(key)

    async def _submit(self, body: dict[str, Any], chat: bool) -> tuple[Call, dict[str, float], Any, asyncio.Queue]:
        """The request on this replica's scheduler, for the composition Ray multiplexed here."""
        weights = await self._composition(serve.get_multiplexed_model_id())
        call = parse_call(body, chat=chat, max_tokens_cap=self.settings.max_tokens_cap)
        events: asyncio.Queue = asyncio.Queue()
        job = self.state.submit(weights, call, self.routes.relay.sink(events))
        return call, weights, job, events

    async def complete(self, body: dict[str, Any], chat: bool) -> dict[str, Any]:
        """The whole answer as ``{"body", "replica"}``, or ``{"error": {status, body, headers}}``."""
        try:
            call, weights, job, events = await self._submit(body, chat)
            try:
                while True:
                    kind, payload = await events.get()
                    if kind == "error":
                        raise payload
                    if kind == "done":
                        document = completion_body(call, payload, new_id("chatcmpl" if chat else "cmpl"), weights)
                        return {"body": document, "replica": self.replica}
            finally:
                job.cancel()
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the ingress as OpenAI's error shape
            return {"error": asdict(Failure.of(exc)), "replica": self.replica}

    async def stream(self, body: dict[str, Any], chat: bool) -> AsyncIterator[Any]:
        """First ``{"replica"}`` (or ``{"error"}``), then the SSE events as bytes."""
        try:
            call, weights, job, events = await self._submit(body, chat)
        except Exception as exc:  # noqa: BLE001 - as in complete()
            yield {"error": asdict(Failure.of(exc)), "replica": self.replica}
            return
        yield {"replica": self.replica}
        async for event in self.routes.sse(call, job, events, weights):
            yield event


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        error = error_body(exc)
        return cls(error.status, error.body(), error.headers)


def replica_class(max_experts: int) -> type:
    """:class:`ExpertReplica` with its multiplexed loader keeping ``max_experts`` compositions per replica."""
    loader = serve.multiplexed(max_num_models_per_replica=max_experts)(ExpertReplica._composition)
    return type("ExpertReplica", (ExpertReplica,), {"_composition": loader})  # Ray finds it by its name


class RayRoutes(Routes):
    """The server's routes whose completions are answered by the model deployment through its handle."""

    def __init__(self, state: ServingState, settings: ServeSettings, handle: Any) -> None:
        super().__init__(state, settings)
        self.handle = handle

    async def load_expert(self, request: Any) -> Any:
        raise APIError(400, "a Ray deployment loads experts as requests need them", code="unsupported")

    unload_expert = load_expert

    async def complete(self, request: Any, *, chat: bool) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        body, call, weights = await self.accept(request, chat=chat)
        key = composition_key(weights)
        headers = {EXPERTS_HEADER: "none" if key == "base" else key}
        handle = self.handle.options(multiplexed_model_id=key, stream=call.stream)
        try:
            if not call.stream:
                answer = await handle.complete.remote(body, chat)
            else:
                events = handle.stream.remote(body, chat)
                answer = await events.__anext__()
        except Exception as exc:  # noqa: BLE001 - a replica that died mid-request: a clean 503
            raise APIError(503, f"a model replica failed while answering ({type(exc).__name__})",
                           kind="server_error", code="replica_failed", headers={"Retry-After": "1"}) from None
        headers[REPLICA_HEADER] = answer["replica"]
        if "error" in answer:
            failure = answer["error"]
            return JSONResponse(failure["body"], status_code=failure["status"], headers={**failure["headers"],
                                                                                          **headers})
        if not call.stream:
            return JSONResponse(answer["body"], headers=headers)
        return StreamingResponse(_relay(events), media_type="text/event-stream",
                                 headers={**headers, "Cache-Control": "no-cache"})


async def _relay(events: Any) -> AsyncIterator[bytes]:
    import json

    try:
        async for event in events:
            yield event
    except Exception as exc:  # noqa: BLE001 - the replica died mid-stream: an error event, then the end
        error = APIError(503, f"a model replica failed while answering ({type(exc).__name__})", kind="server_error",
                         code="replica_failed")
        yield b"data: " + json.dumps(error.body()).encode() + b"\n\n"
        yield DONE


class Ingress:
    """The HTTP ingress: authentication, routing among the installed experts, the composition's key."""

    def __init__(self, model: Any, settings: dict[str, Any]) -> None:
        self.model, self.settings = model, ServeSettings(**settings)

    def __serve_build_asgi_app__(self) -> Any:
        state = GatewayState(self.settings)
        return build_app(self.settings, routes=RayRoutes(state, self.settings, self.model))
