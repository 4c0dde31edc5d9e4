"""``expert-cli serve --ray``: the same OpenAI-compatible application as a Ray Serve application, on a local Ray
cluster on 127.0.0.1 or on an existing one (``--address``, after ``ray start --head`` on one machine and
``ray start --address HEAD:6379`` on the others; every node needs the experts installed).

An ingress deployment authenticates, routes (the same router) and picks the composition; ``replicas`` model
deployments each hold the base and its experts, and Ray Serve's model multiplexing keyed by the composition
sends a request to a replica that already holds it. ``autoscaling`` (Ray's ``autoscaling_config``) replaces
the fixed replica count. The response header ``x-expert-cli-replica`` names the replica that answered.
"""

from __future__ import annotations

import signal
import socket
import threading
from dataclasses import asdict, dataclass
from typing import Any

from expert_cli.core.errors import UsageError, require
from expert_cli.sdk.serving import ServeSettings

APP_NAME = "expert-cli"


@dataclass
class RaySettings:
    replicas: int = 2
    address: str | None = None
    max_experts_per_replica: int = 4
    autoscaling: dict[str, Any] | None = None
    replica_cpus: float = 1.0  # Ray's scheduling share per model replica (the ingress asks for none)

    def check(self) -> None:
        if self.replicas < 1:
            raise UsageError(f"`--replicas` must be at least 1, not `{self.replicas}`")
        if self.max_experts_per_replica < 1:
            raise UsageError("`--max-experts-per-replica` must be at least 1")


def build_ray_app(settings: ServeSettings, ray_settings: RaySettings) -> Any:
    """The bound Ray Serve application: ingress -> model replicas."""
    from ray import serve

    from expert_cli.sdk.ray_deployments import Ingress, replica_class

    fields = asdict(settings)
    scale = ({"autoscaling_config": ray_settings.autoscaling} if ray_settings.autoscaling
             else {"num_replicas": ray_settings.replicas})
    model = serve.deployment(name="ExpertModel", max_ongoing_requests=settings.max_batch + settings.max_queue,
                             ray_actor_options={"num_cpus": ray_settings.replica_cpus},
                             **scale)(replica_class(ray_settings.max_experts_per_replica))
    ingress = serve.deployment(name="ExpertIngress", ray_actor_options={"num_cpus": 0})(serve.ingress()(Ingress))
    held = {**fields, "max_loaded": settings.max_loaded or ray_settings.max_experts_per_replica}  # LRU per replica
    return ingress.bind(model.bind(held), fields)


def serve_ray(settings: ServeSettings, ray_settings: RaySettings, on_listening: Any = None,
              stop: threading.Event | None = None) -> None:
    """Deploy on Ray and block until SIGINT/SIGTERM (or ``stop``); then tear the application down."""
    require("ray", "ray")
    import ray
    from ray import serve

    settings.check()
    ray_settings.check()
    port = settings.port or _free_port(settings.host)
    if ray_settings.address:
        ray.init(address=ray_settings.address, logging_level="WARNING", log_to_driver=False)
    else:
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, logging_level="WARNING",
                 log_to_driver=False)
    stop = stop or threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        serve.start(http_options={"host": settings.host, "port": port})
        serve.run(build_ray_app(settings, ray_settings), name=APP_NAME, route_prefix="/")
        if on_listening is not None:
            on_listening(f"http://{settings.host}:{port}")
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        serve.shutdown()
        ray.shutdown()


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
