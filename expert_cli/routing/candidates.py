"""Router candidates from expert folders or manifest files, plus their routing exemplars.

An installed expert is read from its install folder (``manifest.json`` and, when the package has one,
``routing_exemplars.json``). Manifest files given directly need no weights; a ``routing_exemplars.json``
beside one is used too, else the exemplars ``package`` would ship (sampled from the local training data).
Old packages without exemplars still route on their manifests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from expert_cli.core.errors import ExpertError
from expert_cli.manifest.exemplars import EXEMPLARS_FILE, sample_routing_exemplars
from expert_cli.manifest.model import load_manifest
from expert_cli.routing.router import RouterCandidate


@dataclass
class RoutingSet:
    """The candidates to route among, and warnings about anything that was read only in part."""

    candidates: list[RouterCandidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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


def add_folder(routing: RoutingSet, folder: Path, name: str, capabilities: Sequence[str] = (),
               label: str | None = None) -> None:
    """Add the expert installed in ``folder``; one whose manifest cannot be read routes on ``name`` and
    ``capabilities`` only (with a warning)."""
    try:
        manifest = load_manifest(folder)
    except ExpertError as exc:
        routing.warnings.append(f"`{label or name}`: {exc.message}; routing on its name and capabilities only")
        routing.candidates.append(RouterCandidate(name=name, capabilities=tuple(capabilities)))
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
