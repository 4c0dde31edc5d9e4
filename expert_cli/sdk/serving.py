"""What a running server holds: the settings, the experts it serves on one base, the router, the scheduler,
and its metrics; and how a request's ``model`` becomes a composition of experts. Pure Python at import."""

from __future__ import annotations

import gc
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from expert_cli.core.errors import NotInstalledError, UsageError
from expert_cli.core.specs import canonical_name, parse_expert_spec
from expert_cli.packages.registry import InstalledExpert
from expert_cli.routing.selection import composition_weights
from expert_cli.sdk.openai_api import APIError, Call
from expert_cli.sdk.scheduler import Job, Scheduler

LOOPBACK_NAMES = ("localhost",)
THREADS_ENV = "EXPERT_THREADS"  # intra-op threads for chat and serve (train: EXPERT_TRAIN_THREADS)


@dataclass
class ServeSettings:
    """``expert-cli serve`` flags. Who is served: ``experts`` (specs), or every installed expert with
    ``all_experts`` or when neither they nor ``base_model`` are given; ``base_model`` alone serves the bare base."""

    host: str = "127.0.0.1"
    port: int = 8000
    experts: list[str] | None = None
    all_experts: bool = False
    base_model: str | None = None
    device: str | None = None
    max_batch: int = 16
    max_queue: int = 64
    max_loaded: int | None = None
    api_key: str | None = None
    max_body_bytes: int = 1 << 20
    max_tokens_cap: int = 4096
    drain_seconds: float = 30.0

    def check(self) -> None:
        """Refuse unsafe or impossible settings before anything loads."""
        if not is_loopback(self.host) and not self.api_key:
            raise UsageError(f"serving on `{self.host}` (not this machine only) needs an API key",
                             hint="pass `--api-key KEY` or set `EXPERT_API_KEY`, or bind `--host 127.0.0.1`")
        for name in ("max_batch", "max_queue", "max_tokens_cap"):
            if getattr(self, name) < 1:
                raise UsageError(f"`--{name.replace('_', '-')}` must be at least 1")
        if self.max_loaded is not None and self.max_loaded < 1:
            raise UsageError("`--max-loaded` must be at least 1")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"`--port` must be from 0 to 65535, not `{self.port}`")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServingState:
    """The server's model side; :meth:`start` loads it (on a background thread), :meth:`close` drains it."""

    def __init__(self, settings: ServeSettings) -> None:
        from expert_cli.sdk.chat_setup import shared_base_model
        from expert_cli.sdk.installed import installed_experts, require_installed

        self.settings = settings
        self.warnings: list[str] = []  # experts left out (a revoked publisher key)
        if settings.experts is not None:
            entries = installed_experts(settings.experts)
        elif settings.all_experts or not settings.base_model:
            entries = require_installed(None, "serve", hint="install one with `expert-cli install ...`, or serve "
                                                            "a bare base: `--base-model builtin:tiny-qwen3`",
                                        warnings=self.warnings)
        else:
            entries = []
        self.base_model = shared_base_model(entries, settings.base_model) if entries else settings.base_model or ""
        if not self.base_model:
            raise UsageError("nothing to serve: no experts are installed and no `--base-model` is given",
                             hint="install an expert, or pass `--base-model builtin:tiny-qwen3`")
        self.served: dict[str, InstalledExpert] = {entry.name: entry for entry in entries}
        self.router: Any = None
        self.manager: Any = None
        self.scheduler: Scheduler | None = None
        self.ready = threading.Event()
        self.error: str | None = None
        self.started = int(time.time())
        self.metrics = ServerMetrics(self)

    # -- life -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the base and the experts (up to ``max_loaded``), build the router, start the scheduler."""
        from expert_cli.models.device import apply_cpu_threads
        from expert_cli.models.resolve import resolve_base_model
        from expert_cli.sdk.chat_setup import base_mismatch_warnings
        from expert_cli.sdk.manager import ExpertManager

        try:
            path = resolve_base_model(self.base_model)
            for warning in base_mismatch_warnings(list(self.served.values()), path):
                logging.getLogger("expert_cli.serve").warning("warning: %s", warning)
            self.manager = ExpertManager(self.settings.max_loaded, self.settings.device, base_model=path)
            base = self.manager.prepare(None, _warmup()).base  # loads the base
            # One thread for a small model on the CPU: OpenMP threads waiting for a busy core cost it far
            # more than they give (37 vs 308 tokens/s measured on the demo base).
            apply_cpu_threads(base.model, base.placement, THREADS_ENV)
            for index, entry in enumerate(self.served.values()):
                lazy = self.settings.max_loaded is not None and index >= self.settings.max_loaded
                self.manager.load_expert(entry.name, entry.path, model_path=path, lazy=lazy)
            self._reroute()
            self.scheduler = Scheduler(self.manager, max_batch=self.settings.max_batch,
                                       max_queue=self.settings.max_queue, on_finish=self.metrics.finished)
        except Exception as exc:  # noqa: BLE001 - reported by /health and every request, never a crash
            self.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            return
        _freeze_heap()
        self.ready.set()

    def close(self, drain_seconds: float) -> None:
        if self.scheduler is not None:
            self.scheduler.close(drain_seconds)
        if self.manager is not None:
            self.manager.close()
        gc.unfreeze()  # a server embedded in a longer-lived process gives its heap back to the collector

    def _reroute(self) -> None:
        from expert_cli.sdk.routing import installed_router

        base = self.manager.bare_base() if self.manager is not None else None
        self.router = installed_router(list(self.served.values()), base)[0] if self.served else None

    # -- requests ---------------------------------------------------------------------------------
    def composition_for(self, call: Call) -> dict[str, float]:
        """The experts (and weights) that answer ``call``: lead first; empty for the bare base."""
        if call.experts is not None:
            return {self.served_name(name, "experts"): weight for name, weight in call.experts.items()}
        model = call.model
        if model == "auto":
            if self.router is None:
                return {}
            decision = self.router.route(call.request.prompt)
            order = sorted(decision.experts, key=lambda name: -decision.weights[name])
            return {name: decision.weights[name] for name in order}
        if model in (self.base_model, "base"):
            return {}
        names = [self.served_name(part.strip(), "model") for part in model.split("+")]
        if len(set(names)) != len(names):
            raise APIError(400, f"`model`: `{model}` names an expert twice", param="model", code="invalid_value")
        return composition_weights(names, [1.0] * len(names))

    def served_name(self, text: str, param: str) -> str:
        try:
            spec = parse_expert_spec(text)
        except UsageError:
            spec = None
        for name in ((spec.name, canonical_name(spec.name)) if spec else ()):
            entry = self.served.get(name)
            if entry is not None and (spec.version in (None, entry.version)):
                return entry.name
        served = ", ".join(sorted(self.served)) or "none"
        raise APIError(404, f"the model `{text}` does not exist here (experts: {served}; also "
                            f"`{self.base_model}` and `auto`)", param=param, code="model_not_found")

    def submit(self, weights: dict[str, float], call: Call, on_event: Callable[[str, Any], None]) -> Job:
        assert self.scheduler is not None
        return self.scheduler.submit(weights or None, call.request, on_event)

    # -- experts at run time ----------------------------------------------------------------------
    def load(self, text: str) -> InstalledExpert:
        """Serve an installed expert (its latest version, or the one named) without a restart."""
        from expert_cli.sdk.installed import installed_experts

        try:
            entry = installed_experts([text])[0]
        except (NotInstalledError, UsageError) as exc:
            raise APIError(404, exc.message, param="name", code="model_not_found") from None
        if entry.base_model and entry.base_model != self.base_model:
            raise APIError(400, f"`{entry.spec}` is trained on `{entry.base_model}`, this server runs "
                                f"`{self.base_model}`", param="name", code="incompatible_base_model")
        path = self.manager.base_model
        self.scheduler.call(lambda: self.manager.load_expert(entry.name, entry.path, model_path=path))
        self.served[entry.name] = entry
        self._reroute()
        return entry

    def unload(self, text: str) -> str:
        name = self.served_name(text, "name")
        if name in self.scheduler.pinned():
            raise APIError(409, f"`{name}` is answering requests now; unload it when they finish",
                           param="name", code="expert_busy", headers={"Retry-After": "1"})
        self.scheduler.call(lambda: self.manager.unload_expert(name))
        del self.served[name]
        self._reroute()
        return name


