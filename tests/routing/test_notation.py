"""Notation signatures: punctuation typical of one expert's exemplars routes prompts that carry it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expert_cli.manifest.exemplars import sample_routing_exemplars
from expert_cli.manifest.model import load_manifest
from expert_cli.routing.notation import NotationIndex, notation_runs
from expert_cli.routing.router import Router, RouterCandidate

REPO_ROOT = Path(__file__).resolve().parents[2]
GRAPH = [f"(:Label{i} {{name: STRING}})\n(:Label{i})-[:REL_{i}]->(:Other)\n\nFind item {i}." for i in range(20)]
PLAIN = [f"Write a short poem about topic number {i}, please." for i in range(20)]
TABLES = [f"CREATE TABLE t{i} (id INTEGER, name TEXT);\n\nCount the rows of t{i}." for i in range(20)]


def test_runs_are_two_or_more_punctuation_characters():
    assert notation_runs("(:Person)-[:KNOWS]->(:Person) a.b, c") == {"(:", ")-[:", "]->(:"}
    assert notation_runs("plain words, nothing more.") == set()


def test_a_run_common_in_one_experts_exemplars_and_rare_elsewhere_is_its_signature():
    index = NotationIndex([GRAPH, PLAIN, TABLES])
    found = index.signatures("(:Ship {name: STRING})\n(:Ship)-[:DOCKED_AT]->(:Port)\n\nList ships.")
    assert list(found) == [0] and {"(:", ")-[:", "]->(:"} <= set(found[0])
    assert index.signatures("CREATE TABLE x (a TEXT);") == {2: [");"]}
    assert index.signatures("Just a question: why?") == {}


def test_a_run_shared_by_two_experts_is_nobodys_signature():
    index = NotationIndex([GRAPH, GRAPH[:15] + PLAIN[:5]])
    assert not index


def test_too_few_exemplars_give_no_signatures():
    assert not NotationIndex([GRAPH[:5], PLAIN])


def test_a_prompt_in_the_experts_notation_routes_to_it_without_any_keyword():
    graph = RouterCandidate(name="expert-graph", exemplars=tuple(GRAPH))
    poems = RouterCandidate(name="expert-poems", keywords=("poem",), exemplars=tuple(PLAIN))
    router = Router([graph, poems])
    decision = router.route("(:Ship {name: STRING})\n(:Ship)-[:DOCKED_AT]->(:Port)\n\nShow every ship docked at Oslo.")
    assert decision.experts == ["expert-graph"]
    assert any(reason.startswith("its notation") for reason in decision.candidates[0]["reasons"])
    assert router.route("Show every ship docked at Oslo.").experts == []


@pytest.mark.parametrize("name", ["expert-sql", "expert-neo4j", "expert-json"])
def test_every_reference_test_prompt_with_its_context_routes_to_its_expert(name: str):
    manifests = [load_manifest(REPO_ROOT / "experts" / n) for n in ("expert-sql", "expert-neo4j", "expert-json")]
    router = Router([RouterCandidate.from_manifest(m, sample_routing_exemplars(m)) for m in manifests])
    rows = [json.loads(line) for line in (REPO_ROOT / "experts" / name / "data" / "test.jsonl").open()]
    missed = []
    for row in rows:
        system, user = (next((m["content"] for m in row["messages"] if m["role"] == role), "") for role in ("system", "user"))
        context = "\n".join(line for line in system.splitlines() if not line.startswith("Dialect:")).strip()
        prompt = f"{context}\n\n{user}" if context else user
        if router.route(prompt).experts[:1] != [name]:
            missed.append(prompt)
    assert len(missed) <= len(rows) // 20, missed[:3]
