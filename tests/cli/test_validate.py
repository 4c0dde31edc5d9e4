"""`expert-cli validate PATH [--strict] [--json]`: numbered checks, a summary, exit 1 when anything fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hivellm"
EXPERT_SQL = FIXTURES / "expert-sql-manifest.json"
MANIFEST_V1 = FIXTURES / "manifest_v1.json"


def check(report: dict, name: str) -> dict:
    [found] = [c for c in report["checks"] if c["name"].startswith(name)]
    return found


@pytest.mark.parametrize("flags", [[], ["--strict"]], ids=["lenient", "strict"])
def test_expert_sql_manifest_passes(cli, flags: list[str]):
    result = cli("validate", *flags, EXPERT_SQL)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Validating manifest expert-sql@0.3.0")
    assert lines[1].startswith("  1. ✓ manifest is readable JSON")
    assert lines[-1].startswith("valid: ")
    assert ("JSON Schema (strict)" in result.stdout) == bool(flags)


def test_expert_sql_manifest_passes_strict_as_json(cli):
    result = cli("validate", "--strict", "--json", EXPERT_SQL)
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["strict"] is True
    assert (report["name"], report["version"], report["kind"]) == ("expert-sql", "0.3.0", "manifest")
    assert check(report, "JSON Schema")["status"] == "pass"
    assert [c["number"] for c in report["checks"]] == list(range(1, len(report["checks"]) + 1))


def test_manifest_v1_strict_json_reports_its_schema_errors(cli):
    result = cli("validate", "--strict", "--json", MANIFEST_V1)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert check(report, "manifest rules")["status"] == "pass"
    schema = check(report, "JSON Schema")
    assert schema["status"] == "fail"
    assert [(p["path"], p["line"]) for p in schema["problems"]] == [
        ("(root)", 1), ("(root)", 1), ("(root)", 1), ("name", 2), ("adapters[0].sha256", 25),
    ]
    messages = " ".join(p["message"] for p in schema["problems"])
    for expected in ("'license'", "'quality_metrics'", "'perf'", "'test-expert-v1'", "'adapter_hash'"):
        assert expected in messages
    assert report["summary"]["fail"] == 1


def test_manifest_v1_passes_the_lenient_load(cli):
    result = cli("validate", MANIFEST_V1)
    assert result.exit_code == 0
    assert "JSON Schema" not in result.stdout
    assert result.stdout.splitlines()[-1].startswith("valid: ")


def test_manifest_v1_strict_text_lists_each_problem_with_path_and_line(cli):
    result = cli("validate", "--strict", MANIFEST_V1)
    assert result.exit_code == 1
    assert "✗ JSON Schema (strict): 5 schema error(s)" in result.stdout
    assert "- `adapters[0].sha256` (line 25): " in result.stdout
    assert result.stdout.splitlines()[-1].startswith("INVALID: ")


def test_an_expert_folder(cli, tmp_path: Path):
    (tmp_path / "manifest.json").write_text(MANIFEST_V1.read_text(encoding="utf-8"), encoding="utf-8")
    result = cli("validate", "--json", tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "expert" and report["name"] == "test-expert-v1"
    assert report["target"] == str(tmp_path)
    assert check(report, "adapter weights")["status"] == "skip"  # not trained yet


def test_soft_prompt_files_are_checked(cli, tmp_path: Path):
    manifest = json.loads(EXPERT_SQL.read_text(encoding="utf-8"))
    manifest["soft_prompts"] = [{"name": "style", "path": "soft_prompts/style.pt", "tokens": 4}]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    report = json.loads(cli("validate", "--json", tmp_path).stdout)
    assert check(report, "soft prompts")["status"] == "skip"  # not trained yet
    trained = tmp_path / "weights" / "qwen3-0-6b" / "soft_prompts" / "style.pt"
    trained.parent.mkdir(parents=True)
    trained.write_bytes(b"tensor")
    report = json.loads(cli("validate", "--json", tmp_path).stdout)
    passed = check(report, "soft prompts")
    assert passed["status"] == "pass" and str(trained) in passed["detail"]


def test_a_folder_without_a_manifest_fails(cli, tmp_path: Path):
    result = cli("validate", "--json", tmp_path)
    assert result.exit_code == 1
    first = json.loads(result.stdout)["checks"][0]
    assert first["status"] == "fail" and "no manifest at" in first["detail"]


def test_a_lenient_rule_failure_names_path_and_line(cli, tmp_path: Path):
    data = json.loads(MANIFEST_V1.read_text())
    data["training"]["config"]["epochs"] = 0
    text = json.dumps(data, indent=2)
    (tmp_path / "manifest.json").write_text(text)
    line = text[: text.index('"epochs": 0')].count("\n") + 1
    result = cli("validate", tmp_path / "manifest.json")
    assert result.exit_code == 1
    assert f"- `training.config.epochs` (line {line}): must be greater than 0" in result.stdout


def test_bad_json_reports_line_and_column(cli, tmp_path: Path):
    bad = tmp_path / "manifest.json"
    bad.write_text('{\n  "name": "expert-x",\n  "version": "1.0.0",,\n}\n')
    result = cli("validate", "--json", bad)
    assert result.exit_code == 1
    first = json.loads(result.stdout)["checks"][0]
    assert first["status"] == "fail"
    assert "line 3, column 22" in first["detail"]
    text = cli("validate", bad)
    assert text.exit_code == 1 and "line 3, column 22" in text.stdout


def test_a_missing_path_is_an_error(cli, tmp_path: Path):
    missing = tmp_path / "nope.json"
    result = cli("validate", missing)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: `{missing}` does not exist\nhint: ")


def test_path_is_required(cli):
    result = cli("validate")
    assert result.exit_code == 2


def test_a_binary_file_is_not_a_manifest(cli, tmp_path: Path):
    binary = tmp_path / "manifest.json"
    binary.write_bytes(b"\xff\xfe{\x00}\x00")
    result = cli("validate", binary, "--json")
    assert result.exit_code == 1
    check = json.loads(result.stdout)["checks"][0]
    assert check["status"] == "fail"
    assert check["detail"] == f"`{binary}` is not a UTF-8 text file (byte 0), so not a manifest"
