"""Dataset row formats: detection, conversion, and the exact error for a bad row."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expert_cli.training.formats import (
    FieldMapping,
    RowError,
    convert_row,
    detect_format,
    input_label,
    split_chat_text,
)

DEFAULT = FieldMapping()


def convert(row, mapping=DEFAULT):
    fmt = detect_format(row, mapping)
    assert fmt is not None, row
    return convert_row(row, fmt, "f.jsonl:1", mapping)


def test_messages_keep_their_turns_and_the_last_answer_is_the_completion():
    row = {"messages": [{"role": "system", "content": "Dialect: sql"}, {"role": "user", "content": "q"},
                        {"role": "assistant", "content": "SELECT 1;"}]}
    example = convert(row)
    assert example.format == "messages"
    assert example.answer == "SELECT 1;" and example.question == "q"
    assert [m["role"] for m in example.messages] == ["system", "user", "assistant"]


@pytest.mark.parametrize("row, message", [
    ({"messages": [{"role": "user", "content": "q"}]}, "last message must be a non-empty assistant"),
    ({"messages": [{"role": "assistant", "content": "a"}]}, "no user message"),
    ({"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]}, "role `robot`"),
    ({"messages": []}, "non-empty list"),
])
def test_bad_messages_say_what_is_wrong(row, message):
    with pytest.raises(RowError, match=message):
        convert_row(row, "messages", "f.jsonl:3", DEFAULT)


def test_prompt_completion_strings_stay_raw_text():
    example = convert({"prompt": "Q: 2+2\nA:", "completion": " 4"})
    assert (example.format, example.prompt, example.completion) == ("prompt_completion", "Q: 2+2\nA:", " 4")


def test_conversational_prompt_completion_becomes_messages():
    example = convert({"prompt": [{"role": "user", "content": "hi"}],
                       "completion": [{"role": "assistant", "content": "hello"}]})
    assert example.answer == "hello" and example.question == "hi"


def test_instruction_with_schema_input_puts_the_schema_where_the_runtime_does():
    example = convert({"instruction": "list users", "input": "CREATE TABLE users (id INT);", "output": "SELECT"})
    assert example.format == "instruction"
    assert example.schema == "CREATE TABLE users (id INT);"
    assert example.question == "list users" and example.answer == "SELECT"


def test_instruction_with_context_input_is_labelled_like_the_original():
    example = convert({"question": "who?", "context": "Ada wrote it.", "answer": "Ada"})
    assert example.question == "who?\n\nContext:\nAda wrote it."


def test_field_mapping_names_the_columns():
    mapping = FieldMapping.from_dict({"instruction": "ask", "response": "sql"})
    example = convert({"ask": "count users", "sql": "SELECT COUNT(*) FROM users;", "noise": 1}, mapping)
    assert (example.question, example.answer) == ("count users", "SELECT COUNT(*) FROM users;")


@pytest.mark.parametrize("instruction_key, response_key", [("prompt", "answer"), ("question", "cypher"),
                                                           ("sql_prompt", "sql"), ("text", "output")])
def test_the_original_fallback_columns_are_found(instruction_key, response_key):
    example = convert({instruction_key: "do it", response_key: "done"})
    assert (example.question, example.answer) == ("do it", "done")


def test_chatml_text_is_split_before_the_last_answer():
    text = ("<|im_start|>system\nDialect: sql<|im_end|>\n<|im_start|>user\nq<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nplan\n</think>\nSELECT 1;<|im_end|>\n")
    example = convert({"text": text})
    assert example.prompt.endswith("<|im_start|>assistant\n")
    assert example.completion == "<think>\nplan\n</think>\nSELECT 1;<|im_end|>"
    assert example.question == "q"


def test_legacy_text_is_split_before_the_last_answer():
    text = "<|system|>\nTask: x\n<|end|>\n<|user|>\nmake a schema\n<|end|>\n<|assistant|>\n{\"a\": 1}\n<|end|>"
    example = convert({"text": text})
    assert example.prompt.endswith("<|assistant|>\n")
    assert example.completion == '{"a": 1}\n<|end|>'
    assert example.question == "make a schema"


def test_plain_text_trains_on_every_token():
    example = convert({"text": "just some prose"})
    assert (example.prompt, example.completion) == ("", "just some prose")


def test_an_empty_assistant_turn_is_an_error():
    with pytest.raises(RowError, match="assistant turn is empty"):
        split_chat_text("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<|im_end|>")


def test_multitask_rows_from_the_original_fixture(fixtures_dir):
    import json

    path = fixtures_dir / "datasets" / "expert-json-text_to_schema-test.multitask.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    examples = [convert(row) for row in rows]
    assert {e.format for e in examples} == {"multitask"} and {e.task for e in examples} == {"text_to_schema"}
    assert examples[0].question.startswith("Generate a JSON Schema based on the description.")
    assert "\n\nDescription:\nDefine JSON schema: blog post" in examples[0].question
    assert json.loads(examples[0].answer)["type"] == "object"


def test_multitask_dpo_rows_train_on_chosen():
    example = convert({"task": "fix", "input": {"instruction": "fix it", "broken_json": "{a:1}"},
                       "chosen": '{"a": 1}', "rejected": "{a:1}"})
    assert example.answer == '{"a": 1}' and "Broken json:\n{a:1}" in example.question


def test_a_row_of_no_known_shape_is_not_detected():
    assert detect_format({"foo": 1, "bar": 2}, DEFAULT) is None


@pytest.mark.parametrize("name, value, label", [("input", "CREATE TABLE t (a INT)", "Schema"),
                                                ("db_schema", "x", "Schema"), ("sql_context", "x", "Context"),
                                                ("input", "x", "Input"), ("description", "x", "Description")])
def test_input_labels(name, value, label):
    assert input_label(name, value) == label


TEXT = st.text(st.characters(blacklist_characters="<|>"), min_size=1).filter(lambda s: s.strip() == s and s)


@given(user=TEXT, answer=TEXT)
def test_split_chat_text_recovers_the_answer(user, answer):
    prompt = f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    got_prompt, completion = split_chat_text(prompt + answer + "<|im_end|>")
    assert (got_prompt, completion) == (prompt, answer + "<|im_end|>")
