"""``expert-cli route``: installed experts, manifest files, JSON and human output, and every error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from expert_cli.core import paths
from expert_cli.packages.registry import InstalledExpert, registry_transaction

SQL_PROMPT = "Write a SQL query that lists all customers from Germany"


def manifest(name: str, keywords: list[str], capabilities: list[str], description: str = "") -> dict:
    return {"name": name, "version": "1.0.0", "description": description, "capabilities": capabilities,
            "base_model": {"name": "Qwen/Qwen3-0.6B"},
            "adapters": [{"type": "lora", "target_modules": ["q_proj"], "r": 8, "alpha": 16}],
            "routing": {"keywords": keywords, "exclude_keywords": ["explain"], "priority": 0.8}}


def install_fake(name: str, data: dict, exemplars: object = None, version: str = "1.0.0") -> Path:
    """Register an expert folder that holds only what routing reads (no weights needed)."""
    folder = paths.install_dir(name, version)
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({**data, "version": version}), encoding="utf-8")
    if exemplars is not None:
        text = exemplars if isinstance(exemplars, str) else json.dumps(exemplars)
        (folder / "routing_exemplars.json").write_text(text, encoding="utf-8")
    with registry_transaction() as registry:
        registry.add(InstalledExpert(name=name, version=version, base_model="Qwen/Qwen3-0.6B", path=str(folder),
                                     source="test", capabilities=data.get("capabilities", [])))
    return folder


@pytest.fixture
def installed() -> None:
    install_fake("expert-sql", manifest("expert-sql", ["sql", "query", "table"], ["query:sql"]))
    install_fake("expert-neo4j", manifest("expert-neo4j", ["cypher", "neo4j", "graph"], ["query:cypher"]))
    install_fake("expert-forecast", manifest("expert-forecast", [], [], "Weather"),
                 exemplars=["Will it rain in Lisbon tomorrow?", "Forecast the humidity and rain for Oslo",
                            "How much rain falls in Tokyo this weekend?"])


def test_routes_among_installed_experts_as_json(cli, installed):
    result = cli("route", SQL_PROMPT, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["prompt", "experts", "weights", "question", "knowledge_question", "threshold", "candidates"]
    assert document["prompt"] == SQL_PROMPT
    assert document["experts"] == ["expert-sql"] and document["weights"] == {"expert-sql": 1.0}
    assert document["candidates"][0]["name"] == "expert-sql" and document["candidates"][0]["reasons"]


def test_installed_exemplars_are_used(cli, installed):
    result = cli("route", "Rain and humidity forecast for Madrid", "--json")
    document = json.loads(result.stdout)
    assert document["experts"] == ["expert-forecast"]
    assert any(r.startswith("exemplar similarity") for r in document["candidates"][0]["reasons"])


def test_human_output_shows_the_decision_and_reasons(cli, installed):
    result = cli("route", "Write the SQL for the orders table and a Cypher query for the friends graph")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("experts: expert-sql (weight ") and "expert-neo4j (weight " in lines[0]
    assert '    - keyword "cypher"' in lines


def test_generic_prompt_goes_to_the_base_model(cli, installed):
    result = cli("route", "What is the capital of France?")
    assert result.exit_code == 0
    assert result.stdout.startswith("experts: none, the base model answers")


def test_experts_option_restricts_the_candidates(cli, installed):
    result = cli("route", SQL_PROMPT, "--experts", "neo4j, forecast", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["experts"] == [] and {c["name"] for c in document["candidates"]} <= {"expert-neo4j", "expert-forecast"}


def test_unknown_expert_lists_the_installed_ones(cli, installed):
    result = cli("route", SQL_PROMPT, "--experts", "sql,json")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: `expert-json` is not installed (installed: ")
    assert "`expert-sql@1.0.0`" in result.stderr and "hint:" in result.stderr


def test_no_experts_installed_hints_to_install(cli):
    result = cli("route", SQL_PROMPT)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "error: no experts are installed, so there is nothing to route among"
    assert "expert-cli install" in result.stderr.splitlines()[1]


def test_routes_among_manifest_files_without_any_install(cli, fixtures_dir):
    files = [fixtures_dir / "expert-sql-manifest.json", fixtures_dir / "expert-neo4j-manifest.json"]
    result = cli("route", "MATCH (p:Person) RETURN p.name", "--manifest", files[0], "--manifest", files[1], "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["experts"] == ["expert-neo4j"]


def test_manifest_folder_with_exemplars_beside_it(cli, tmp_path):
    folder = tmp_path / "expert-forecast"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest("expert-forecast", [], [])), encoding="utf-8")
    (folder / "routing_exemplars.json").write_text(json.dumps(["Rain forecast for Lisbon", "Humidity in Oslo"]))
    result = cli("route", "Rain and humidity forecast for Madrid", "--manifest", folder, "--json")
    assert json.loads(result.stdout)["experts"] == ["expert-forecast"]


def test_empty_prompt_is_a_usage_error(cli, installed):
    result = cli("route", "   ")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the prompt is empty")


def test_missing_manifest_file_is_an_error(cli, tmp_path):
    result = cli("route", SQL_PROMPT, "--manifest", tmp_path / "nope.json")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no manifest at ")


def test_unreadable_exemplars_warn_and_still_route(cli):
    install_fake("expert-sql", manifest("expert-sql", ["sql", "query"], ["query:sql"]), exemplars="{not json")
    result = cli("route", SQL_PROMPT, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["experts"] == ["expert-sql"]
    assert "warning:" in result.stderr and "routing_exemplars.json" in result.stderr


def test_an_installed_expert_without_its_manifest_routes_on_its_name(cli):
    folder = install_fake("expert-sql", manifest("expert-sql", ["query"], ["query:sql"]))
    shutil.rmtree(folder)
    result = cli("route", "Write a SQL statement for the report", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["experts"] == ["expert-sql"]
    assert "routing on its name and capabilities only" in result.stderr


def test_experts_naming_no_expert_is_a_usage_error(cli, installed):
    result = cli("route", "users older than 30", "--experts", " , ")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[0] == "error: `--experts` names no expert"


def test_a_package_given_as_a_manifest_says_what_it_is(cli, tmp_path: Path):
    import gzip

    package = tmp_path / "expert-x.v1.0.0.expert"
    package.write_bytes(gzip.compress(b"not a manifest"))
    result = cli("route", "hello", "--manifest", package)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: `{package}` is a `.expert` package, not a manifest",
        f"hint: pass the expert folder or its `manifest.json`; `expert-cli validate {package}` checks a package"]


def test_manifest_folders_route_on_exemplars_sampled_from_their_training_data(cli):
    experts = Path(__file__).resolve().parents[2] / "experts"
    prompt = ("Schema:\n(:Ship {name: STRING, crew: INTEGER})\n(:Port {name: STRING})\n(:Ship)-[:DOCKED_AT]->(:Port)"
              "\n\nWhich ships are docked at the port Lisbon?")
    args = [a for name in ("expert-sql", "expert-neo4j", "expert-json") for a in ("--manifest", experts / name)]
    result = cli("route", prompt, *args, "--json")
    document = json.loads(result.stdout)
    assert result.exit_code == 0 and document["experts"] == ["expert-neo4j"]
    reasons = next(c["reasons"] for c in document["candidates"] if c["name"] == "expert-neo4j")
    assert any(reason.startswith("its notation") for reason in reasons)
