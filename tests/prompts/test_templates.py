"""Prompt templates: dialects, message building (the original's rules), renderers."""

from __future__ import annotations

import json

import pytest

from expert_cli.prompts.templates import (
    DEFAULT_SYSTEM,
    build_messages,
    build_prompt,
    dialect_from_capabilities,
    render_chatml,
    render_prompt,
)

SQL_CAPS = ["database:sql", "database:postgresql", "query:sql"]


@pytest.mark.parametrize(
    ("capabilities", "dialect"),
    [
        (["query:cypher"], "cypher"),
        (["database:neo4j", "query:sql"], "cypher"),  # cypher is checked before sql
        (["database:mysql"], "sql"),
        (["format:json", "language:python"], "json"),
        (["language:python"], "python"),
        (["language:rust"], "rust"),
        (["language:javascript"], "typescript"),
        (["task:chat"], "text"),
        ([], "text"),
        (None, "text"),
    ],
)
def test_dialect_from_capabilities_follows_the_original_order(capabilities, dialect):
    assert dialect_from_capabilities(capabilities) == dialect


def test_dialect_of_the_real_manifests(fixtures_dir):
    sql = json.loads((fixtures_dir / "expert-sql-manifest.json").read_text())
    neo4j = json.loads((fixtures_dir / "expert-neo4j-manifest.json").read_text())
    assert dialect_from_capabilities(sql["capabilities"]) == "sql"
    assert dialect_from_capabilities(neo4j["capabilities"]) == "cypher"


def test_original_unit_expectation_for_qwen3():
    text = build_prompt(
        None, "MATCH (n) RETURN n", "qwen3", capabilities=["query:cypher"], enable_thinking=True
    )
    assert text == (
        "<|im_start|>system\nDialect: cypher<|im_end|>\n"
        "<|im_start|>user\nMATCH (n) RETURN n<|im_end|>\n<|im_start|>assistant\n"
    )


def test_qwen3_without_thinking_prefills_an_empty_think_block():
    text = build_prompt(None, "MATCH (n) RETURN n", "qwen3", capabilities=["query:cypher"])
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_schema_goes_into_the_system_message_as_in_training_data():
    schema = "CREATE TABLE users (id INTEGER, name TEXT);"
    messages = build_messages("List all names", schema=schema, dialect="sql")
    assert messages == [
        {"role": "system", "content": f"Dialect: sql\nSchema:\n{schema}"},
        {"role": "user", "content": "List all names"},
    ]
    assert build_messages("q", schema="S", dialect="text")[0]["content"] == "Schema:\nS"


def test_blank_line_splits_context_and_query():
    messages = build_messages("Tables: users(id, name)\n\nList names\n\nsorted", dialect="sql")
    assert messages[0]["content"] == "Dialect: sql\nTables: users(id, name)"
    assert messages[1]["content"] == "List names\n\nsorted"


def test_context_that_is_already_a_dialect_header_is_kept():
    messages = build_messages("Dialect: sql\nSchema:\nT(a)\n\nCount rows", dialect="cypher")
    assert messages[0]["content"] == "Dialect: sql\nSchema:\nT(a)"
    assert messages[1]["content"] == "Count rows"


def test_text_dialect_uses_context_or_default_system():
    assert build_messages("Be brief.\n\nHi", dialect="text")[0]["content"] == "Be brief."
    assert build_messages("\n\nHi", dialect="text")[0]["content"] == DEFAULT_SYSTEM
    assert build_messages("Hi", dialect="text")[0]["content"] == DEFAULT_SYSTEM


def test_leading_dialect_line_without_blank_line_moves_to_system():
    messages = build_messages("Dialect: sql\nList names", dialect="cypher")
    assert [m["content"] for m in messages] == ["Dialect: sql", "List names"]


def test_no_dialect_means_no_system_message_and_no_split():
    assert build_messages("a\n\nb") == [{"role": "user", "content": "a\n\nb"}]


def test_explicit_system_wins_and_schema_is_appended():
    messages = build_messages("q\n\nr", system="You write SQL.", schema="T(a)", dialect="sql")
    assert messages[0]["content"] == "You write SQL.\nSchema:\nT(a)"
    assert messages[1]["content"] == "q\n\nr"


def test_history_goes_between_system_and_the_new_prompt():
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    messages = build_messages("and now?", dialect="sql", history=history)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]


@pytest.mark.parametrize(
    "bad",
    [
        [{"role": "tool", "content": "x"}],
        [{"role": "user"}],
        [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}],
    ],
)
def test_bad_history_is_refused(bad):
    with pytest.raises(ValueError):
        build_messages("q", history=bad)


def test_legacy_chatml_template_of_the_original():
    text = build_prompt(None, "Define a schema\n\nfor users", "chatml", capabilities=["format:json"])
    assert text == (
        "<|system|>\nDialect: json\n<|end|>\n<|user|>\nDefine a schema\n\nfor users\n<|end|>\n<|assistant|>\n"
    )
    assert build_prompt(None, "hi", "qwen", capabilities=["task:chat"]).startswith(
        f"<|system|>\n{DEFAULT_SYSTEM}\n<|end|>\n"
    )


def test_llama_and_alpaca_ignore_the_dialect_like_the_original():
    assert build_prompt(None, "hi", "llama", capabilities=SQL_CAPS) == "[INST] hi [/INST]"
    assert (
        build_prompt(None, "hi", "alpaca", capabilities=SQL_CAPS) == "### Instruction:\nhi\n\n### Response:\n"
    )
    with_system = build_prompt(None, "hi", "llama2", system="Be terse.")
    assert with_system == "[INST] <<SYS>>\nBe terse.\n<</SYS>>\n\nhi [/INST]"


def test_chatml_renderer_drops_think_blocks_of_earlier_answers():
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nA"},
        {"role": "user", "content": "b"},
    ]
    assert "hmm" not in render_chatml(messages)
    assert "<|im_start|>assistant\nA<|im_end|>" in render_chatml(messages)


class _RecordingTokenizer:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages, **kwargs):
        self.kwargs = kwargs
        return "rendered"


@pytest.mark.parametrize("template", ["qwen3", None, "mistral"])
def test_tokenizer_template_is_used_with_enable_thinking(template):
    tokenizer = _RecordingTokenizer()
    messages = [{"role": "user", "content": "hi"}]
    assert render_prompt(tokenizer, messages, template, enable_thinking=True) == "rendered"
    assert tokenizer.kwargs == {"tokenize": False, "add_generation_prompt": True, "enable_thinking": True}


def test_legacy_template_ignores_the_tokenizer_template():
    tokenizer = _RecordingTokenizer()
    assert render_prompt(tokenizer, [{"role": "user", "content": "hi"}], "chatml").startswith("<|system|>")


def test_real_tokenizer_template_matches_our_chatml_renderer():
    from tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    messages = build_messages("Schema T(a)\n\nCount rows", dialect="sql")
    for thinking in (False, True):
        assert render_prompt(tokenizer, messages, "qwen3", thinking) == render_chatml(
            messages, enable_thinking=thinking
        )
    tokenizer.chat_template = None
    assert render_prompt(tokenizer, messages, "qwen3") == render_chatml(messages)
