"""Where router candidates come from: installed experts (the registry) or manifest files, plus exemplars.

Installed experts are read from their install folder (``manifest.json`` and, when the package has one,
``routing_exemplars.json``). Manifest files given directly need no weights; a ``routing_exemplars.json``
beside one is used too, else the exemplars ``package`` would ship (sampled from the local training data).
Old packages without exemplars still route on their manifests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ExpertError, NotInstalledError, UsageError
from expert_cli.manifest.exemplars import EXEMPLARS_FILE, sample_routing_exemplars
from expert_cli.manifest.model import load_manifest
from expert_cli.packages.registry import InstalledExpert, read_registry
from expert_cli.core.specs import parse_expert_spec
from expert_cli.routing.router import RouteDecision, Router, RouterCandidate
from expert_cli.routing.semantic import semantic_scorer_from_env


@dataclass
class RoutingSet:
    """The candidates to route among, and warnings about anything that was read only in part."""

    candidates: list[RouterCandidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RouteResult:
    decision: RouteDecision
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.decision.to_dict()


def read_routing_exemplars(folder: Path) -> tuple[list[str], str | None]:
    """The exemplar prompts in ``folder/routing_exemplars.json``; ``([], warning)`` when unreadable."""
    path = folder / EXEMPLARS_FILE
    if not path.is_file():
        return [], None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [], f"`{path}` cannot be read ({exc}); routing without its exemplars"
    if not isinstance(data, list):
        return [], f"`{path}` is not a JSON list of prompts; routing without its exemplars"
    return [item for item in data if isinstance(item, str) and item.strip()], None


def installed_candidates(names: Sequence[str] | None = None) -> RoutingSet:
    """The latest installed version of every expert, or of those named (``sql``, ``expert-sql@0.3.0``)."""
    registry = read_registry()
    if names:
        specs = [parse_expert_spec(name) for name in names]
        entries = [registry.get(spec.name, spec.version) for spec in specs]
    else:
        entries = [entry for entry in (registry.find(name) for name in registry.names()) if entry is not None]
    routing = RoutingSet()
    for entry in entries:
        _add_installed(routing, entry)
    return routing


def _add_installed(routing: RoutingSet, entry: InstalledExpert) -> None:
    folder = Path(entry.path)
    try:
        manifest = load_manifest(folder)
    except ExpertError as exc:
        routing.warnings.append(f"`{entry.spec}`: {exc.message}; routing on its name and capabilities only")
        routing.candidates.append(RouterCandidate(name=entry.name, capabilities=tuple(entry.capabilities)))
        return
    exemplars, warning = read_routing_exemplars(folder)
    if warning:
        routing.warnings.append(warning)
    routing.candidates.append(RouterCandidate.from_manifest(manifest, exemplars))


def manifest_candidates(paths: Sequence[str | Path]) -> RoutingSet:
    """Candidates from manifest files or expert folders (no weights needed)."""
    routing = RoutingSet()
    for path in paths:
        manifest = load_manifest(path)
        exemplars, warning = read_routing_exemplars(manifest.root) if manifest.root else ([], None)
        if warning:
            routing.warnings.append(warning)
        elif not exemplars:  # an expert being written: the exemplars `package` would ship, from its dataset
            exemplars = sample_routing_exemplars(manifest)
        routing.candidates.append(RouterCandidate.from_manifest(manifest, exemplars))
    return routing


def route_prompt(prompt: str, experts: Sequence[str] | None = None,
                 manifests: Sequence[str | Path] | None = None) -> RouteResult:
    """Route ``prompt`` among the given manifests and/or installed experts (all installed when neither)."""
    if not prompt.strip():
        raise UsageError("the prompt is empty", hint='pass the text to route, e.g. `expert-cli route "list all users"`')
    if experts is not None and not experts:
        raise UsageError("`--experts` names no expert", hint="pass names such as `--experts sql,neo4j`, or leave it out")
    routing = RoutingSet()
    if manifests:
        routing = manifest_candidates(manifests)
    if experts or not manifests:
        installed = installed_candidates(experts)
        routing.candidates.extend(installed.candidates)
        routing.warnings.extend(installed.warnings)
    if not routing.candidates:
        raise NotInstalledError(
            "no experts are installed, so there is nothing to route among",
            hint="install one with `expert-cli install <file.expert | folder | git-url>`, or pass `--manifest FILE`",
        )
    router = Router(routing.candidates, semantic=semantic_scorer_from_env())
    return RouteResult(router.route(prompt), routing.warnings)
