"""``expert-cli validate EXPERT --test-cases FILE``: expert vs bare base per case, exit 1 below the pass mark."""

from __future__ import annotations

import json

import pytest
from training_helpers import chat_rows, make_expert

from expert_cli.training.trainer import TrainRequest, train_expert


@pytest.fixture(scope="module")
def trained_expert(tmp_path_factory, tiny_model):
    expert = make_expert(tmp_path_factory.mktemp("tc") / "e", tiny_model, chat_rows(4))
    manifest = json.loads((expert / "manifest.json").read_text())
    manifest["training"]["decoding"] = {"max_new_tokens": 8, "temperature": 0.0}
    (expert / "manifest.json").write_text(json.dumps(manifest))
    train_expert(TrainRequest(target=expert, max_steps=1))
    return expert


def test_the_original_template_runs_on_expert_and_base(cli, trained_expert, fixtures_dir):
    result = cli("validate", trained_expert, "--test-cases", fixtures_dir / "template-test_cases.json", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # no progress with --json, transformers' loading bars included
    suite = json.loads(result.stdout)["test_cases"]
    assert suite["ok"] is True and suite["required_cases"] == 2 and suite["n"] == 3
    assert [case["id"] for case in suite["cases"]] == ["basic_001", "basic_002", "hard_001"]
    assert all(case["expert"]["metric"] == "keywords" and case["base"] is not None for case in suite["cases"])
    assert suite["expert_pass_rate"] == suite["base_pass_rate"] == 1.0


def test_below_the_pass_mark_exits_1_with_per_case_lines(cli, trained_expert, tmp_path):
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"test_cases": [
        {"id": "sql_1", "prompt": "show the users", "expected_keywords": ["ZZZ_NEVER_SAID"]}]}))
    result = cli("validate", trained_expert, "--test-cases", cases)
    assert result.exit_code == 1
    assert "1. sql_1: expert ✗ 0.00, base ✗ 0.00 - 0/1 keywords found" in result.stdout
    assert "FAIL: expert passed 0% of 1 required case(s), base 0% (pass mark 80%)" in result.stdout


def test_a_missing_cases_file_fails_before_any_check(cli, tmp_path, tiny_model):
    expert = make_expert(tmp_path / "e", tiny_model, chat_rows(2))
    result = cli("validate", expert, "--test-cases", tmp_path / "nope.json")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: no test cases at `{tmp_path / 'nope.json'}`",
                                          "hint: pass a `tests/test_cases.json` file"]
