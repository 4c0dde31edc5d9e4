"""``expert-cli chat`` on the tiny model with real tiny experts installed through the real installer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from expert_cli.packages.build import build_package
from expert_cli.packages.install import install_expert
from expert_cli.packages.staging import InstallOptions

SQL_PROMPT = "Write a SQL query that lists every row of the users table"
SQL_GRAMMAR = 'root ::= "SELECT " [a-z ]+\n'


def write_tiny_expert(root: Path, adapter: Path, base: str, name: str, keywords: list[str],
                      capabilities: list[str], decoding: dict[str, Any], grammar: str | None = None) -> Path:
    """An expert folder around the ``tiny_adapter`` fixture: manifest, training data, optional grammar."""
    root.mkdir(parents=True)
    manifest = {
        "name": name, "version": "0.1.0", "schema_version": "2.0", "description": f"tiny {name} expert",
        "author": "Tests", "capabilities": capabilities,
        "base_models": [{"name": base, "prompt_template": "qwen3",
                         "adapters": [{"type": "lora", "target_modules": ["q_proj", "v_proj"], "r": 2, "alpha": 4}]}],
        "routing": {"keywords": keywords, "priority": 0.7},
        "training": {"dataset": {"path": "data/train.jsonl"}, "decoding": decoding},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    for file_name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copyfile(adapter / file_name, root / file_name)
    (root / "data").mkdir()
    rows = [{"messages": [{"role": "user", "content": f"{keywords[0]} request number {i} on {keywords[-1]}"},
                          {"role": "assistant", "content": "ok"}]} for i in range(12)]
    (root / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    if grammar:
        (root / "grammar.gbnf").write_text(grammar, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def expert_sources(tiny_model: Path, tiny_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A packaged SQL expert (.expert file) and a Cypher expert folder, both on the tiny model."""
    root = tmp_path_factory.mktemp("chat-experts")
    sql = write_tiny_expert(root / "sql", tiny_adapter, str(tiny_model), "expert-sql", ["sql", "query", "table"],
                            ["query:sql"], {"temperature": 0, "max_new_tokens": 6}, SQL_GRAMMAR)
    neo4j = write_tiny_expert(root / "neo4j", tiny_adapter, str(tiny_model), "expert-neo4j",
                              ["cypher", "neo4j", "graph"], ["query:cypher"], {"temperature": 0, "max_new_tokens": 5})
    other = write_tiny_expert(root / "other", tiny_adapter, "builtin:tiny-qwen3", "expert-other", ["weather"],
                              ["weather"], {"temperature": 0})
    (root / "out").mkdir()
    return {"sql": build_package(sql, root / "out").path, "neo4j": neo4j, "other": other}


@pytest.fixture
def installed(expert_sources: dict[str, Path]) -> None:
    install_expert(str(expert_sources["sql"]), InstallOptions(allow_unsigned=True))
    install_expert(str(expert_sources["neo4j"]), InstallOptions(allow_unsigned=True))


def error_line(result) -> str:
    return result.stderr.splitlines()[0]


# -- one-shot ------------------------------------------------------------------------------------------
def test_one_shot_prints_only_the_answer(cli, installed):
    result = cli("chat", "--experts", "sql,neo4j", "--prompt", SQL_PROMPT)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("SELECT ") and result.stdout.count("\n") == 1  # the grammar of expert-sql


def test_json_document_with_route_tokens_and_latency(cli, installed):
    result = cli("chat", "--prompt", SQL_PROMPT, "--json", "--max-tokens", "3")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["experts"] == ["expert-sql"] and document["weights"] == {"expert-sql": 1.0}
    assert document["mode"] == "routed" and document["route"]["experts"] == ["expert-sql"]
    assert document["route"]["candidates"][0]["name"] == "expert-sql"
    assert document["answer"].startswith("SELECT") and document["grammar"] is True
    assert 0 < document["tokens"] <= 3 and document["decoding"]["max_tokens"] == 3  # the flag beats the manifest
    assert document["decoding"]["temperature"] == 0 and document["latency_s"] > 0
    assert document["versions"] == {"expert-sql": "0.1.0"}


