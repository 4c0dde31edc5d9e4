"""expert_cli.scoring.metrics and test_cases: every metric right and wrong, and every test-case file shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expert_cli.core.errors import DatasetError, ExpertError
from expert_cli.scoring import engines as query_execution
from expert_cli.scoring.metrics import (
    TestCase,
    clean_prediction,
    load_test_cases,
    parse_test_case,
    score_case,
)

SQL_SETUP = [
    "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, city TEXT, salary INTEGER);",
    "INSERT INTO employees VALUES (1, 'Ann', 'Oslo', 50000), (2, 'Bo', 'Lima', 70000), (3, 'Cy', 'Oslo', 60000);",
]
CYPHER_SETUP = [
    "CREATE NODE TABLE Person(name STRING, age INT64, PRIMARY KEY (name))",
    "CREATE NODE TABLE City(name STRING, PRIMARY KEY (name))",
    "CREATE REL TABLE LIVES_IN(FROM Person TO City)",
    "CREATE (:Person {name: 'Ann', age: 30}), (:Person {name: 'Bo', age: 41}), (:Person {name: 'Cy', age: 25})",
    "CREATE (:City {name: 'Oslo'}), (:City {name: 'Lima'})",
    ("UNWIND [{a: 'Ann', b: 'Oslo'}, {a: 'Bo', b: 'Lima'}, {a: 'Cy', b: 'Oslo'}] AS e "
    "MATCH (x:Person {name: e.a}), (y:City {name: e.b}) CREATE (x)-[:LIVES_IN]->(y)"),
]
needs_engine = pytest.mark.skipif(query_execution.cypher_engine() is None, reason="ladybug is not installed")


def case(metric: str, reference: str | None = None, **fields) -> TestCase:
    return TestCase(id="c1", name="c1", prompt="q", metric=metric, reference=reference, **fields)


def sql_case(reference: str) -> TestCase:
    return case("sql_execution", reference, setup=SQL_SETUP)


# -- keywords -----------------------------------------------------------------------------------------------
def test_keywords_score_is_ten_times_the_found_fraction_case_insensitively():
    scored = score_case(case("keywords", expected_keywords=["SELECT", "from", "WHERE", "join", "limit"]),
                        "select a FROM t where b = 1 LIMIT 2")
    assert scored.score == pytest.approx(0.8) and scored.passed
    assert "`join`" in scored.detail


def test_keywords_below_eight_fails_and_empty_list_passes():
    assert not score_case(case("keywords", expected_keywords=["a", "b", "zzz", "yyy"]), "a b").passed
    assert score_case(case("keywords", expected_keywords=[]), "anything").score == 1.0


# -- exact match --------------------------------------------------------------------------------------------
def test_exact_match_ignores_whitespace_case_and_trailing_semicolon():
    assert score_case(case("exact_match", "SELECT name FROM t"), "  select   NAME\nfrom t ; ").passed


def test_exact_match_rejects_a_different_answer():
    scored = score_case(case("exact_match", "SELECT name FROM t"), "SELECT city FROM t")
    assert (scored.score, scored.passed) == (0.0, False)


# -- sql execution ------------------------------------------------------------------------------------------
def test_sql_execution_accepts_an_equivalent_query():
    reference = "SELECT name FROM employees WHERE city = 'Oslo'"
    assert score_case(sql_case(reference), "SELECT e.name FROM employees AS e WHERE e.salary != 70000").passed


def test_sql_execution_rejects_a_query_with_other_rows():
    scored = score_case(sql_case("SELECT name FROM employees WHERE city = 'Oslo'"), "SELECT name FROM employees")
    assert scored.score == 0.0 and "differ" in scored.detail


def test_sql_execution_ignores_order_without_order_by():
    reference = "SELECT name FROM employees WHERE salary > 55000"
    assert score_case(sql_case(reference), "SELECT name FROM employees WHERE salary > 55000 ORDER BY name DESC").passed


def test_sql_execution_checks_order_when_the_reference_has_order_by():
    reference = "SELECT name FROM employees ORDER BY salary DESC"
    assert score_case(sql_case(reference), "SELECT name FROM employees ORDER BY salary DESC;").passed
    assert not score_case(sql_case(reference), "SELECT name FROM employees ORDER BY salary ASC").passed


def test_sql_execution_accepts_columns_in_another_order():
    assert score_case(sql_case("SELECT name, city FROM employees"), "SELECT city, name FROM employees").passed


def test_sql_execution_compares_numbers_by_value():
    assert score_case(sql_case("SELECT AVG(salary) FROM employees"), "SELECT SUM(salary) / 3 FROM employees").passed


@pytest.mark.parametrize("prediction", ["SELEC name FROM employees", "SELECT nope FROM employees", "",
                                        "DROP TABLE employees", "SELECT 1; SELECT 2"])
def test_sql_execution_scores_bad_or_writing_sql_zero(prediction):
    scored = score_case(sql_case("SELECT COUNT(*) FROM employees"), prediction)
    assert scored.score == 0.0 and not scored.passed


def test_sql_execution_refuses_attach():
    scored = score_case(sql_case("SELECT 1"), "ATTACH DATABASE 'x.db' AS x")
    assert not scored.passed and "not authorized" in scored.detail


def test_a_broken_reference_is_a_dataset_error_naming_the_case():
    with pytest.raises(DatasetError, match="`c1`"):
        score_case(sql_case("SELECT missing FROM employees"), "SELECT 1")


# -- cypher -------------------------------------------------------------------------------------------------
@needs_engine
def test_cypher_execution_accepts_an_equivalent_query():
    reference = "MATCH (p:Person)-[:LIVES_IN]->(c:City) WHERE c.name = 'Oslo' RETURN p.name"
    prediction = "MATCH (c:City {name: \"Oslo\"})<-[:LIVES_IN]-(x:Person) RETURN x.name;"
    scored = score_case(case("cypher_execution", reference, setup=CYPHER_SETUP), prediction)
    assert scored.passed and scored.metric == "cypher_execution"


@needs_engine
def test_cypher_execution_checks_order_only_with_order_by():
    ordered = case("cypher_execution", "MATCH (p:Person) RETURN p.name ORDER BY p.age DESC", setup=CYPHER_SETUP)
    assert score_case(ordered, "MATCH (n:Person) RETURN n.name ORDER BY n.age DESC").passed
    assert not score_case(ordered, "MATCH (n:Person) RETURN n.name ORDER BY n.age").passed
    unordered = case("cypher_execution", "MATCH (p:Person) RETURN p.name", setup=CYPHER_SETUP)
    assert score_case(unordered, "MATCH (n:Person) RETURN n.name ORDER BY n.age").passed


@needs_engine
@pytest.mark.parametrize("prediction", ["MATCH (p:Person RETURN p.name", "MATCH (p:Nobody) RETURN p.name",
                                        "MATCH (p:Person) RETURN p.age", "CREATE (:Person {name: 'Zed'})"])
def test_cypher_execution_scores_bad_wrong_or_writing_queries_zero(prediction):
    scored = score_case(case("cypher_execution", "MATCH (p:Person) RETURN p.name", setup=CYPHER_SETUP), prediction)
    assert scored.score == 0.0


def test_cypher_falls_back_to_structure_without_an_engine(monkeypatch):
    monkeypatch.setattr("expert_cli.scoring.metrics.cypher_engine", lambda: None)
    reference = "MATCH (p:Person) WHERE p.name = 'Ann' RETURN p.age"
    scored = score_case(case("cypher_execution", reference), 'match (x:Person)  where x.name = "Ann" return x.age;')
    assert scored.passed and scored.metric == "cypher_structure" and "no Cypher engine" in scored.detail
    assert not score_case(case("cypher_execution", reference), "MATCH (p:Person) RETURN p.age").passed


def test_cypher_structure_keeps_labels_and_properties_but_renames_variables():
    same = query_execution.cypher_structure
    assert same("MATCH (a:Person)-[:KNOWS]->(b:Person) RETURN count(b)") == \
        same("MATCH (x:Person)-[:KNOWS]->(y:Person) RETURN COUNT(y)")
    assert same("MATCH (a:Person) RETURN a.name") != same("MATCH (a:City) RETURN a.name")
    assert same("MATCH (a:Person) RETURN a.name") != same("MATCH (a:Person) RETURN a.age")


# -- json ---------------------------------------------------------------------------------------------------
def test_json_equal_ignores_key_order_and_spacing():
    reference = '{"name": "Ann", "age": 30, "score": 1.5, "tags": ["a"], "x": null}'
    assert score_case(case("json_equal", reference), '{"x":null,"tags":["a"],"score":1.50,"age":30.0,"name":"Ann"}').passed


@pytest.mark.parametrize("prediction", ['{"name": "Ann", "ok": 1}', '{"name": "Ann"}', '{"name": "ann", "ok": true}',
                                        'name: Ann', '{"name": "Ann", "ok": true, "extra": 0}'])
def test_json_equal_rejects_other_values_types_keys_and_invalid_json(prediction):
    assert not score_case(case("json_equal", '{"name": "Ann", "ok": true}'), prediction).passed


def test_predictions_are_cleaned_of_thinking_and_fences():
    assert clean_prediction("<think>\nhmm\n</think>\n```sql\nSELECT 1\n```") == "SELECT 1"
    assert score_case(case("json_equal", '{"a": 1}'), '```json\n{"a": 1}\n```').passed


def test_case_score_to_dict():
    scored = score_case(case("exact_match", "x"), "x")
    assert scored.to_dict() == {"case_id": "c1", "metric": "exact_match", "score": 1.0, "passed": True,
                                "detail": "matches the reference"}


# -- loading test cases -------------------------------------------------------------------------------------
def write(tmp_path: Path, data, name: str = "cases.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_loads_the_original_template_fixture(fixtures_dir):
    cases = load_test_cases(fixtures_dir / "template-test_cases.json")
    assert [c.id for c in cases] == ["basic_001", "basic_002", "hard_001"]
    assert cases[2].may_fail and cases[2].failure_reason == "Known limitation" and cases[2].category == "hard"
    assert all(c.metric == "keywords" for c in cases)
    assert score_case(cases[0], "whatever").passed  # no keywords expected: the original scores 10


def test_loads_the_input_and_expected_output_variant(tmp_path):
    path = write(tmp_path, {"test_cases": [{"name": "greet", "input": "Say hi", "expected_output": "hi",
                                            "description": "d", "category": "basic"}]})
    [loaded] = load_test_cases(path)
    assert (loaded.id, loaded.prompt, loaded.reference, loaded.metric) == ("greet", "Say hi", "hi", "exact_match")


def test_loads_a_bare_list_with_missing_fields_and_the_tools_variant(tmp_path):
    path = write(tmp_path, [{"prompt": "p"}, {"name": "t", "system": "s", "user": "u", "expected_tool": "search",
                                              "tool_catalog": []}])
    first, tools = load_test_cases(path)
    assert (first.id, first.metric, first.expected_keywords) == ("case_001", "keywords", [])
    assert (tools.prompt, tools.system, tools.expected_keywords) == ("u", "s", ["search"])
    assert tools.extra == {"expected_tool": "search", "tool_catalog": []}


def test_loads_our_extension_fields(tmp_path):
    raw = {"id": "sql_1", "prompt": "q", "system": "Dialect: sql", "reference": "SELECT 1", "metric": "sql_execution",
           "setup": "CREATE TABLE t (a INTEGER);", "expected_keywords": ["SELECT"]}
    [loaded] = load_test_cases(write(tmp_path, {"test_cases": [raw]}))
    assert (loaded.system, loaded.metric, loaded.setup) == ("Dialect: sql", "sql_execution", ["CREATE TABLE t (a INTEGER);"])


def test_loads_chat_rows_of_a_test_split(tmp_path):
    row = {"messages": [{"role": "system", "content": "Dialect: json"}, {"role": "user", "content": "q"},
                        {"role": "assistant", "content": '{"a": 1}'}], "metric": "json_equal", "meta": {"k": 1}}
    [loaded] = load_test_cases(write(tmp_path, json.dumps(row) + "\n\n", "test.jsonl"))
    assert (loaded.system, loaded.prompt, loaded.reference, loaded.extra) == ("Dialect: json", "q", '{"a": 1}', {"meta": {"k": 1}})


def test_expected_output_json_becomes_a_json_reference(tmp_path):
    [loaded] = load_test_cases(write(tmp_path, [{"input": "q", "expected_output": {"a": 1}, "metric": "json_equal"}]))
    assert json.loads(loaded.reference) == {"a": 1}


@pytest.mark.parametrize(("data", "message"), [
    ("{not json", "is not valid JSON"),
    ({"cases": []}, "has no `test_cases` list"),
    ([7], "case #1"),
    ([{"id": "x"}], "case `x`.*has no prompt"),
    ([{"id": "x", "prompt": "p", "metric": "bleu"}], "unknown metric `bleu`"),
    ([{"id": "x", "prompt": "p", "metric": "sql_execution"}], "has no `reference`"),
    ([{"id": "x", "prompt": "p", "expected_keywords": "SELECT"}], "not a list of strings"),
    ([{"id": "x", "prompt": "p", "reference": "{", "metric": "json_equal"}], "not valid JSON"),
    ([{"id": "x", "prompt": "p", "reference": "r", "setup": [1]}], "`setup`"),
    ([{"id": "x", "prompt": "p"}, {"id": "x", "prompt": "q"}], "repeats test case id `x`"),
])
def test_bad_files_raise_errors_naming_the_file_and_case(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(DatasetError, match=message) as caught:
        load_test_cases(path)
    assert str(path) in caught.value.message and isinstance(caught.value, ExpertError)


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(DatasetError, match="no test cases at"):
        load_test_cases(tmp_path / "nope.json")


def test_parse_test_case_names_its_source():
    with pytest.raises(DatasetError, match="case #3 in `suite.json`"):
        parse_test_case("text", 2, "suite.json")


def test_a_case_may_carry_a_json_schema_for_structured_output():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    case = parse_test_case({"prompt": "p", "reference": '{"a": 1}', "metric": "json_equal", "json_schema": schema}, 0)
    assert case.json_schema == schema and "json_schema" not in case.extra
    with pytest.raises(DatasetError, match="case `case_001` in `test cases` has a `json_schema` that is not a JSON object"):
        parse_test_case({"prompt": "p", "json_schema": "object"}, 0)
