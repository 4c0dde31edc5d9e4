"""The labelled routing sets of issue 17 and the floors the router must keep on them.

The held-out part (``scripts/data/routing_heldout.jsonl``) was written before any tuning and is only ever
scored: these tests assert aggregate figures and never print its prompts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expert_cli.manifest.model import load_manifest
from expert_cli.routing.router import Router, RouterCandidate

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "scripts" / "data"
PUBLISHED = Path(__file__).resolve().parent / "data" / "published"
SIX = {"expert-sql", "expert-neo4j", "expert-json", "expert-elastic", "expert-typescript", "expert-tools"}


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def six(fixtures_dir: Path) -> Router:
    paths = [fixtures_dir / "expert-sql-manifest.json", fixtures_dir / "expert-neo4j-manifest.json",
             *sorted(PUBLISHED.glob("*/manifest.json"))]
    return Router([RouterCandidate.from_manifest(load_manifest(path)) for path in paths])


def test_the_sets_are_labelled_over_the_six_published_experts():
    dev, held_out = rows("routing_dev.jsonl"), rows("routing_heldout.jsonl")
    held_out_prompts = {row["prompt"] for row in held_out}
    assert not {row["prompt"] for row in dev} & held_out_prompts
    dev += [row for row in rows("router_prompts.jsonl") if row["prompt"] not in held_out_prompts]  # as the bench
    assert len(dev) + len(held_out) >= 300 and len(held_out) >= 100
    for row in dev + held_out:
        assert set(row["expected"]) <= SIX and row["category"], row
    categories = {row["category"] for row in held_out}
    assert {"sql", "cypher", "json", "elastic", "typescript", "tools", "domain-question", "general"} <= categories


def test_the_published_manifests_load_and_name_their_sources():
    names = {load_manifest(path).name for path in PUBLISHED.glob("*/manifest.json")}
    assert names == {"expert-json", "expert-elastic", "expert-typescript", "expert-tools"}
    sources = (PUBLISHED / "SOURCES.md").read_text(encoding="utf-8")
    assert all(f"hivellm/{name}" in sources for name in names)


@pytest.mark.parametrize("part, floor", [("routing_heldout.jsonl", 0.92), ("routing_dev.jsonl", 0.92)])
def test_exact_decisions_and_base_recall_stay_above_the_issues_floors(six: Router, part: str, floor: float):
    labelled = rows(part)
    decisions = [sorted(six.route(row["prompt"]).experts) for row in labelled]
    right = sum(decision == sorted(row["expected"]) for row, decision in zip(labelled, decisions))
    to_base = [decision == [] for row, decision in zip(labelled, decisions) if not row["expected"]]
    assert right / len(labelled) >= floor, f"{right}/{len(labelled)}"
    assert sum(to_base) / len(to_base) >= 0.95, f"{sum(to_base)}/{len(to_base)} general prompts to the base"
