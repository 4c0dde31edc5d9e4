"""``expert-cli serve``: an OpenAI-compatible server over one base model and its experts."""

from __future__ import annotations

import os

import typer

from expert_cli.cli._app import print_success
from expert_cli.core.errors import UsageError


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; any but loopback needs --api-key."),
    port: int = typer.Option(8000, "--port", help="Port to listen on (0: any free port)."),
    experts: str | None = typer.Option(None, "--experts", help="Installed experts to serve (sql,neo4j@0.2.0)."),
    all_experts: bool = typer.Option(False, "--all", help="Serve every installed expert (the default)."),
    base_model: str | None = typer.Option(
        None, "--base-model", help="Alone: serve this bare base model. With experts: where to read their base."),
    device: str | None = typer.Option(None, "--device", help="auto (default), cpu, cuda, cuda:N or mps."),
    max_batch: int = typer.Option(16, "--max-batch", help="Most requests decoding together."),
    max_queue: int = typer.Option(64, "--max-queue", help="Most requests waiting; more get 503."),
    max_loaded: int | None = typer.Option(None, "--max-loaded", help="Most experts in memory (LRU above)."),
    max_tokens: int = typer.Option(4096, "--max-tokens-cap", help="The largest max_tokens a request may ask."),
    api_key: str | None = typer.Option(
        None, "--api-key", help="Require `Authorization: Bearer KEY` (default: $EXPERT_API_KEY)."),
    upstream: str | None = typer.Option(
        None, "--upstream", help="Answer with this OpenAI-compatible server (http://host:8000/v1): route here, "
                                 "forward with model=<expert>."),
    upstream_api_key: str | None = typer.Option(
        None, "--upstream-api-key", help="The upstream's API key (default: $EXPERT_UPSTREAM_API_KEY)."),
    ray: bool = typer.Option(False, "--ray", help="Deploy on Ray Serve: an ingress and model replicas that hold "
                                                  "experts by multiplexing (a local cluster unless --address)."),
    replicas: int = typer.Option(2, "--replicas", help="With --ray: model replicas."),
    address: str | None = typer.Option(None, "--address", help="With --ray: an existing cluster (HOST:6379, auto)."),
    max_experts_per_replica: int = typer.Option(
        4, "--max-experts-per-replica", help="With --ray: compositions each replica keeps (multiplexing)."),
    autoscaling: str | None = typer.Option(
        None, "--autoscaling", metavar="JSON",
        help='With --ray: Ray Serve\'s autoscaling_config, e.g. \'{"min_replicas": 1, "max_replicas": 4}\' '
             "(replaces --replicas)."),
) -> None:
    """Serve experts over HTTP with OpenAI's API (chat, completions, models), batching requests together.

    Every request names its `model`: an expert, several joined with `+`, the base model id, or `auto` (the
    router picks per request). Stop with Ctrl-C or SIGTERM: running requests finish first.

    With `--upstream URL` no model is loaded: each request is routed here among the installed experts and
    answered by that server (another `expert-cli serve`, or vLLM serving the experts as `--lora-modules`).
    """
    from expert_cli.sdk.extras import require_extra
    from expert_cli.sdk.installed import split_expert_list

    if experts is not None and all_experts:
        raise UsageError("`--experts` and `--all` cannot be used together", hint="pass one of them")
    if ray and upstream is not None:
        raise UsageError("`--ray` and `--upstream` cannot be used together", hint="pass one of them")
    if upstream is not None and (device is not None or max_loaded is not None):
        raise UsageError("`--device` and `--max-loaded` do not apply with `--upstream` (no model is loaded here)",
                         hint="pass them to the upstream server")
    require_extra("gateway" if upstream is not None else "ray" if ray else "serve")
    from expert_cli.sdk.server import serve
    from expert_cli.sdk.serving import ServeSettings

    settings = ServeSettings(host=host, port=port, experts=split_expert_list(experts) if experts is not None else None,
                             all_experts=all_experts, base_model=base_model, device=device, max_batch=max_batch,
                             max_queue=max_queue, max_loaded=max_loaded, max_tokens_cap=max_tokens,
                             api_key=api_key or os.environ.get("EXPERT_API_KEY") or None)
    listening = lambda url: print_success(f"serving on {url}", {
        "models": f"{url}/v1/models", "health": f"{url}/health", **({"upstream": upstream} if upstream else {})})
    if ray:
        from expert_cli.sdk.ray_serving import RaySettings, serve_ray

        scaling = parse_autoscaling(autoscaling) if autoscaling is not None else None
        serve_ray(settings, RaySettings(replicas, address, max_experts_per_replica, autoscaling=scaling),
                  on_listening=listening)
        return
    if upstream is None:
        serve(settings, on_listening=listening)
        return
    from expert_cli.sdk.gateway import GatewaySettings, serve_gateway

    key = upstream_api_key or os.environ.get("EXPERT_UPSTREAM_API_KEY") or None
    serve_gateway(settings, GatewaySettings(upstream, key), on_listening=listening)


def parse_autoscaling(text: str) -> dict:
    """``--autoscaling`` as the JSON object Ray Serve takes as ``autoscaling_config``."""
    import json

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"`--autoscaling` is not JSON ({exc})",
                         hint='pass an object such as \'{"min_replicas": 1, "max_replicas": 4}\'') from None
    if not isinstance(value, dict) or not value:
        raise UsageError("`--autoscaling` must be a JSON object of Ray Serve autoscaling settings",
                         hint='pass an object such as \'{"min_replicas": 1, "max_replicas": 4}\'')
    return value

