"""The evaluation harness (expert_cli.sdk.evaluation, scripts/eval_experts.py) on a tiny expert and tiny base.

The expert's grammar forces the answer ``SELECT 1 + 1``, so its score is known in advance: it must be scored by
running it in sqlite (the reference ``SELECT 2`` is different text with the same result), while a reference
with another result scores 0."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from expert_factory import make_expert

from expert_cli.scoring.test_cases import parse_test_case
from expert_cli.sdk.evaluation import evaluate_expert, load_eval_cases

REPO_ROOT = Path(__file__).resolve().parents[2]
FORCED_SQL = 'root ::= "SELECT 1 + 1"\n'
SETUP = ["CREATE TABLE t (x INTEGER);", "INSERT INTO t VALUES (1), (2);"]
SUMMARY_KEYS = {"metric", "expert", "base", "n", "held_out_schema", "held_out_template", "router_accuracy"}


def _rows() -> list[dict]:
    system = "Dialect: sql\nSchema:\nCREATE TABLE t (x INTEGER);"
    def row(question: str, answer: str, held_out: str) -> dict:
        return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": question},
                             {"role": "assistant", "content": answer}],
                "metric": "sql_execution", "setup": SETUP, "meta": {"held_out": held_out}}
    return [row("What is one plus one?", "SELECT 2", "schema"),
            row("Add up every x in t.", "SELECT SUM(x) FROM t", "template"),
            row("List every x in t.", "SELECT x FROM t", "schema"),
            row("What is two minus zero?", "SELECT 2 - 0", "template")]


@pytest.fixture(scope="module")
def sql_expert(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_expert(tiny_model, tmp_path_factory.mktemp("experts") / "expert-sql", "expert-sql",
                         layout="dev", capabilities=["database:sql"], grammar=FORCED_SQL,
                         decoding={"temperature": 0.7, "max_new_tokens": 12, "grammar_file": "grammar.gbnf"})
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["training"]["dataset"] = {"path": "data/train.jsonl", "test_path": "data/test.jsonl"}
    manifest["routing"] = {"keywords": ["sql", "rows", "table"]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (folder / "data").mkdir()
    lines = [json.dumps(row) for row in _rows()]
    (folder / "data" / "test.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "data" / "train.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_expert_is_scored_by_executing_its_sql(sql_expert: Path):
    cases = load_eval_cases(sql_expert)
    evaluation = evaluate_expert(sql_expert, cases, router=lambda prompt: ["expert-sql"], batch_size=3)
    by_id = {outcome.case.id: outcome for outcome in evaluation.outcomes}
    assert [outcome.expert_answer for outcome in evaluation.outcomes] == ["SELECT 1 + 1"] * 4
    assert [by_id[case.id].expert.passed for case in cases] == [True, False, False, True]
    assert "differ" in by_id[cases[1].id].expert.detail
    assert evaluation.expert_score == 0.5
    assert evaluation.held_out_score("schema") == 0.5 and evaluation.held_out_score("template") == 0.5
    assert evaluation.router_accuracy == 1.0
    assert evaluation.metric == "sql_execution"


def test_bare_base_is_scored_on_the_same_prompts(sql_expert: Path):
    cases = load_eval_cases(sql_expert, limit=2)
    evaluation = evaluate_expert(sql_expert, cases)
    summary = evaluation.summary()
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["n"] == 2 and summary["router_accuracy"] is None
    assert 0.0 <= summary["base"] <= 1.0
    assert all(outcome.base is not None and outcome.base_answer != "SELECT 1 + 1" for outcome in evaluation.outcomes)


def test_keyword_cases_of_the_original_format_are_scored(sql_expert: Path):
    case = parse_test_case({"id": "kw", "prompt": "sum please", "expected_keywords": ["select", "+", "join"]}, 0)
    evaluation = evaluate_expert(sql_expert, [case], compare_base=False)
    outcome = evaluation.outcomes[0]
    assert outcome.expert.metric == "keywords"
    assert outcome.expert.score == pytest.approx(2 / 3)
    assert evaluation.base_score is None


def test_a_cases_json_schema_constrains_the_expert_and_the_bare_base(sql_expert: Path):
    schema = {"type": "object", "properties": {"sum": {"enum": [2, 3]}}, "required": ["sum"],
              "additionalProperties": False}
    case = parse_test_case({"id": "js", "prompt": "one plus one as JSON", "reference": '{"sum": 2}',
                            "metric": "json_equal", "json_schema": schema}, 0)
    outcome = evaluate_expert(sql_expert, [case]).outcomes[0]
    assert json.loads(outcome.expert_answer)["sum"] in (2, 3)  # not the grammar's SELECT 1 + 1
    assert json.loads(outcome.base_answer)["sum"] in (2, 3)


@pytest.mark.slow
def test_eval_script_prints_the_json_summary(sql_expert: Path, tiny_model: Path):
    command = [sys.executable, str(REPO_ROOT / "scripts" / "eval_experts.py"), "--experts-dir",
               str(sql_expert.parent), "--base-model", str(tiny_model), "--limit", "3", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    summary = document["experts"]["expert-sql"]
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["n"] == 3 and summary["expert"] == pytest.approx(1 / 3, abs=1e-4)
    assert all(0.0 <= summary[key] <= 1.0 for key in ("expert", "base", "router_accuracy"))
    assert document["wall_s"] > 0


def test_eval_script_reports_a_missing_adapter(tmp_path: Path, sql_expert: Path, tiny_model: Path):
    shutil.copytree(sql_expert, tmp_path / "expert-sql", ignore=shutil.ignore_patterns("weights"))
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "eval_experts.py"), "--experts-dir",
                           str(tmp_path), "--base-model", str(tiny_model), "--json"], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "has no adapter" in done.stderr and done.stdout == ""
