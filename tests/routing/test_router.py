"""The router: each rule on synthetic candidates, the real fixture manifests, determinism and the quirks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expert_cli.core.errors import UsageError
from expert_cli.manifest.model import load_manifest, manifest_from_dict
from expert_cli.routing.router import MAX_REPORTED, Router, RouterCandidate
from expert_cli.routing.text import has_task_cue, is_question, normalize, tokenize

SQL = RouterCandidate(
    name="expert-sql", description="Text to SQL query generation.", priority=0.85,
    keywords=("sql", "database", "query", "table", "select", "group by", "users", "show", "list", "find all"),
    exclude_keywords=("explain", "what is", "cypher"),
    capabilities=("database:sql", "database:postgresql", "feature:group_by", "language:en"),
)
CYPHER = RouterCandidate(
    name="expert-neo4j", description="Neo4j Cypher query generation for graph databases.", priority=0.9,
    keywords=("cypher", "neo4j", "graph", "node", "relationship", "match", "return", "graph database"),
    exclude_keywords=("explain", "what is", "sql"),
    capabilities=("database:neo4j", "query:cypher", "language:en"),
)
TYPESCRIPT = RouterCandidate(name="expert-typescript", description="TypeScript code generation and type error fixing.")


def route(prompt: str, *candidates: RouterCandidate) -> list[str]:
    return Router(list(candidates) or [SQL, CYPHER]).route(prompt).experts


def reasons_of(decision, name: str) -> list[str]:
    return next(c["reasons"] for c in decision.candidates if c["name"] == name)


def minimal_manifest(name: str, **extra) -> dict:
    return {"name": name, "version": "1.0.0", "base_model": {"name": "Qwen/Qwen3-0.6B"},
            "adapters": [{"type": "lora", "target_modules": ["q_proj"], "r": 8, "alpha": 16}], **extra}


# -- words, phrases and stems ------------------------------------------------------------------------
def test_keywords_match_whole_words_never_substrings():
    assert route("Write a SQL query for the orders table") == ["expert-sql"]
    assert route("Configure nosql replication and sqlalchemy pools for my homelab") == []


def test_plural_and_ing_forms_match_their_keyword():
    assert normalize("queries nodes relationships matching") == normalize("query node relationship match")
    assert route("Find nodes connected by relationships in the graph") == ["expert-neo4j"]


def test_phrase_keywords_need_consecutive_words():
    only_phrase = RouterCandidate(name="expert-agg", keywords=("group by", "having clause"))
    assert route("Aggregate the rows with GROUP BY region and a HAVING clause", only_phrase) == ["expert-agg"]
    assert route("Please group the rows, then sort by region and add a clause on having", only_phrase) == []


def test_capabilities_match_as_words_and_language_codes_never_fire():
    decision = Router([SQL]).route("Generate the report: sentences, tokens, tenses")  # "en" in every word
    assert decision.experts == []
    assert all("language:en" not in reason for c in decision.candidates for reason in c["reasons"])
    decision = Router([SQL]).route("Migrate this postgresql table to a new schema")
    assert "capability database:postgresql" in reasons_of(decision, "expert-sql")


@pytest.mark.parametrize("prompt", [
    "Generate a paragraph about autumn",  # "graph" inside "paragraph", "en" inside "Generate"
    "Buy a matchbox and a notebook",  # "match" inside "matchbox"
    "Render the nodejs site with a returning user",  # "node" inside "nodejs"
    "Write about tabletop games",  # "table" inside "tabletop"
])
def test_original_substring_quirks_do_not_route(prompt):
    assert route(prompt) == []


# -- evidence strength, excludes, priority -------------------------------------------------------------
def test_common_word_keywords_alone_never_route():
    decision = Router([SQL]).route("Show me a list of good films")
    assert decision.experts == []
    assert reasons_of(decision, "expert-sql")[-1].startswith("not chosen: no strong evidence")


def test_description_words_alone_never_route():
    assert route("Tips for fixing a bike", TYPESCRIPT) == []


def test_exclude_keyword_vetoes_an_otherwise_chosen_expert():
    plain = RouterCandidate(name="expert-sql", keywords=SQL.keywords, capabilities=SQL.capabilities)
    assert route("Show the database query plan for this table", plain) == ["expert-sql"]
    excluding = RouterCandidate(name="expert-sql", keywords=SQL.keywords, capabilities=SQL.capabilities,
                                exclude_keywords=("query plan",))
    decision = Router([excluding]).route("Show the database query plan for this table")
    assert decision.experts == []
    assert 'exclude keyword "query plan" (-2.5)' in reasons_of(decision, "expert-sql")


def test_a_question_opener_exclude_gives_way_to_the_routers_own_knowledge_gate():
    # "what is" / "explain" excludes are the manifest's knowledge gate: a knowledge question still goes to the
    # base, but a question that carries its schema is a task and goes to the expert (issue 17)
    assert route("What is a database table?") == []
    assert route("What is the total per region? Table sales(region, amount)") == ["expert-sql"]


def test_priority_then_name_break_ties():
    twin = {"keywords": ("kafka", "topic", "consumer")}
    low, high = RouterCandidate(name="expert-a", priority=0.5, **twin), RouterCandidate(name="expert-b", priority=0.9, **twin)
    assert route("Create a kafka topic and a consumer", low, high)[0] == "expert-b"
    same_a, same_b = RouterCandidate(name="expert-a", **twin), RouterCandidate(name="expert-b", **twin)
    first = Router([same_b, same_a]).route("Create a kafka topic and a consumer")
    assert [c["name"] for c in first.candidates] == ["expert-a", "expert-b"]


def test_common_keywords_written_as_code_count():
    assert route("MATCH (p:Person)-[:KNOWS]->(f) RETURN f") == ["expert-neo4j"]
    assert route("match the colours and return the shirt") == []


def test_a_common_word_phrase_written_as_code_counts_like_a_single_word():
    phrase_only = RouterCandidate(name="expert-ddl", keywords=("create table", "table"))
    schema = "CREATE TABLE ships (id INTEGER PRIMARY KEY, name TEXT)\n\nI need the name of all ships."
    assert route(schema, phrase_only) == ["expert-ddl"]
    assert route("Create table manners for the guests of all ships.", phrase_only) == []


# -- generic and knowledge questions ---------------------------------------------------------------------
def test_explain_this_typescript_error_is_not_generic_when_a_typescript_expert_is_loaded():
    prompt = "Explain this TypeScript error: Type 'string' is not assignable to type 'number'"
    assert route(prompt, SQL, TYPESCRIPT) == ["expert-typescript"]
    assert route(prompt, SQL, CYPHER) == []


@pytest.mark.parametrize("prompt", [
    "What is the capital of France?", "Why is the sky blue?", "Tell me about the Roman empire",
    "What are the advantages of a graph database?", "Describe how a relationship works in a graph",
])
def test_knowledge_questions_go_to_the_base(prompt):
    assert route(prompt, SQL, CYPHER, TYPESCRIPT) == []


def test_a_question_that_asks_for_a_query_routes():
    assert route("How do I find all nodes connected to Alice in Neo4j?") == ["expert-neo4j"]
    assert route("Which users signed up in May? Write the SQL.") == ["expert-sql"]


def test_question_form_and_task_cues():
    assert is_question("What is a join?", tokenize("What is a join?"))
    assert is_question("Is it done?", tokenize("Is it done?"))
    assert not is_question("List all users", tokenize("List all users"))
    assert has_task_cue(tokenize("How do I list users?")) and has_task_cue(tokenize("Fix this error"))
    assert not has_task_cue(tokenize("What are the advantages of SQL?"))


# -- exemplars ------------------------------------------------------------------------------------------
def test_exemplars_route_prompts_like_the_training_data():
    weather = RouterCandidate(name="expert-forecast", exemplars=(
        "Will it rain in Lisbon tomorrow afternoon?", "Forecast the rainfall and humidity for Oslo",
        "How much rain will fall in Tokyo this weekend?", "Give the humidity and rain forecast for Paris",
    ))
    decision = Router([weather, SQL]).route("Rain and humidity forecast for Madrid")
    assert decision.experts == ["expert-forecast"]
    assert any(r.startswith("exemplar similarity") for r in reasons_of(decision, "expert-forecast"))
    assert route("Write a haiku about cats", weather, SQL) == []


# -- several experts ----------------------------------------------------------------------------------
def test_a_prompt_naming_two_domains_composes_both_with_weights_summing_to_one():
    decision = Router([SQL, CYPHER]).route("Write the SQL for the users table and the Cypher for the friends graph")
    assert decision.experts == ["expert-sql", "expert-neo4j"]
    assert sum(decision.weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert list(decision.weights) == decision.experts and all(w > 0 for w in decision.weights.values())


def test_an_exclude_of_the_other_domain_keeps_single_domain_prompts_single():
    assert route("Write a Cypher query that lists the rows of the users table") == ["expert-neo4j"]


def test_an_unnamed_expert_does_not_join_a_named_one():
    loose = RouterCandidate(name="expert-sql", keywords=("query", "find all"))
    assert route("Write a Cypher query to find all friends of Alice", loose, CYPHER) == ["expert-neo4j"]


def test_at_most_ten_experts_are_chosen():
    candidates = [RouterCandidate(name=f"expert-tool{i}", keywords=(f"toolword{i}",), capabilities=(f"tool:toolword{i}",))
                  for i in range(12)]
    prompt = "Combine " + " and ".join(f"toolword{i}" for i in range(12))
    assert len(Router(candidates).route(prompt).experts) == 10
    assert len(Router(candidates, max_experts=3).route(prompt).experts) == 3


# -- API -----------------------------------------------------------------------------------------------
def test_decision_json_has_exactly_the_documented_keys():
    document = Router([SQL, CYPHER]).route("Write a SQL query listing users").to_dict()
    assert list(document) == ["prompt", "experts", "weights", "question", "knowledge_question", "threshold", "candidates"]
    assert document["experts"] == ["expert-sql"] and document["weights"] == {"expert-sql": 1.0}
    assert all(set(c) == {"name", "score", "reasons"} for c in document["candidates"])


def test_among_restricts_the_candidates_and_rejects_unknown_names():
    router = Router([SQL, CYPHER])
    assert router.route("Write a SQL query and a Cypher query", among=["expert-neo4j"]).experts == ["expert-neo4j"]
    with pytest.raises(UsageError, match="expert-json"):
        router.route("anything", among=["expert-json"])


def test_duplicate_candidate_names_are_rejected():
    with pytest.raises(UsageError, match="expert-sql"):
        Router([SQL, SQL])


def test_candidate_from_manifest_reads_routing_and_capabilities():
    manifest = manifest_from_dict(minimal_manifest(
        "expert-k8s", description="Kubernetes manifests", capabilities=["tool:kubectl"],
        routing={"keywords": ["kubernetes", "helm"], "exclude_keywords": ["why"], "priority": 0.7}))
    candidate = RouterCandidate.from_manifest(manifest, ["Deploy nginx with helm", 3, " "])
    assert candidate.keywords == ("kubernetes", "helm") and candidate.exclude_keywords == ("why",)
    assert candidate.priority == 0.7 and candidate.capabilities == ("tool:kubectl",)
    assert candidate.exemplars == ("Deploy nginx with helm",)
    bare = RouterCandidate.from_manifest(manifest_from_dict(minimal_manifest("expert-bare")))
    assert bare.keywords == () and bare.priority is None


def test_large_routers_choose_the_same_way_and_report_at_most_twenty():
    many = [RouterCandidate(name=f"expert-filler{i}", keywords=(f"fillerword{i}", "list", "show")) for i in range(40)]
    decision = Router([*many, SQL, CYPHER]).route("Write a Cypher query to find friends in the graph")
    assert decision.experts == ["expert-neo4j"]
    assert len(decision.candidates) <= MAX_REPORTED


# -- the real fixture manifests --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixture_router(fixtures_dir) -> Router:
    names = ("expert-sql-manifest.json", "expert-neo4j-manifest.json")
    return Router.from_manifests(load_manifest(fixtures_dir / name) for name in names)


@pytest.mark.parametrize(("prompt", "expected"), [
    ("Write a SQL query that returns all customers from Germany", ["expert-sql"]),
    ("Show all users older than 30", ["expert-sql"]),
    ("Count the number of orders per customer", ["expert-sql"]),
    ("SELECT name FROM users WHERE active = 1 ORDER BY name", ["expert-sql"]),
    ("Write a Cypher query to find all friends of Alice", ["expert-neo4j"]),
    ("In Neo4j, find the shortest path between two Person nodes", ["expert-neo4j"]),
    ("MATCH (p:Person)-[:KNOWS]->(f) RETURN f.name", ["expert-neo4j"]),
    ("Find nodes in graph database with relationships", ["expert-neo4j"]),
    ("What is the capital of France?", []),
    ("Write a short poem about the ocean", []),
    ("Write a Python function that reverses a string", []),
    ("Find all lines matching a regex with grep", []),
    ("Explain what a graph database is", []),
    ("Write the SQL for the orders table and a Cypher query for friends of friends", ["expert-sql", "expert-neo4j"]),
])
def test_real_manifests_route_as_a_person_would(fixture_router, prompt, expected):
    assert fixture_router.route(prompt).experts == expected


# -- properties -----------------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_routing_never_raises_and_is_deterministic(text):
    first = Router([SQL, CYPHER, TYPESCRIPT]).route(text).to_dict()
    second = Router([TYPESCRIPT, CYPHER, SQL]).route(text).to_dict()
    assert first == second
    assert len(first["experts"]) == len(set(first["experts"])) <= 10
    if first["experts"]:
        assert sum(first["weights"].values()) == pytest.approx(1.0, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["sql", "cypher", "graph", "What", "is", "explain", "SELECT", "MATCH", "table",
                                 "users", "show", "?", "and", "typescript", "error", "this", "find all", "é"]),
                max_size=25))
def test_routing_word_soups_is_deterministic(words):
    text = " ".join(words)
    router = Router([SQL, CYPHER, TYPESCRIPT])
    assert router.route(text).to_dict() == router.route(text).to_dict()


def test_exemplar_shortcut_for_frequent_terms_gives_exact_similarities(monkeypatch):
    from expert_cli.routing import index as router_index

    sets = [[f"deploy the widget{i} service", f"restart widget{i} pods", "service status report"] for i in range(60)]
    terms = set(normalize("widget7 service pods"))
    fast = router_index.ExemplarIndex(sets).similarities(terms, must=[3])
    monkeypatch.setattr(router_index, "FREQUENT_FLOOR", 10_000)
    exact = router_index.ExemplarIndex(sets).similarities(terms)
    assert set(fast) == {3, 7}
    assert all(fast[c] == pytest.approx(exact[c]) for c in fast)
    assert exact[7] > exact[3] > 0
