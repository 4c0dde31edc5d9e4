"""Every quality gate, with a row that passes and rows that fail: the parser, SQL (dialect and schema), Cypher,
JSON, a user's validator, exact and near duplicates against references and each other, and test-set leakage."""

from __future__ import annotations

import pytest

pytest.importorskip("sqlglot")
pytest.importorskip("datasketch")

from generation_helpers import sql_row

from expert_cli.core.errors import UsageError
from expert_cli.sdk.quality_gates import GateSettings, QualityGates
from expert_cli.training.formats import FieldMapping, convert_row
from expert_cli.training.near_duplicates import exact_key, normalise

GRAPH = ("Dialect: cypher\nSchema:\n(:Person {name: STRING, age: INTEGER})\n(:City {name: STRING})\n"
         "(:Person)-[:LIVES_IN]->(:City)")
FIELDS = "Dialect: json\nFields: name (string), age (integer), member (boolean)"


def chat(system: str, question: str, answer: str) -> dict:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": question},
                         {"role": "assistant", "content": answer}]}


def verdict(gates: QualityGates, row) -> str | None:
    _, rejection = gates.check(row, "new:1")
    return None if rejection is None else rejection.reason


def gates_for(*validators: str, **options) -> QualityGates:
    return QualityGates(GateSettings(validators=validators, row_format="messages", **options))


def test_the_parse_gate_uses_the_training_parser_and_the_experts_format():
    gates = gates_for()
    assert verdict(gates, sql_row(1)) is None
    assert verdict(gates, {"foo": 1}) == "format"
    _, rejection = gates.check("SELECT 1\n FROM t", "reply:1")  # a reply that holds no JSON row
    assert (rejection.reason, rejection.message) == ("format", "not a JSON row: `SELECT 1 FROM t`")
    no_answer = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]}
    assert verdict(gates, no_answer) == "format"
    assert verdict(gates, {"prompt": "q", "completion": "a"}) == "format"  # another format than the expert's


@pytest.mark.parametrize("answer, reason", [
    ("SELECT name FROM users WHERE age > 30", None),
    ("SELEC name FROM users", "sql"),  # does not parse
    ("SELECT salary FROM users", "sql"),  # parses, but the schema has no such column
    ("SELECT name FROM users; SELECT 1", "sql"),  # two statements
    ("DELETE FROM users", "sql"),  # runs read-only
])
def test_the_sql_gate_parses_then_runs_against_the_rows_schema(answer, reason):
    assert verdict(gates_for("sql"), sql_row(1, answer=answer)) == reason


def test_the_sql_gate_parses_in_the_manifests_dialect():
    row = sql_row(1, answer="SELECT TOP 2 name FROM users")  # T-SQL, not SQLite
    assert verdict(gates_for("sql", sql_dialect="tsql"), row) is None  # parsed as T-SQL, run as LIMIT 2
    assert verdict(gates_for("sql"), row) == "sql"


def test_the_sql_gate_without_a_schema_only_parses():
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "SELECT x FROM t"}]}
    assert verdict(gates_for("sql"), row) is None
    bad = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "SELECT x FROM"}]}
    assert verdict(gates_for("sql"), bad) == "sql"


def test_a_rows_schema_cannot_touch_files_or_run_forever(tmp_path):
    """The schema is model output: ATTACH (which creates a file) is refused, a runaway setup is stopped."""
    target = tmp_path / "evil.db"
    attach = {"messages": [{"role": "system", "content": f"Schema:\nATTACH DATABASE '{target}' AS e; "
                            "CREATE TABLE e.t (a INT);"}, {"role": "user", "content": "q"},
                           {"role": "assistant", "content": "SELECT 1"}]}
    assert verdict(gates_for("sql"), attach) == "sql" and not target.exists()
    forever = {"messages": [{"role": "system", "content": "Schema:\nCREATE TABLE t (x INT); WITH RECURSIVE r(x) AS "
                             "(SELECT 1 UNION ALL SELECT x + 1 FROM r) INSERT INTO t SELECT x FROM r;"},
                            {"role": "user", "content": "q"}, {"role": "assistant", "content": "SELECT x FROM t"}]}
    _, rejection = gates_for("sql").check(forever, "x:1")
    assert rejection.reason == "sql" and "interrupted" in rejection.message


@pytest.mark.parametrize("answer, reason", [
    ("MATCH (p:Person)-[:LIVES_IN]->(c:City) RETURN c.name, count(p)", None),
    ("MATCH (p:Person) RETURN p.salary", "cypher"),  # no such property in the row's schema
    ("MATCH (p:Person RETURN p", "cypher"),  # does not parse
    ("MATCH (p:Person) DETACH DELETE p", "cypher"),  # writes
    ("INSTALL httpfs", "cypher"),  # would reach the network
    ("COMMIT", "cypher"),  # would end the check's own transaction
])
def test_the_cypher_gate_runs_in_the_embedded_engine(answer, reason):
    pytest.importorskip("ladybug")
    assert verdict(gates_for("cypher"), chat(GRAPH, "Who lives where?", answer)) == reason


