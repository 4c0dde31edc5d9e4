"""Routing as the application asks for it: a router among installed experts and/or manifests, and one
prompt's decision. Pure Python: no model is loaded."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import NotInstalledError, UsageError
from expert_cli.manifest.exemplars import sample_routing_exemplars
from expert_cli.manifest.model import Manifest
from expert_cli.packages.registry import InstalledExpert
from expert_cli.routing.candidates import RoutingSet, add_folder, manifest_candidates
from expert_cli.routing.router import RouteDecision, Router, RouterCandidate
from expert_cli.routing.selection import KNOWLEDGE
from expert_cli.routing.semantic import semantic_scorer_from_env
from expert_cli.sdk.installed import NOTHING_INSTALLED_HINT, installed_experts

__all__ = ["KNOWLEDGE", "RouteDecision", "RouteResult", "Router", "installed_router", "route_prompt"]


@dataclass
class RouteResult:
    decision: RouteDecision
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.decision.to_dict()


def installed_routing(entries: Sequence[InstalledExpert]) -> RoutingSet:
    """Candidates for installed experts, from their install folders."""
    routing = RoutingSet()
    for entry in entries:
        add_folder(routing, Path(entry.path), entry.name, entry.capabilities, label=entry.spec)
    return routing


def installed_router(entries: Sequence[InstalledExpert], base: Any = None) -> tuple[Router, list[str]]:
    """A router among ``entries`` (their manifests and ``routing_exemplars.json``), and read warnings. With a
    loaded ``base`` and ``EXPERT_ROUTER_SEMANTIC=base``, the base model's own hidden states add a score."""
    routing = installed_routing(entries)
    return Router(routing.candidates, semantic=base_semantics(base)), routing.warnings


def base_semantics(base: Any = None) -> Any:
    """The semantic scorer ``EXPERT_ROUTER_SEMANTIC`` asks for: ``base`` (needs the loaded base), a
    sentence-embedding model, or None (the default)."""
    if base is None:
        return semantic_scorer_from_env()
    return semantic_scorer_from_env(base.model, base.tokenizer)


def semantics_want_base() -> bool:
    """Whether ``EXPERT_ROUTER_SEMANTIC=base`` asks for the base model's own semantic score."""
    from expert_cli.routing.semantic import BASE_MODEL_VALUE, ENABLE_ENV

    return os.environ.get(ENABLE_ENV, "").strip().lower() == BASE_MODEL_VALUE


def with_base_semantics(router: Router, base: Any) -> Router:
    """``router`` with the loaded base model's semantic score when ``EXPERT_ROUTER_SEMANTIC=base`` asks for
    it (the same router otherwise): chat builds its router before any model loads."""
    scorer = base_semantics(base)
    return router if scorer is None else Router(router.candidates, semantic=scorer)


def route_prompt(prompt: str, experts: Sequence[str] | None = None,
                 manifests: Sequence[str | Path] | None = None) -> RouteResult:
    """Route ``prompt`` among the given manifests and/or installed experts (all installed when neither)."""
    if not prompt.strip():
        raise UsageError("the prompt is empty", hint='pass the text to route, e.g. `expert-cli route "list all users"`')
    if experts is not None and not experts:
        raise UsageError("`--experts` names no expert", hint="pass names such as `--experts sql,neo4j`, or leave it out")
    routing = manifest_candidates(manifests) if manifests else RoutingSet()
    if experts or not manifests:
        left_out: list[str] = []
        installed = installed_routing(installed_experts(experts, warnings=left_out))
        routing.candidates.extend(installed.candidates)
        routing.warnings.extend(left_out + installed.warnings)
    if not routing.candidates:
        raise NotInstalledError("no experts are installed, so there is nothing to route among",
                                hint=f"{NOTHING_INSTALLED_HINT}, or pass `--manifest FILE`")
    router = Router(routing.candidates, semantic=semantic_scorer_from_env())
    return RouteResult(router.route(prompt), routing.warnings)


def reference_router(manifests: Sequence[Manifest] = (), installed: bool = False) -> Callable[[str], list[str]]:
    """prompt -> the experts the router picks among ``manifests`` (with the routing exemplars ``package``
    would ship, sampled from their training data) or, with ``installed``, among every installed expert."""
    if installed:
        candidates = installed_routing(installed_experts()).candidates
    else:
        candidates = [RouterCandidate.from_manifest(m, sample_routing_exemplars(m)) for m in manifests]
    router = Router(candidates)
    return lambda prompt: list(router.route(prompt).experts)