def _warmup() -> Any:
    from expert_cli.sdk.requests import Request

    return Request("hello", overrides={"max_tokens": 1})


@dataclass
class ServerMetrics:
    """Prometheus metrics in a registry of the server's own (two servers in one process never mix)."""

    state: ServingState
    registry: Any = None
    _metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry()
        m = self._metrics
        m["requests"] = Counter("expert_cli_requests", "Requests by expert composition and outcome",
                                ["experts", "outcome"], registry=registry)
        m["tokens"] = Counter("expert_cli_tokens", "Tokens by expert and kind (prompt, completion)",
                              ["expert", "kind"], registry=registry)
        m["ttft"] = Histogram("expert_cli_time_to_first_token_seconds", "Time to first token", registry=registry,
                              buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        m["latency"] = Histogram("expert_cli_request_latency_seconds", "End-to-end latency", registry=registry,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        stats = lambda name: lambda: getattr(self.state.scheduler.stats, name) if self.state.scheduler else 0
        manager = lambda name: lambda: getattr(self.state.manager, name) if self.state.manager else 0
        for metric, help_text, source in (
            ("expert_cli_queue_depth", "Requests waiting for a batch slot", stats("queued")),
            ("expert_cli_running_rows", "Rows in the running batch", stats("running")),
            ("expert_cli_adapter_loads", "Adapter loads since start", manager("loads")),
            ("expert_cli_adapter_evictions", "Adapter evictions since start", manager("evictions")),
        ):
            Gauge(metric, help_text, registry=registry).set_function(source)

    def record(self, experts: Iterable[str], outcome: str) -> None:
        """Count one request by its experts and outcome (ok, error, cancelled)."""
        self._metrics["requests"].labels("+".join(experts) or "base", outcome).inc()

    def finished(self, job: Job) -> None:
        cancelled = job.result is not None and job.result.finish_reason == "cancelled"
        self.record(job.experts, "error" if job.error else "cancelled" if cancelled else "ok")
        if job.result is None:
            return
        for name in job.experts or ["base"]:
            self._metrics["tokens"].labels(name, "prompt").inc(job.result.prompt_tokens)
            self._metrics["tokens"].labels(name, "completion").inc(job.result.tokens)
        if job.first_token_s is not None:
            self._metrics["ttft"].observe(job.first_token_s)
        self._metrics["latency"].observe(job.result.latency_s)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _freeze_heap() -> None:
    """Collect once, then take every object alive after startup out of the garbage collector's scans.

    Loading torch, transformers, the tokenizer and the model leaves ~420,000 tracked objects that live as long
    as the server. Each full (generation 2) collection walked all of them on the scheduler's thread and
    stalled every running stream for 160-190 ms (measured on the demo base: first-token p99 at 16 clients
    150 ms instead of 25 ms). Objects created later (requests, experts loaded at run time) are still
    collected as usual. vLLM's engine does the same after loading its model."""
    gc.collect()
    gc.freeze()