def test_the_cypher_gate_uses_a_rows_setup_when_it_has_one():
    pytest.importorskip("ladybug")
    row = {**chat("Dialect: cypher", "Names?", "MATCH (a:Artist) RETURN a.name"),
           "setup": ["CREATE NODE TABLE Artist(name STRING, PRIMARY KEY (name))"]}
    assert verdict(gates_for("cypher"), row) is None
    assert verdict(gates_for("cypher"), {**row, "setup": ["CREATE NODE TABLE Song(t STRING, PRIMARY KEY (t))"]}) \
        == "cypher"


@pytest.mark.parametrize("system, setup", [
    ("Dialect: cypher\nSchema:\n(:P {name: STRING) ; INSTALL httpfs ; CREATE NODE TABLE Q(a STRING})", None),
    ("Dialect: cypher", ["CREATE NODE TABLE P(name STRING, PRIMARY KEY (name))", "INSTALL httpfs"]),
    ("Dialect: cypher", ["CREATE NODE TABLE P(name STRING, PRIMARY KEY (name))", "COPY P FROM '/etc/passwd'"]),
])
def test_a_rows_graph_setup_may_only_create(system, setup):
    pytest.importorskip("ladybug")
    row = chat(system, "Names?", "MATCH (p:P) RETURN p.name")
    _, rejection = gates_for("cypher").check({**row, **({"setup": setup} if setup else {})}, "x:1")
    assert rejection.reason == "cypher" and "graph schema does not load" in rejection.message


@pytest.mark.parametrize("answer, reason", [
    ('{"name": "Ana", "age": 31, "member": null}', None),
    ('{"name": "Ana", "age": "31", "member": true}', "json"),  # wrong type
    ('{"name": "Ana", "age": 31}', "json"),  # a field missing
    ('{"name": "Ana", "age": 31, "member": true, "city": "Oslo"}', "json"),  # an extra key
    ('{"name": "Ana", ', "json"),  # not JSON
])
def test_the_json_gate_checks_the_rows_fields(answer, reason):
    assert verdict(gates_for("json"), chat(FIELDS, "Ana is 31.", answer)) == reason


def test_the_json_gate_checks_a_rows_json_schema():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    row = {**chat("Dialect: json", "n is 3", '{"n": 3}'), "json_schema": schema}
    assert verdict(gates_for("json"), row) is None
    assert verdict(gates_for("json"), {**row, **chat("Dialect: json", "n is 3", '{"m": 3}')}) == "json"


def test_a_user_validator_module_function(tmp_path):
    (tmp_path / "my_checks.py").write_text(
        "def short_answers(row):\n"
        "    answer = row['messages'][-1]['content']\n"
        "    if 'boom' in answer:\n"
        "        raise ValueError('exploded')\n"
        "    return len(answer) < 60 or 'answer too long'\n")
    gates = QualityGates(GateSettings(validators=("my_checks:short_answers",), root=tmp_path))
    assert verdict(gates, sql_row(1)) is None
    _, long = gates.check(sql_row(2, answer="SELECT name FROM users WHERE age > 1 AND city = 'Lima' ORDER BY name"),
                          "x:2")
    assert (long.reason, long.message) == ("validator", "answer too long")
    _, raised = gates.check(sql_row(3, answer="SELECT 'boom'"), "x:3")
    assert raised.reason == "validator" and "ValueError: exploded" in raised.message
    with pytest.raises(UsageError, match="cannot load validator"):
        QualityGates(GateSettings(validators=("no_such_module_here:f",), root=tmp_path))


def test_exact_duplicates_are_caught_after_normalising():
    assert normalise("SELECT  name FROM users;") == normalise("select name from USERS") == "select name from users"
    assert exact_key("a  b") == exact_key("A b.")
    gates = gates_for()
    seed = sql_row(1)
    gates.add_reference([convert_row(seed, "messages", "seeds:1", FieldMapping())])
    copy = sql_row(1, answer=seed["messages"][2]["content"].lower() + ";")
    _, rejection = gates.check(copy, "new:1")
    assert (rejection.reason, rejection.message) == ("duplicate", "same as `seeds:1`")
    other_schema = {"messages": [{"role": "system", "content": "Dialect: sql\nSchema:\nCREATE TABLE t (a INT);"},
                                 *seed["messages"][1:]]}
    assert verdict(gates, other_schema) == "near_duplicate"  # the same question and answer over another schema


def test_near_duplicates_among_new_rows_and_distinct_rows_pass():
    gates = gates_for()
    question = "List the name and the age of every user who lives in Lima and joined the club before the year 2001."
    assert verdict(gates, sql_row(1, question=question)) is None
    assert verdict(gates, sql_row(1, question="Please " + question)) == "near_duplicate"  # one word added
    assert verdict(gates, sql_row(2)) is None  # another number and city: not near


def test_rows_too_close_to_the_test_set_are_leakage():
    gates = gates_for()
    test_row = sql_row(5, question="How many users live in Oslo?", answer="SELECT COUNT(*) FROM users WHERE city = 'Oslo'")
    gates.add_test([convert_row(test_row, "messages", "test:1", FieldMapping())])
    _, rejection = gates.check(test_row, "new:1")
    assert rejection.reason == "leakage" and "test:1" in rejection.message
    reworded = sql_row(5, question="How many users live in Oslo ?",
                       answer="SELECT COUNT(*) FROM users WHERE city = 'Oslo';")
    assert verdict(gates, reworded) == "leakage"
    assert verdict(gates, sql_row(6)) is None
