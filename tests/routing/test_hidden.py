"""The optional base-model semantic score (mean-pooled hidden states), on the tiny model the tests build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from expert_cli.routing.hidden import HiddenStateScorer, expert_texts
from expert_cli.routing.router import Router, RouterCandidate
from expert_cli.routing.semantic import semantic_scorer_from_env

GRAPH = RouterCandidate(name="expert-graph", description="Graph queries over people and who they know.",
                        exemplars=("MATCH (p:Person)-[:KNOWS]->(f) RETURN f.name",))
TABLES = RouterCandidate(name="expert-tables", description="Table queries over users and their orders.",
                         exemplars=("SELECT COUNT(*) FROM orders GROUP BY customer_id;",))


@pytest.fixture(scope="module")
def base(tiny_model: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)


def test_a_prompt_that_is_an_experts_own_text_scores_that_expert_highest(base):
    scorer = HiddenStateScorer(*base)
    scorer.fit([GRAPH, TABLES])
    scores = scorer.similarities("MATCH (p:Person)-[:KNOWS]->(f) RETURN f.name")
    assert set(scores) <= {0, 1} and scores.get(0, 0.0) > 0.0
    assert scores[0] > scores.get(1, 0.0)
    scores = scorer.similarities("SELECT COUNT(*) FROM orders GROUP BY customer_id;")
    assert scores[1] > scores.get(0, 0.0)


def test_experts_texts_are_embedded_once_and_prompts_are_not_kept(base):
    model, tokenizer = base
    calls = []
    scorer = HiddenStateScorer(model, tokenizer)
    forward = scorer._forward
    scorer._forward = lambda texts: calls.append(list(texts)) or forward(texts)
    scorer.fit([GRAPH, TABLES])
    embedded = sum(len(batch) for batch in calls)
    assert embedded == len(expert_texts(GRAPH)) + len(expert_texts(TABLES)) + len(scorer._general)
    calls.clear()
    scorer.fit([GRAPH])  # a router rebuilt on the same model: nothing new to embed
    assert calls == []
    scorer.similarities("Who does Ann know?")
    assert calls == [["Who does Ann know?"]] and "Who does Ann know?" not in scorer._cache


def test_the_base_model_score_supports_but_never_decides_a_route(base, monkeypatch):
    scorer = HiddenStateScorer(*base)
    router = Router([GRAPH, TABLES], semantic=scorer)
    assert router.route("MATCH (p:Person)-[:KNOWS]->(f) RETURN f.name").experts == ["expert-graph"]
    monkeypatch.setattr(scorer, "similarities", lambda prompt: {0: 0.9, 1: 0.2})  # however close it says
    decision = router.route("Tell me something nice about the weather.")
    assert decision.experts == []  # no words, no notation: no expert
    scorer.decisive = True  # a sentence-embedding scorer may decide (the landed behaviour)
    assert Router([GRAPH, TABLES], semantic=scorer).route("Tell me something nice about the weather.").experts == [
        "expert-graph"]


def test_base_is_chosen_by_the_environment_only_where_a_model_is_loaded(base, monkeypatch):
    monkeypatch.setenv("EXPERT_ROUTER_SEMANTIC", "base")
    assert semantic_scorer_from_env() is None  # `route`: no model loaded, stays pure Python
    assert isinstance(semantic_scorer_from_env(*base), HiddenStateScorer)
    monkeypatch.delenv("EXPERT_ROUTER_SEMANTIC")
    assert semantic_scorer_from_env(*base) is None


def test_routing_without_a_model_imports_no_torch():
    code = ("import sys\nfrom expert_cli.routing.router import Router, RouterCandidate\n"
            "Router([RouterCandidate(name='expert-sql', keywords=('sql',))]).route('Write a SQL query')\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)