def test_generic_question_goes_to_the_base_model(cli, installed):
    result = cli("chat", "--all", "--json", "--prompt", "What is the capital of France?", "--max-tokens", "4")
    document = json.loads(result.stdout)
    assert document["experts"] == [] and document["route"]["experts"] == []
    # the bare base decodes as its own generation_config.json says (the tiny fixture: do_sample false)
    assert document["grammar"] is False and document["decoding"]["temperature"] == 0.0


def test_prompt_from_stdin(cli, installed):
    result = cli("chat", "--experts", "sql", input=SQL_PROMPT + "\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("SELECT ")


def test_debug_puts_routing_and_timing_on_stderr(cli, installed):
    result = cli("chat", "--experts", "sql,neo4j", "--prompt", SQL_PROMPT, "--debug")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("SELECT ") and result.stdout.count("\n") == 1
    assert "route: experts: expert-sql (weight 1)" in result.stderr
    assert "experts (routed): expert-sql@0.1.0 (weight 1)" in result.stderr and "timing: route " in result.stderr


def test_no_route_composes_all_and_the_first_named_leads(cli, installed):
    result = cli("chat", "--experts", "neo4j,sql", "--no-route", "--json", "--prompt", SQL_PROMPT)
    document = json.loads(result.stdout)
    assert document["experts"] == ["expert-neo4j", "expert-sql"] and document["mode"] == "all"
    assert document["weights"] == {"expert-neo4j": 0.5, "expert-sql": 0.5} and document["route"] is None
    assert document["decoding"]["max_tokens"] == 5 and document["grammar"] is False  # expert-neo4j's settings
    result = cli("chat", "--experts", "sql,neo4j", "--no-route", "--json", "--prompt", SQL_PROMPT, "--no-grammar")
    document = json.loads(result.stdout)
    assert document["decoding"]["max_tokens"] == 6 and document["grammar"] is False  # sql leads; flag wins


def test_bare_base_model(cli, tiny_model):
    result = cli("chat", "--base-model", tiny_model, "--json", "--prompt", "hello", "--max-tokens", "2")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["mode"] == "base" and document["experts"] == [] and document["tokens"] <= 2


def test_json_schema_constrains_the_answer_of_the_bare_base(cli, tiny_model, tmp_path):
    schema = tmp_path / "answer.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"ok": {"type": "boolean"},
                                                                   "size": {"enum": ["small", "large"]}},
                                  "required": ["ok", "size"], "additionalProperties": False}))
    result = cli("chat", "--base-model", tiny_model, "--json-schema", schema, "--prompt", "hello", "--max-tokens", "40")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert list(answer) == ["ok", "size"] and isinstance(answer["ok"], bool)


def test_json_schema_replaces_the_experts_grammar(cli, installed, tmp_path):
    schema = tmp_path / "answer.json"
    schema.write_text('{"type": "object", "properties": {"n": {"type": "boolean"}}, "required": ["n"]}')
    result = cli("chat", "--experts", "sql", "--json", "--json-schema", schema, "--prompt", SQL_PROMPT,
                 "--max-tokens", "20")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["grammar"] is True and json.loads(document["answer"])["n"] in (True, False)


def test_a_broken_json_schema_fails_before_loading_a_model(cli, installed, tmp_path):
    schema = tmp_path / "answer.json"
    schema.write_text('{"type": "object",\n "properties": {"n": {"type": "bool"}}}')
    result = cli("chat", "--experts", "sql", "--json-schema", schema, "--prompt", SQL_PROMPT)
    assert result.exit_code == 1
    assert error_line(result).startswith(f"error: JSON schema `{schema}` is not supported:")


def test_base_model_with_experts_says_where_their_base_is(cli, installed, tiny_model):
    result = cli("chat", "--experts", "sql", "--base-model", tiny_model, "--json", "--prompt", SQL_PROMPT)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["experts"] == ["expert-sql"] and document["base_model"] == str(tiny_model)


