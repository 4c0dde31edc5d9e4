"""Names from the prompt: a grammar rule bound to the prompt's identifiers (SQL tables, Cypher labels)."""

from __future__ import annotations

from pathlib import Path

import pytest

from expert_cli.prompts.grammar_binding import (
    MAX_NAMES,
    bind_rule,
    defines_rule,
    is_declaration,
    prompt_names,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL_GRAMMAR = (REPO_ROOT / "experts" / "expert-sql" / "grammar.gbnf").read_text()
CYPHER_GRAMMAR = (REPO_ROOT / "experts" / "expert-neo4j" / "grammar.gbnf").read_text()
MULTI_LINE = 'root ::= word (" " word)*\nword ::= "a"\n     | "b"\n     | "c"\nend ::= "."\n'


def accepts(grammar: str, text: str) -> bool:
    from xgrammar.testing import _is_grammar_accept_string

    return _is_grammar_accept_string(grammar, text)


def test_prompt_names_are_the_identifiers_without_chat_special_tokens():
    text = "<|im_start|>system\nCREATE TABLE ships (id INTEGER, ship_type TEXT);<|im_end|>\n<|im_start|>user\nHow many?"
    names = prompt_names([text])
    assert {"ships", "ship_type", "CREATE", "TABLE", "How"} <= set(names)
    assert not {"im_start", "im_end"} & set(names) and names == sorted(names)


def test_a_declared_schema_leaves_the_questions_words_out():
    system = "Dialect: sql\nSchema:\nCREATE TABLE ships (id INTEGER PRIMARY KEY, ship_type TEXT, crew INTEGER);"
    names = set(prompt_names([system, "Which ship has the lowest crew? Give the ship type."]))
    assert {"ships", "ship_type", "crew", "id"} <= names
    assert not {"ship", "lowest", "Which", "Give"} & names


def test_the_declaring_paragraph_keeps_its_other_lines_and_the_question_paragraph_is_dropped():
    prompt = ("Schema:\n(:Doctor {name: STRING})\n(:Doctor)-[:WORKS_IN]->(:Hospital)\n\n"
              "Which doctors work in the largest hospital?")
    names = set(prompt_names([prompt]))
    assert {"Doctor", "WORKS_IN", "Hospital", "name", "Schema"} <= names
    assert not {"Which", "doctors", "largest"} & names


def test_a_schema_in_prose_binds_every_word():
    prose = "The table ships has the columns name and crew.\n\nWhich ship has the most crew?"
    assert {"ships", "crew", "ship", "most"} <= set(prompt_names([prose]))


@pytest.mark.parametrize(("line", "declares"), [
    ("CREATE TABLE ships (id INTEGER PRIMARY KEY, name TEXT);", True),
    ("(:Artist {name: STRING})", True),
    ("Fields: species (string), name (string), age (integer)", True),
    ("Return a JSON object for: Luna is 17 years old.", False),
    ("List the name of the 5 museums (all of them).", False),
    ("(:Artist)-[:PERFORMED]->(:Song)", False),
])
def test_declaration_lines(line: str, declares: bool):
    assert is_declaration(line) is declares


def test_a_multi_line_rule_is_replaced_whole_and_the_rest_is_kept():
    bound = bind_rule(MULTI_LINE, "word", ["x", "y"])
    assert bound == 'root ::= word (" " word)*\nword ::= "x" | "y"\nend ::= "."\n'
    assert defines_rule(bound, "word") and not defines_rule(bound, "words")


def test_no_names_or_too_many_keep_the_free_rule():
    assert bind_rule(MULTI_LINE, "word", []) == MULTI_LINE
    assert bind_rule(MULTI_LINE, "word", [f"n{i}" for i in range(MAX_NAMES + 1)]) == MULTI_LINE


def test_binding_a_rule_the_grammar_lacks_is_refused():
    with pytest.raises(ValueError, match="schema-name"):
        bind_rule(MULTI_LINE, "schema-name", ["x"])


def test_the_bound_sql_grammar_accepts_the_schemas_tables_and_refuses_invented_ones():
    schema = "CREATE TABLE hospitals (id INTEGER PRIMARY KEY, name TEXT, beds INTEGER);\n\nCount the hospitals."
    bound = bind_rule(SQL_GRAMMAR, "schema-name", prompt_names([schema]))
    assert accepts(bound, "SELECT COUNT(*) FROM hospitals WHERE beds > 10")
    assert accepts(bound, "SELECT name, MAX(beds) FROM hospitals GROUP BY name ORDER BY name DESC LIMIT 3")
    assert not accepts(bound, "SELECT COUNT(*) FROM hospments")
    assert not accepts(bound, "SELECT wards FROM hospitals")
    assert accepts(SQL_GRAMMAR, "SELECT COUNT(*) FROM hospments")  # unbound, the file accepts any name


def test_the_bound_cypher_grammar_accepts_the_schemas_labels_and_refuses_invented_ones():
    schema = "(:Doctor {name: STRING})\n(:Hospital {name: STRING})\n(:Doctor)-[:WORKS_IN]->(:Hospital)\n\nWho?"
    bound = bind_rule(CYPHER_GRAMMAR, "schema-name", prompt_names([schema]))
    assert accepts(bound, "MATCH (d:Doctor)-[:WORKS_IN]->(h:Hospital) WHERE h.name = 'X' RETURN d.name, count(h)")
    assert not accepts(bound, "MATCH (p:Person) RETURN p.name")
    assert not accepts(bound, "MATCH (d:Doctor)-[:WORKS_AT]->(h:Hospital) RETURN d.name")


@pytest.mark.parametrize("name", ["expert-sql", "expert-neo4j", "expert-json"])
def test_every_reference_answer_is_accepted_when_bound_to_its_own_prompt(name: str):
    import json

    grammar = (REPO_ROOT / "experts" / name / "grammar.gbnf").read_text()
    rows = [json.loads(line) for line in (REPO_ROOT / "experts" / name / "data" / "test.jsonl").open()]
    refused = []
    for row in rows:
        system, user, answer = (m["content"] for m in row["messages"])
        if not accepts(bind_rule(grammar, "schema-name", prompt_names([system, user])), answer):
            refused.append(answer)
    assert not refused, refused[:3]
