"""``expert-cli dataset generate|check|dedupe`` through the CLI; ``check`` on the reference experts' datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("sqlglot")
pytest.importorskip("datasketch")

from generation_helpers import make_sql_expert, sql_row, write_rows
from replay_server import ok, replay_server

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def expert(tmp_path):
    return make_sql_expert(tmp_path / "expert-sql", generation={"model": "teacher", "temperature": 0.2,
                                                                "out": "data/gen.jsonl"})


def test_generate_writes_rows_and_reports_json(cli, expert, monkeypatch):
    monkeypatch.setenv("EXPERT_GENERATE_API_KEY", "sk-test")
    with replay_server([], lambda n: ok(json.dumps(sql_row(n)))) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        result = cli("dataset", "generate", expert, "--count", "3", "--concurrency", "2", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == 3 and report["complete"] and report["tokens"] == 90 and report["rejected"] == {}
    assert len((expert / "data" / "gen.jsonl").read_text().splitlines()) == 3  # the manifest's `out`
    body = server.records[0].body
    assert body["model"] == "teacher" and body["temperature"] == 0.2  # settings from the manifest block
    assert server.records[0].headers["authorization"] == "Bearer sk-test"


def test_generate_stopped_by_a_budget_exits_1_and_says_how_to_continue(cli, expert):
    with replay_server([], lambda n: ok("no idea")) as server:
        result = cli("dataset", "generate", expert, "-n", "2", "--base-url", server.url, "--max-requests", "2")
    assert result.exit_code == 1
    assert "stopped: 0 of 2 rows" in result.stderr and "rejected: format 2" in result.stderr
    assert "warning: request budget (2) reached; run again with `--resume` to continue" in result.stderr


def test_generate_needs_a_model(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("EXPERT_GENERATE_MODEL", raising=False)
    result = cli("dataset", "generate", make_sql_expert(tmp_path / "e"), "--count", "1")
    assert result.exit_code == 2 and "error: no model to generate with" in result.stderr


def rows_with_problems(expert: Path) -> Path:
    return write_rows(expert / "new.jsonl", [
        sql_row(1), sql_row(1), sql_row(2, answer="SELECT nope FROM users"), {"foo": "bar"}, sql_row(100),
        sql_row(3, question="What is the average age of the users?", answer="SELECT AVG(age) FROM users"),
        sql_row(4)])


def test_check_reports_every_rejected_row_and_exits_1(cli, expert):
    result = cli("dataset", "check", rows_with_problems(expert), "--expert", expert)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines[:-1]] == ["duplicate", "sql", "format", "duplicate", "leakage"]
    assert lines[1].startswith(f"{expert / 'new.jsonl'}:3: sql: SQL does not run against the row's schema")
    assert lines[-1] == "REJECTED: 2 of 7 rows pass (format 1, sql 1, leakage 1, duplicate 2)"
    document = json.loads(cli("dataset", "check", expert / "new.jsonl", "--expert", expert, "--json").stdout)
    assert document["rejected"] == {"format": 1, "sql": 1, "leakage": 1, "duplicate": 2}
    assert sum(len(rows) for rows in document["examples"].values()) == 5


def test_dedupe_writes_only_the_rows_that_pass(cli, expert, tmp_path):
    out = tmp_path / "clean.jsonl"
    result = cli("dataset", "dedupe", rows_with_problems(expert), "--expert", expert, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line) for line in out.read_text().splitlines()] == [sql_row(1), sql_row(4)]
    assert "kept 2 of 7 rows" in result.stderr


@pytest.mark.parametrize("name", ["expert-sql", "expert-json", pytest.param("expert-neo4j", marks=pytest.mark.slow)])
@pytest.mark.parametrize("split, rows", [("valid", 200), ("test", 160)])
def test_check_passes_the_reference_experts_splits(cli, name, split, rows):
    """Every row parses, its query runs on its schema (test rows: on their `setup` data) or its JSON matches its
    fields (test rows: their `json_schema`), and none repeats train; valid rows do not leak the test set."""
    pytest.importorskip("ladybug")
    folder = REPO / "experts" / name
    result = cli("dataset", "check", folder / "data" / f"{split}.jsonl", "--expert", folder, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report["examples"]
    assert report["checked"] == report["kept"] == rows
