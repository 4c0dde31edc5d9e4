"""The manifest model: lenient load, round trip, v1/v2 normalisation, the two rule tiers, line numbers."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expert_cli.core.errors import ManifestError, ManifestValidationError, UsageError
from expert_cli.core.jsonlines import format_path, line_index
from expert_cli.manifest.model import (
    AdapterSpec,
    load_manifest,
    manifest_from_dict,
    model_slug,
    parse_manifest,
)
from expert_cli.manifest.rules import strict_problems

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hivellm"
REAL_MANIFESTS = sorted(p for p in FIXTURES.glob("*manifest*.json") if not p.name.endswith(".schema.json"))


def test_the_shared_real_manifests_are_there():
    assert {p.name for p in REAL_MANIFESTS} >= {
        "expert-sql-manifest.json", "expert-neo4j-manifest.json", "manifest_v1.json", "manifest_v2.json",
    }


# -- real manifests: lenient load and lossless round trip ------------------------------------------------------
@pytest.mark.parametrize("path", REAL_MANIFESTS, ids=lambda p: p.name)
def test_real_manifest_loads_and_round_trips_unchanged(path: Path):
    original = json.loads(path.read_text(encoding="utf-8"))
    manifest = load_manifest(path)
    assert json.loads(manifest.dumps()) == original
    assert manifest.to_dict() == original
    assert manifest.name == original["name"] and manifest.version == original["version"]
    assert manifest.base_models, "every real manifest names at least one base model"


def test_round_trip_keeps_comment_and_unknown_keys():
    path = FIXTURES / "expert-sql-manifest.json"
    manifest = load_manifest(path)
    dumped = json.loads(manifest.dumps())
    entry = dumped["base_models"][0]
    assert entry["rope_scaling"]["_comment"].startswith("Qwen3-specific NTK-by-parts")
    assert entry["adapters"][0]["_comment"].startswith("Checkpoint-1000")
    assert dumped["limitations"][0]["pattern"] == "no_recursive_cte"  # a key our model does not know


def test_to_dict_is_a_copy():
    manifest = load_manifest(FIXTURES / "manifest_v1.json")
    copied = manifest.to_dict()
    copied["name"] = "changed"
    copied["adapters"][0]["r"] = 99
    assert manifest.name == "test-expert-v1"
    assert manifest.data["adapters"][0]["r"] == 16


def test_a_folder_loads_its_manifest_json(tmp_path: Path):
    (tmp_path / "manifest.json").write_text((FIXTURES / "manifest_v2.json").read_text(encoding="utf-8"))
    manifest = load_manifest(tmp_path)
    assert manifest.path == tmp_path / "manifest.json"
    assert manifest.root == tmp_path
    assert manifest.resolve_path("datasets/data.jsonl") == tmp_path / "datasets" / "data.jsonl"
    assert manifest.resolve_path("/abs/file.jsonl") == Path("/abs/file.jsonl")


def test_a_folder_without_manifest_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ManifestError, match="no manifest at"):
        load_manifest(tmp_path)


def test_invalid_json_names_line_and_column(tmp_path: Path):
    bad = tmp_path / "manifest.json"
    bad.write_text('{\n  "name": "expert-x",\n  "version": 1.0.0\n}\n')
    with pytest.raises(ManifestError, match=r"line 3, column"):
        load_manifest(bad)


def test_a_json_array_is_not_a_manifest(tmp_path: Path):
    bad = tmp_path / "manifest.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ManifestError, match="JSON object"):
        load_manifest(bad)


# -- v1 and v2 normalisation ----------------------------------------------------------------------------------
def test_v1_root_adapters_become_one_base_model():
    manifest = load_manifest(FIXTURES / "manifest_v1.json")
    assert manifest.schema_version == "1.0"
    [model] = manifest.base_models
    assert (model.name, model.sha256, model.quantization, model.rope_scaling) == (
        "Qwen3-0.6B", "test_hash_v1", "int4", "yarn-128k",
    )
    assert model.adapters == [
        AdapterSpec(type="lora", target_modules=["q_proj", "v_proj"], r=16, alpha=16, dropout=0.05, scaling="standard")
    ]
    assert manifest.base_model() is not None and manifest.base_model().name == "Qwen3-0.6B"


def test_v2_keeps_each_base_model_with_its_own_adapters():
    manifest = load_manifest(FIXTURES / "manifest_v2.json")
    assert manifest.schema_version == "2.0"
    assert [m.name for m in manifest.base_models] == ["Qwen3-0.6B", "Qwen3-1.5B"]
    assert [a.target_modules for a in manifest.base_models[1].adapters] == [["q_proj", "v_proj", "o_proj"]]
    assert [m.slug for m in manifest.base_models] == ["qwen3-0-6b", "qwen3-1-5b"]


def test_real_v2_manifest_fields():
    manifest = load_manifest(FIXTURES / "expert-sql-manifest.json")
    model = manifest.base_model()
    assert model.name == "F:/Node/hivellm/expert/models/Qwen3-0.6B" and model.slug == "qwen3-0-6b"
    assert model.prompt_template == "qwen3"
    assert model.sha256 is None  # "" in the file means unknown
    [adapter] = model.adapters
    assert (adapter.type, adapter.r, adapter.alpha, adapter.use_dora) == ("dora", 12, 24, True)
    assert "database:sql" in manifest.capabilities


def test_schema_version_is_inferred_when_absent():
    v2 = json.loads((FIXTURES / "manifest_v2.json").read_text())
    v1 = json.loads((FIXTURES / "manifest_v1.json").read_text())
    del v2["schema_version"], v1["schema_version"]
    assert manifest_from_dict(v2).schema_version == "2.0"
    assert manifest_from_dict(v1).schema_version == "1.0"


# -- base model selection -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Qwen3-1.5B", "qwen3-1-5b", "Qwen/Qwen3-1.5B", "/models/Qwen3-1.5B"])
def test_base_model_by_name_or_slug(name: str):
    manifest = load_manifest(FIXTURES / "manifest_v2.json")
    assert manifest.base_model(name).name == "Qwen3-1.5B"


def test_base_model_without_name_needs_a_single_model():
    manifest = load_manifest(FIXTURES / "manifest_v2.json")
    with pytest.raises(UsageError) as caught:
        manifest.base_model()
    assert "`Qwen3-0.6B`" in caught.value.message and "`Qwen3-1.5B`" in caught.value.message
    assert caught.value.hint


def test_unknown_base_model_error_lists_the_names():
    manifest = load_manifest(FIXTURES / "manifest_v2.json")
    with pytest.raises(UsageError) as caught:
        manifest.base_model("Llama-3-8B")
    assert "`Llama-3-8B`" in caught.value.message
    assert "`Qwen3-0.6B`, `Qwen3-1.5B`" in caught.value.message


@pytest.mark.parametrize("name", ["Qwen3-1.5B", "qwen3-1-5b"])
def test_for_base_model_keeps_only_that_entry(name: str):
    manifest = load_manifest(FIXTURES / "manifest_v2.json")
    original = copy.deepcopy(manifest.data)
    selected = manifest.for_base_model(name)
    assert [entry["name"] for entry in selected["base_models"]] == ["Qwen3-1.5B"]
    assert selected["base_models"][0] == original["base_models"][1]
    assert {k: v for k, v in selected.items() if k != "base_models"} == {
        k: v for k, v in original.items() if k != "base_models"
    }
    assert manifest.data == original  # the loaded manifest is untouched


def test_for_base_model_on_v1_is_an_unchanged_copy():
    manifest = load_manifest(FIXTURES / "manifest_v1.json")
    selected = manifest.for_base_model("Qwen3-0.6B")
    assert selected == manifest.data and selected is not manifest.data


def test_for_base_model_unknown_name_raises():
    with pytest.raises(UsageError, match="Llama"):
        load_manifest(FIXTURES / "manifest_v2.json").for_base_model("Llama")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("F:/x/Qwen3-0.6B", "qwen3-0-6b"),
        ("Qwen/Qwen3-0.6B", "qwen3-0-6b"),
        ("builtin:tiny-qwen3", "tiny-qwen3"),
        ("F:\\models\\Qwen3-0.6B", "qwen3-0-6b"),
        ("/home/me/models/Qwen3-0.6B/", "qwen3-0-6b"),
        ("Qwen3_1.5B", "qwen3-1-5b"),
        ("Qwen3-0.6B", "qwen3-0-6b"),
        ("", "model"),
    ],
)
def test_model_slug(name: str, slug: str):
    assert model_slug(name) == slug


# -- lenient rules: each names the JSON path and the file line ------------------------------------------------
def base_v1() -> dict:
    return json.loads((FIXTURES / "manifest_v1.json").read_text(encoding="utf-8"))


def line_of(text: str, needle: str) -> int:
    assert text.count(needle) == 1, f"{needle!r} must occur once in the test manifest"
    return text[: text.index(needle)].count("\n") + 1


def _set(path: tuple, value):
    def mutate(data: dict) -> None:
        target = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


def _drop(path: tuple):
    def mutate(data: dict) -> None:
        target = data
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return mutate


def _both_base_model_forms(data: dict) -> None:
    data["base_models"] = [dict(data["base_model"], adapters=data["adapters"])]


def _ia3_with_rank(data: dict) -> None:
    data["adapters"][0] = {"type": "ia3", "target_modules": ["k_proj"], "r": 16}


# (id, mutation, expected JSON path, a text that sits on the expected line, line offset from that text)
LENIENT_CASES = [
    ("empty-name", _set(("name",), ""), "name", '"name": ""', 0),
    ("bad-version", _set(("version",), "1.0"), "version", '"version": "1.0"', 0),
    ("unknown-schema-version", _set(("schema_version",), "3.0"), "schema_version", '"schema_version"', 0),
    ("both-base-model-forms", _both_base_model_forms, "base_models", '"base_models"', 0),
    ("no-adapters", _set(("adapters",), []), "adapters", '"adapters": []', 0),
    ("unknown-adapter-type", _set(("adapters", 0, "type"), "prefix"), "adapters[0].type", '"prefix"', 0),
    ("lora-without-r", _drop(("adapters", 0, "r")), "adapters[0].r", '"adapters": [', 1),
    ("lora-without-alpha", _drop(("adapters", 0, "alpha")), "adapters[0].alpha", '"adapters": [', 1),
    ("ia3-with-r", _ia3_with_rank, "adapters[0].r", '"r": 16', 0),
    ("epochs-0", _set(("training", "config", "epochs"), 0), "training.config.epochs", '"epochs": 0', 0),
    ("learning-rate-0", _set(("training", "config", "learning_rate"), 0), "training.config.learning_rate",
     '"learning_rate": 0', 0),
    ("empty-target-modules", _set(("adapters", 0, "target_modules"), []), "adapters[0].target_modules",
     '"target_modules": []', 0),
    ("empty-training-target-modules", _set(("training", "config", "target_modules"), []),
     "training.config.target_modules", '"target_modules": []', 0),
]


@pytest.mark.parametrize(("mutate", "json_path", "needle", "offset"), [c[1:] for c in LENIENT_CASES],
                         ids=[c[0] for c in LENIENT_CASES])
def test_lenient_rule_names_path_and_line(tmp_path: Path, mutate, json_path: str, needle: str, offset: int):
    data = base_v1()
    mutate(data)
    text = json.dumps(data, indent=2)
    target = tmp_path / "manifest.json"
    target.write_text(text, encoding="utf-8")
    expected_line = line_of(text, needle) + offset

    with pytest.raises(ManifestValidationError) as caught:
        load_manifest(target)

    assert [(p.path, p.line) for p in caught.value.problems] == [(json_path, expected_line)]
    assert f"`{json_path}` (line {expected_line})" in caught.value.message
    assert caught.value.hint and "expert-cli validate" in caught.value.hint


def test_missing_adapters_in_a_v2_entry_points_at_that_entry(tmp_path: Path):
    data = json.loads((FIXTURES / "manifest_v2.json").read_text())
    del data["base_models"][1]["adapters"]
    text = json.dumps(data, indent=2)
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ManifestValidationError) as caught:
        load_manifest(tmp_path)
    [problem] = caught.value.problems
    assert problem.path == "base_models[1].adapters"
    assert problem.line == line_of(text, '"name": "Qwen3-1.5B"') - 1  # the entry's opening brace


def test_every_problem_is_reported_not_just_the_first():
    data = base_v1()
    data["name"], data["training"]["config"]["epochs"] = "", 0
    with pytest.raises(ManifestValidationError) as caught:
        manifest_from_dict(data)
    assert [p.path for p in caught.value.problems] == ["name", "training.config.epochs"]
    assert "(and 1 more)" in caught.value.message


def test_manifest_from_dict_problems_have_no_line():
    data = base_v1()
    data["version"] = "v1"
    with pytest.raises(ManifestValidationError) as caught:
        manifest_from_dict(data)
    assert [(p.path, p.line) for p in caught.value.problems] == [("version", None)]


@pytest.mark.parametrize("field", ["name", "version"])
def test_a_trailing_newline_does_not_sneak_past_the_name_and_version_rules(field: str):
    data = base_v1()
    data[field] += "\n"
    with pytest.raises(ManifestValidationError) as caught:
        manifest_from_dict(data)
    assert [p.path for p in caught.value.problems] == [field]


@pytest.mark.parametrize(
    ("soft_prompt", "json_path"),
    [({"name": "p", "path": "p.pt", "tokens": "many"}, "soft_prompts[0].tokens"),
     ({"name": "p", "path": "p.pt", "tokens": 0}, "soft_prompts[0].tokens"),
     ({"name": "", "path": "p.pt", "tokens": 8}, "soft_prompts[0].name"),
     ("p.pt", "soft_prompts[0]")],
)
def test_soft_prompt_rules(soft_prompt, json_path: str):
    data = base_v1()
    data["soft_prompts"] = [soft_prompt]
    with pytest.raises(ManifestValidationError) as caught:
        manifest_from_dict(data)
    assert [p.path for p in caught.value.problems] == [json_path]


def test_a_valid_soft_prompt_loads():
    data = base_v1()
    data["soft_prompts"] = [{"name": "sql-style", "path": "soft_prompts/sql.pt", "tokens": 16, "init_method": "text"}]
    [prompt] = manifest_from_dict(data).soft_prompts
    assert (prompt.name, prompt.path, prompt.tokens, prompt.init_method) == ("sql-style", "soft_prompts/sql.pt", 16, "text")


def test_dora_and_prerelease_version_are_accepted():
    data = base_v1()
    data["version"] = "1.0.0-rc.1"
    data["adapters"][0]["type"] = "dora"
    assert manifest_from_dict(data).base_model().adapters[0].use_dora is True


# -- strict tier: the bundled JSON Schema ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["expert-sql-manifest.json", "expert-neo4j-manifest.json"])
def test_real_expert_manifests_pass_strict(name: str):
    assert strict_problems(parse_manifest(FIXTURES / name)) == []


def test_manifest_v1_strict_errors():
    problems = strict_problems(parse_manifest(FIXTURES / "manifest_v1.json"))
    assert len(problems) == 5
    by_path = {(p.path, p.line): p.message for p in problems if p.path != "(root)"}
    root = sorted(p.message for p in problems if p.path == "(root)")
    assert root == [f"'{key}' is a required property" for key in ("license", "perf", "quality_metrics")]
    assert set(by_path) == {("name", 2), ("adapters[0].sha256", 25)}
    assert "test-expert-v1" in by_path[("name", 2)]
    assert "adapter_hash" in by_path[("adapters[0].sha256", 25)]


def test_manifest_v2_strict_errors():
    problems = strict_problems(parse_manifest(FIXTURES / "manifest_v2.json"))
    assert len(problems) == 6
    assert sorted((p.path, p.line) for p in problems if p.path != "(root)") == [
        ("base_models[0].adapters[0].sha256", 24),
        ("base_models[1].adapters[0].sha256", 43),
        ("name", 2),
    ]
    assert sum(p.path == "(root)" and p.line == 1 for p in problems) == 3


def test_strict_accepts_the_qwen3_prompt_template():
    data = base_v1()
    data["base_model"]["prompt_template"] = "qwen3"
    problems = strict_problems(manifest_from_dict(data))
    assert not [p for p in problems if "prompt_template" in p.path]


# -- property tests: the line index agrees with positions for generated JSON ---------------------------------
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
_json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
_whitespace = st.lists(st.sampled_from([" ", "\t", "\n", "\r\n"]), max_size=3).map("".join)


def render_with_lines(value, ws) -> tuple[str, dict]:
    """Serialise ``value`` with generated whitespace, recording the line each value starts on (the oracle)."""
    text_parts: list[str] = []
    lines: dict = {}

    def emit(piece: str) -> None:
        text_parts.append(piece)

    def line_now() -> int:
        return "".join(text_parts).count("\n") + 1

    def walk(node, path: tuple) -> None:
        emit(ws())
        lines[path] = line_now()
        if isinstance(node, dict):
            emit("{" + ws())
            for index, (key, child) in enumerate(node.items()):
                emit(("," + ws() if index else "") + json.dumps(key) + ws() + ":")
                walk(child, path + (key,))
            emit(ws() + "}")
        elif isinstance(node, list):
            emit("[")
            for index, child in enumerate(node):
                emit("," if index else "")
                walk(child, path + (index,))
            emit(ws() + "]")
        else:
            emit(json.dumps(node, ensure_ascii=False))
        emit(ws())

    walk(value, ())
    return "".join(text_parts), lines


@settings(max_examples=150, deadline=None)
@given(value=_json_values, data=st.data())
def test_line_index_agrees_with_positions(value, data):
    text, expected = render_with_lines(value, lambda: data.draw(_whitespace))
    assert json.loads(text) == value  # the oracle's document is valid JSON for the same value
    assert line_index(text) == expected


@settings(max_examples=50, deadline=None)
@given(value=_json_values, indent=st.sampled_from([None, 0, 2, 4]))
def test_line_index_covers_every_path_of_json_dumps(value, indent):
    text = json.dumps(value, indent=indent)
    index = line_index(text)
    assert set(index) == set(_all_paths(value, ()))
    assert all(1 <= line <= text.count("\n") + 1 for line in index.values())


def _all_paths(node, path: tuple):
    yield path
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _all_paths(child, path + (key,))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _all_paths(child, path + (index,))


@pytest.mark.parametrize("text", ["", "{", '{"a": }', "[1,]", "nul", '{"a" 1}'])
def test_line_index_of_invalid_json_is_empty(text: str):
    assert line_index(text) == {}


def test_format_path():
    assert format_path(()) == "(root)"
    assert format_path(("base_models", 0, "adapters", 1, "r")) == "base_models[0].adapters[1].r"
    assert format_path((0, "a")) == "[0].a"
