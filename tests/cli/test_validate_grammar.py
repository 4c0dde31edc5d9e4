"""`validate` on an expert folder checks that its grammar compiles and names the line at fault."""

from __future__ import annotations

import json
import shutil


def _expert(tmp_path, fixtures_dir, grammar: str):
    folder = tmp_path / "expert-sql"
    folder.mkdir()
    shutil.copy(fixtures_dir / "expert-sql-manifest.json", folder / "manifest.json")
    (folder / "grammar.gbnf").write_text(grammar, encoding="utf-8")
    return folder


def test_real_grammar_compiles(cli, tmp_path, fixtures_dir):
    grammar = (fixtures_dir / "expert-sql-grammar.gbnf").read_text(encoding="utf-8")
    result = cli("validate", "--json", _expert(tmp_path, fixtures_dir, grammar))
    report = json.loads(result.stdout)
    check = next(c for c in report["checks"] if c["name"] == "grammar compiles")
    assert result.exit_code == 0 and check["status"] == "pass"


def test_broken_grammar_fails_naming_its_line(cli, tmp_path, fixtures_dir):
    grammar = 'root ::= item+\nitem ::= "a" ) "b"\nother ::= "x"\n'
    result = cli("validate", "--json", _expert(tmp_path, fixtures_dir, grammar))
    report = json.loads(result.stdout)
    check = next(c for c in report["checks"] if c["name"] == "grammar compiles")
    assert result.exit_code == 1
    assert check["status"] == "fail" and "line 2" in check["detail"]


def test_missing_grammar_file_named_by_manifest_fails(cli, tmp_path, fixtures_dir):
    folder = _expert(tmp_path, fixtures_dir, "")
    (folder / "grammar.gbnf").unlink()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["training"]["decoding"]["grammar_file"] = "grammar.gbnf"
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = cli("validate", "--json", folder)
    assert result.exit_code == 1
    assert any(c["name"] == "grammar compiles" and c["status"] == "fail" for c in json.loads(result.stdout)["checks"])


def _with_names_rule(folder, rule: str):
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["training"]["decoding"]["names_from_prompt"] = rule
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_a_names_rule_the_grammar_defines_passes(cli, tmp_path, fixtures_dir):
    folder = _with_names_rule(_expert(tmp_path, fixtures_dir, 'root ::= "x " name\nname ::= [a-z]+\n'), "name")
    result = cli("validate", "--json", folder)
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "names from the prompt")
    assert result.exit_code == 0 and check["status"] == "pass"


def test_a_names_rule_the_grammar_lacks_fails_naming_it(cli, tmp_path, fixtures_dir):
    folder = _with_names_rule(_expert(tmp_path, fixtures_dir, 'root ::= "x"\n'), "schema-name")
    result = cli("validate", "--json", folder)
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "names from the prompt")
    assert result.exit_code == 1
    assert check["status"] == "fail" and "`schema-name`" in check["detail"]
