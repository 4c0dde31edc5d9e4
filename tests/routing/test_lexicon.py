"""Issue 17: the false negatives of the landed router, each by its mechanism, on the six published manifests
(manifests only, as a user who installs them has them), and the lexicon that fixes them (data, extensible)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expert_cli.core.errors import UsageError
from expert_cli.manifest.exemplars import sample_routing_exemplars
from expert_cli.manifest.model import load_manifest
from expert_cli.routing.lexicon import LEXICON_ENV, builtin_lexicon_data, grammar_terms, load_lexicon
from expert_cli.routing.router import Router, RouterCandidate

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = Path(__file__).resolve().parent / "data" / "published"


@pytest.fixture(scope="module")
def six(fixtures_dir: Path) -> Router:
    paths = [fixtures_dir / "expert-sql-manifest.json", fixtures_dir / "expert-neo4j-manifest.json",
             *sorted(PUBLISHED.glob("*/manifest.json"))]
    return Router([RouterCandidate.from_manifest(load_manifest(path)) for path in paths])


@pytest.fixture(scope="module")
def reference() -> Router:
    manifests = [load_manifest(REPO_ROOT / "experts" / name) for name in ("expert-sql", "expert-neo4j", "expert-json")]
    return Router([RouterCandidate.from_manifest(m, sample_routing_exemplars(m)) for m in manifests])


@pytest.mark.parametrize("prompt, expert", [
    # a question that carries its schema: the knowledge-question signal no longer vetoes it
    ("How many orders were placed in May? Table orders(id, customer_id, placed_at, total)", "expert-sql"),
    ("Which customers have never placed an order? customers(id, name), orders(id, customer_id)", "expert-sql"),
    # the domain named by a word the manifest does not list
    ("Postgres: the ten newest accounts, please.", "expert-sql"),
    ("Write a CTE that totals revenue per month.", "expert-sql"),
    ("Rank employees by salary with a window function.", "expert-sql"),
    ("Write a MERGE INTO statement that upserts staging rows into prices.", "expert-sql"),
    ("Custom analyzer with a lowercase filter for the title field.", "expert-elastic"),
    ("Write a type guard for a Cat | Dog union.", "expert-typescript"),
    ("A TSX component that renders a table of users.", "expert-typescript"),
    ("Swagger definition for a POST /login body.", "expert-json"),
    ("Plan the MCP tool calls to open an issue and notify the team.", "expert-tools"),
    # graph schemas in (:Label)-[:REL]-> form, SQL phrased in plain English
    ("(:Person)-[:KNOWS]->(:Person). Who knows Ann?", "expert-neo4j"),
    ("Find the second highest salary.", "expert-sql"),
    # a notation more specific than another expert's (query DSL inside JSON)
    ('{"query": {"match_all": {}}} -- limit it to documents from 2024', "expert-elastic"),
])
def test_prompts_the_landed_router_sent_to_the_base_reach_their_expert(six: Router, prompt: str, expert: str):
    assert six.route(prompt).experts == [expert]


@pytest.mark.parametrize("prompt", [
    "What is a database index?", "What is a CTE in SQL?", "Explain what a graph database is.",
    "Why would someone choose TypeScript over JavaScript?", "What does MCP stand for?",
    "What is the capital of Australia?", "Write a Python function that reverses a list.",
])
def test_general_knowledge_prompts_with_domain_words_stay_with_the_base(six: Router, prompt: str):
    decision = six.route(prompt)
    assert decision.experts == [], decision.to_dict()


def test_a_learned_notation_does_not_outweigh_the_meaning_of_the_question(reference: Router):
    prompt = "Which customers have never placed an order? customers(id, name), orders(id, customer_id)"
    decision = reference.route(prompt)
    assert decision.experts == ["expert-sql"]
    json_reasons = next(c["reasons"] for c in decision.candidates if c["name"] == "expert-json")
    assert any(reason.startswith("its notation") for reason in json_reasons)


def test_a_domain_no_loaded_expert_covers_keeps_generic_words_from_routing(reference: Router):
    assert reference.route("Elasticsearch query for products with a price between 10 and 50").experts == []
    assert reference.route("Show the products with a price between 10 and 50.").experts == ["expert-sql"]


def test_route_json_shows_the_threshold_the_penalty_and_the_evidence(six: Router):
    document = six.route("What is the total revenue per region? sales(region, amount)").to_dict()
    assert document["experts"] == ["expert-sql"] and document["threshold"] == 2.0
    assert document["question"] is True and document["knowledge_question"] is True
    sql = next(c for c in document["candidates"] if c["name"] == "expert-sql")
    assert "a table schema (lexicon pattern)" in sql["reasons"]
    knowledge = six.route("What is a window function in SQL?").to_dict()
    reasons = next(c["reasons"] for c in knowledge["candidates"] if c["name"] == "expert-sql")
    assert "a knowledge question with no task for it (-6)" in reasons


def test_the_builtin_lexicon_is_data_with_its_sources():
    data = builtin_lexicon_data()
    assert data["sources"] and data["about"]
    lexicon = load_lexicon()
    names = {domain.name for domain in lexicon.domains}
    assert {"sql", "cypher", "json", "elastic", "typescript", "tools"} <= names
    assert all(domain.anchors and domain.terms for domain in lexicon.domains)


def test_a_user_lexicon_adds_a_domain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    extra = tmp_path / "weather.json"
    extra.write_text(json.dumps({"domains": {"weather": {"anchors": ["weather"], "terms": ["umbrella"],
                                                         "patterns": [{"name": "a temperature", "needs": "°",
                                                                       "regex": r"\d+\s*°[CF]"}]}}}))
    weather = RouterCandidate(name="expert-weather", description="Forecasts for a city.")
    assert Router([weather]).route("Check if I need an umbrella tomorrow in Oslo.").experts == []
    monkeypatch.setenv(LEXICON_ENV, str(extra))
    router = Router([weather])
    assert router.route("Check if I need an umbrella tomorrow in Oslo.").experts == ["expert-weather"]
    assert router.route("Plan my day in Oslo at 30 °C.").experts == ["expert-weather"]


def test_an_unreadable_user_lexicon_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv(LEXICON_ENV, str(bad))
    with pytest.raises(UsageError, match="router lexicon"):
        load_lexicon()


def test_grammar_keywords_come_from_the_grammar_beside_the_manifest(tmp_path: Path):
    grammar = 'root ::= "SELECT" ws cols ws "FROM" ws name\nws ::= " "\nname ::= [a-z]+\nbool ::= "true"'
    assert grammar_terms(grammar) == ("from", "select")
    source = json.loads((PUBLISHED / "expert-elastic" / "manifest.json").read_text(encoding="utf-8"))
    (tmp_path / "manifest.json").write_text(json.dumps(dict(source, name="expert-dsl")), encoding="utf-8")
    (tmp_path / "grammar.gbnf").write_text(grammar, encoding="utf-8")
    candidate = RouterCandidate.from_manifest(load_manifest(tmp_path))
    assert candidate.grammar_terms == ("from", "select")
    assert "qwen3" in candidate.tags  # tags are read; the lexicon's ignored_tags keep such words out of routing


def test_patterns_stay_fast_on_hostile_prompts(six: Router):
    import time

    hostile = ["select " * 30_000 + "from", "(:A {" * 20_000, "a-" * 60_000 + "*", '["' * 40_000,
               "import " * 30_000 + "from", "x(" + "a," * 50_000]
    started = time.perf_counter()
    for prompt in hostile:
        six.route(prompt)
    assert time.perf_counter() - started < 5.0