# -- interactive -------------------------------------------------------------------------------------------
def test_interactive_session_with_commands(cli, installed):
    script = ["/experts", SQL_PROMPT, "/route", "/experts neo4j", "list the graph", "/route", "/experts json",
              "/bogus", "/reset", "/help", "/exit", "never read"]
    result = cli("chat", "-i", "--experts", "sql,neo4j", "--no-stream", input="\n".join(script) + "\n")
    assert result.exit_code == 0, result.stderr
    answers = result.stdout.splitlines()
    assert len(answers) == 2 and answers[0].startswith("SELECT ") and not answers[1].startswith("SELECT ")
    err = result.stderr
    assert "experts (routed per prompt):\n  expert-sql@0.1.0\n  expert-neo4j@0.1.0" in err
    assert "experts: expert-sql (weight 1)\ncandidates:" in err  # /route after the SQL prompt
    assert "experts (forced: expert-neo4j):" in err
    assert "experts (forced): expert-neo4j@0.1.0 (weight 1); not routed: forced with /experts" in err
    assert "error: `json` is not an expert of this chat" in err and "error: unknown command `/bogus`" in err
    assert "history cleared" in err and "/experts a,b" in err


def test_interactive_streams_by_default(cli, installed):
    result = cli("chat", "-i", "--experts", "sql", input=SQL_PROMPT + "\n")  # ends at end of input
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("SELECT ") and result.stdout.count("\n") == 1


# -- errors ----------------------------------------------------------------------------------------------
def test_unknown_expert_lists_the_installed_ones(cli, installed):
    result = cli("chat", "--experts", "sql,json", "--prompt", SQL_PROMPT)
    assert result.exit_code == 1 and result.stdout == ""
    assert error_line(result) == ("error: `expert-json` is not installed "
                                  "(installed: `expert-neo4j@0.1.0`, `expert-sql@0.1.0`)")


def test_no_experts_installed_hints_to_install(cli):
    result = cli("chat", "--prompt", SQL_PROMPT)
    assert result.exit_code == 1
    assert error_line(result) == "error: no experts are installed, so there is nothing to chat with"
    assert result.stderr.splitlines()[1].startswith("hint: install one with `expert-cli install")


@pytest.mark.parametrize("args", [("--prompt", "   "), ()])
def test_empty_prompt_is_a_usage_error(cli, installed, args):
    result = cli("chat", *args, input="")
    assert result.exit_code == 2 and error_line(result) == "error: the prompt is empty"


def test_base_model_missing_offline_names_it(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    result = cli("chat", "--base-model", "Qwen/Qwen3-0.6B", "--prompt", "hello")
    assert result.exit_code == 1
    assert "`Qwen/Qwen3-0.6B`" in error_line(result)
    assert "hf download Qwen/Qwen3-0.6B" in result.stderr.splitlines()[1]


def test_experts_on_different_base_models(cli, installed, expert_sources):
    install_expert(str(expert_sources["other"]), InstallOptions(allow_unsigned=True))
    result = cli("chat", "--experts", "sql,other", "--prompt", SQL_PROMPT)
    assert result.exit_code == 2
    assert error_line(result).startswith("error: the experts are trained on different base models")
    assert "`expert-other@0.1.0` (`builtin:tiny-qwen3`)" in error_line(result)


@pytest.mark.parametrize("args, message", [
    (("--experts", "sql", "--all", "-p", "x"), "error: `--experts` and `--all` cannot be used together"),
    (("-i", "--json"), "error: `--json` is for one-shot answers"),
    (("--temperature", "-1", "-p", "x"), "error: `temperature` must be >= 0 (0 = greedy), got `-1.0`"),
    (("--json-schema", "s.json", "--no-grammar", "-p", "x"),
     "error: `--json-schema` and `--no-grammar` cannot be used together"),
])
def test_bad_flags_are_usage_errors(cli, installed, args, message):
    result = cli("chat", *args)
    assert result.exit_code == 2 and error_line(result) == message


def test_the_base_models_own_semantic_score_joins_routing_when_asked(cli, installed, monkeypatch):
    """EXPERT_ROUTER_SEMANTIC=base: once chat has its base model loaded, the router also scores by it."""
    from expert_cli.routing.hidden import HiddenStateScorer

    asked: list[str] = []
    original = HiddenStateScorer.similarities
    monkeypatch.setattr(HiddenStateScorer, "similarities",
                        lambda self, prompt: asked.append(prompt) or original(self, prompt))
    assert cli("chat", "--prompt", SQL_PROMPT, "--max-tokens", "2").exit_code == 0
    assert asked == []  # off by default
    monkeypatch.setenv("EXPERT_ROUTER_SEMANTIC", "base")
    result = cli("chat", "--prompt", SQL_PROMPT, "--max-tokens", "2")
    assert result.exit_code == 0, result.stderr
    assert asked == [SQL_PROMPT]
