"""The reference experts in experts/: generators, splits, reference answers, grammars and manifests."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from expert_cli.scoring.metrics import load_test_cases, score_case

REPO = Path(__file__).resolve().parents[2]
EXPERTS = {"expert-sql": "sql_execution", "expert-neo4j": "cypher_execution", "expert-json": "json_equal"}
GENERATED = ["data/train.jsonl", "data/valid.jsonl", "data/test.jsonl", "tests/test_cases.json"]
expert_names = pytest.mark.parametrize("name", sorted(EXPERTS))


def load_generator(name: str):
    path = REPO / "experts" / name / "generate_dataset.py"
    module_name = f"generator_{name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


def read_rows(name: str, split: str) -> list[dict]:
    lines = (REPO / "experts" / name / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def prompts(rows: list[dict]) -> set[str]:
    return {row["messages"][1]["content"] for row in rows}


@expert_names
def test_generator_is_deterministic_and_matches_the_committed_data(name, tmp_path):
    script = REPO / "experts" / name / "generate_dataset.py"
    args = [sys.executable, str(script), "--out", str(tmp_path / "cli")]
    args += ["--skip-engine-check"] if name == "expert-neo4j" else []
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    subprocess.run(args, check=True, capture_output=True, env=env, timeout=120)
    generator = load_generator(name)
    kwargs = {"engine_check": False} if name == "expert-neo4j" else {}
    generator.write_all(tmp_path / "inproc", 1234, **kwargs)
    for relative in GENERATED:
        committed = (REPO / "experts" / name / relative).read_bytes()
        assert (tmp_path / "cli" / relative).read_bytes() == committed, relative
        assert (tmp_path / "inproc" / relative).read_bytes() == committed, relative


def test_another_seed_gives_other_data():
    generator = load_generator("expert-json")
    first, second = generator.build_splits(1), generator.build_splits(2)
    assert first["train"][:20] != second["train"][:20]


@expert_names
def test_split_sizes_and_chat_format(name):
    for split, size in {"train": 3000, "valid": 200, "test": 160}.items():
        rows = read_rows(name, split)
        assert len(rows) == size
        assert all([m["role"] for m in row["messages"]] == ["system", "user", "assistant"] for row in rows)
        assert all(row["messages"][0]["content"].startswith("Dialect: ") for row in rows)
    assert all(row["metric"] == EXPERTS[name] for row in read_rows(name, "test"))


@expert_names
def test_no_test_prompt_appears_in_training(name):
    training = prompts(read_rows(name, "train")) | prompts(read_rows(name, "valid"))
    test = read_rows(name, "test")
    assert not prompts(test) & training
    assert len(prompts(test)) == len(test)


@pytest.mark.parametrize(("name", "attribute", "marker"), [
    ("expert-sql", "HELD_OUT_TABLES", "CREATE TABLE {} ("),
    ("expert-neo4j", "HELD_OUT_LABELS", "(:{} {{"),
])
def test_held_out_schemas_never_appear_in_training(name, attribute, marker):
    held_out = getattr(load_generator(name), attribute)
    systems = [row["messages"][0]["content"] for split in ("train", "valid") for row in read_rows(name, split)]
    assert not [s for s in systems if any(marker.format(t) in s for t in held_out)]
    test = read_rows(name, "test")
    schema_rows = [r for r in test if r["meta"]["held_out"] == "schema"]
    assert schema_rows and all(any(marker.format(t) in r["messages"][0]["content"] for t in held_out)
                               for r in schema_rows)


@expert_names
def test_held_out_templates_are_only_in_the_test_split(name):
    test = read_rows(name, "test")
    template_rows = [r for r in test if r["meta"]["held_out"] == "template"]
    assert len(template_rows) >= 30
    generator = load_generator(name)
    if name == "expert-json":
        assert all(generator.STYLES[r["meta"]["template"]].startswith("*") for r in template_rows)
    else:
        assert all(generator.TEMPLATES[r["meta"]["intent"]][r["meta"]["template"]].startswith("*")
                   for r in template_rows)


@expert_names
def test_reference_answers_score_one_against_themselves(name):
    root = REPO / "experts" / name
    sample = load_test_cases(root / "data" / "test.jsonl")[::8] + load_test_cases(root / "tests" / "test_cases.json")
    for case in sample:
        scored = score_case(case, case.reference)
        assert scored.passed and scored.score == 1.0, (case.id, scored.detail)


def test_sql_training_targets_run_against_their_schema():
    for row in read_rows("expert-sql", "train")[::25]:
        system, _, query = (m["content"] for m in row["messages"])
        with closing(sqlite3.connect(":memory:")) as connection:
            connection.executescript(system.split("Schema:\n", 1)[1])
            connection.execute(query).fetchall()


def test_sql_training_rephrases_openings_without_the_held_out_ones():
    generator = load_generator("expert-sql")
    train = read_rows("expert-sql", "train")
    openings = tuple(generator.NEW_LEADS) + tuple(generator.OPENERS)
    rephrased = [row for row in train if row["messages"][1]["content"].startswith(openings)]
    assert 0.8 * generator.REPHRASED_SHARE < len(rephrased) / len(train) <= generator.REPHRASED_SHARE
    held_out_openings = {t.lstrip("*").split(" {")[0] for ts in generator.TEMPLATES.values() for t in ts
                         if t.startswith("*")}
    assert not any(o.startswith(tuple(held_out_openings)) for o in openings)
    assert not prompts(rephrased) & prompts(read_rows("expert-sql", "test"))


def test_neo4j_training_uses_made_up_labels_that_its_schema_declares():
    generator = load_generator("expert-neo4j")
    train = read_rows("expert-neo4j", "train")
    renamed = [row for row in train
               if not any(f"(:{label} {{" in row["messages"][0]["content"] for label in generator.LABELS)]
    assert len(renamed) == int(len(train) * generator.RENAMED_SHARE)
    for row in renamed:
        system, _, query = (m["content"] for m in row["messages"])
        labels = re.findall(r"\(\w+:(\w+)\)", query)
        assert labels and all(f"(:{label} {{" in system for label in labels), (system, query)
        types = re.findall(r"\[:(\w+)\]", query)
        assert all(f"[:{t}]" in system and t not in {r.type for r in generator.RELS} for t in types), query
    assert not prompts(renamed) & prompts(read_rows("expert-neo4j", "test"))


@expert_names
def test_test_cases_file_uses_the_template_format_with_our_fields(name):
    data = json.loads((REPO / "experts" / name / "tests" / "test_cases.json").read_text(encoding="utf-8"))
    assert {"test_suite", "version", "description", "test_cases", "metadata"} <= set(data)
    assert 10 <= len(data["test_cases"]) <= 20
    for raw in data["test_cases"]:
        assert {"id", "name", "prompt", "expected_keywords", "expected_format", "category", "system", "reference",
                "metric"} <= set(raw)
        assert raw["metric"] == EXPERTS[name]
        assert ("setup" in raw) == (name != "expert-json")
    test_prompts = prompts(read_rows(name, "test"))
    assert all(raw["prompt"] in test_prompts for raw in data["test_cases"])


@expert_names
def test_grammar_compiles_and_accepts_reference_answers(name):
    xgr = pytest.importorskip("xgrammar")
    grammar = xgr.Grammar.from_ebnf((REPO / "experts" / name / "grammar.gbnf").read_text(encoding="utf-8"))
    compiled = xgr.GrammarCompiler(xgr.TokenizerInfo([]), cache_enabled=False).compile_grammar(grammar)

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(compiled, terminate_without_stop_token=True)
        return matcher.accept_string(text) and matcher.is_terminated()

    rows = read_rows(name, "train")[::15] + read_rows(name, "test")
    rejected = [r["messages"][2]["content"] for r in rows if not accepts(r["messages"][2]["content"])]
    assert not rejected, rejected[:3]
    assert not accepts("Sure! Here is the answer you asked for.")


@expert_names
def test_manifest_loads_and_points_at_existing_files(name):
    from expert_cli.manifest.model import load_manifest  # the project's own module: never skipped

    manifest = load_manifest(REPO / "experts" / name)
    assert (manifest.name, manifest.version, manifest.schema_version) == (name, "0.1.0", "2.0")
    assert [b.name for b in manifest.base_models] == ["Qwen/Qwen3-0.6B", "builtin:tiny-qwen3", "smollm2-135m"]
    tiny = manifest.base_model("builtin:tiny-qwen3")
    assert tiny.adapters[0].type == "lora" and len(tiny.adapters[0].target_modules) == 7
    assert manifest.base_model("Qwen/Qwen3-0.6B").quantization == "int4"
    dataset = manifest.dataset
    for key in ("path", "validation_path", "test_path"):
        assert manifest.resolve_path(dataset[key]).is_file(), key
    assert manifest.resolve_path(manifest.decoding.grammar_file).is_file()
    assert manifest.resolve_path(manifest.data["evaluation"]["test_cases"]).is_file()
    assert (REPO / "experts" / name / "README.md").is_file() and (REPO / "experts" / name / "LICENSE").is_file()


@expert_names
def test_manifest_passes_the_strict_schema(name):
    import jsonschema  # a base dependency (validate --strict): its absence is a broken install, not a skip

    schema_path = REPO / "schemas" / "expert-manifest.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    data = json.loads((REPO / "experts" / name / "manifest.json").read_text(encoding="utf-8"))
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(data)]
    assert not errors


def test_every_json_test_answer_is_accepted_by_the_schema_its_case_carries():
    from xgrammar.testing import _is_grammar_accept_string

    from expert_cli.runtime.grammar import json_schema_grammar

    rows = read_rows("expert-json", "test")
    cases = load_test_cases(REPO / "experts" / "expert-json" / "tests" / "test_cases.json")
    assert all(case.json_schema for case in cases)
    for row in rows:
        answer, schema = row["messages"][2]["content"], row["json_schema"]
        assert schema["required"] == list(json.loads(answer)), answer  # every listed key, in order
        assert _is_grammar_accept_string(json_schema_grammar(schema), answer), answer


def test_the_readmes_example_json_schema_is_usable():
    from xgrammar.testing import _is_grammar_accept_string

    from expert_cli.runtime.grammar import json_schema_grammar, read_json_schema

    schema = read_json_schema(REPO / "experts" / "expert-json" / "examples" / "pet.schema.json")
    assert _is_grammar_accept_string(json_schema_grammar(schema), '{"name": "Luna", "species": "dog", "age": 3}')
