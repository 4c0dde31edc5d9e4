"""Grammar checks and grammar-constrained generation with xgrammar on the tiny model."""

from __future__ import annotations

import json

import pytest

from expert_cli.core.errors import GrammarError
from expert_cli.runtime.grammar import (
    check_grammar,
    compile_grammar,
    compile_grammar_file,
    compile_json_schema,
    grammar_logits_processor,
    json_schema_grammar,
    read_json_schema,
)

YES_NO = 'root ::= "yes" | "no"'
BROKEN = '# a comment\nroot ::= answer\n\nanswer ::= "yes" |\nnext ::= "x"\n'


def _real_grammars(fixtures_dir):
    grammars = sorted(fixtures_dir.glob("*.gbnf"))
    assert grammars, f"no .gbnf files in {fixtures_dir}"
    return grammars


def test_every_real_grammar_passes_the_check(fixtures_dir):
    for path in _real_grammars(fixtures_dir):
        check = check_grammar(path.read_text(), source=str(path))
        assert check.ok, check


def test_real_grammars_accept_typical_queries(fixtures_dir):
    from xgrammar.testing import _is_grammar_accept_string

    sql = (fixtures_dir / "expert-sql-grammar.gbnf").read_text()
    cypher = (fixtures_dir / "expert-neo4j-grammar.gbnf").read_text()
    assert _is_grammar_accept_string(sql, "SELECT name FROM users WHERE age > 30 ORDER BY name LIMIT 5")
    assert not _is_grammar_accept_string(sql, "DROP TABLE users")
    assert _is_grammar_accept_string(cypher, "MATCH (p:Person)-[:KNOWS]->(f) RETURN f.name")


def test_broken_grammar_check_names_the_line():
    check = check_grammar(BROKEN, source="experts/x/grammar.gbnf")
    assert not check.ok
    assert check.line == 5
    assert check.line_text == 'next ::= "x"'
    assert check.to_dict()["line"] == 5


def test_compile_broken_grammar_raises_grammar_error_with_file_and_line(tiny_model):
    tokenizer = _tokenizer(tiny_model)
    with pytest.raises(GrammarError) as caught:
        compile_grammar(BROKEN, tokenizer, source="grammar.gbnf")
    assert "`grammar.gbnf`" in caught.value.message
    assert "line 5" in caught.value.message
    assert "line 5" in caught.value.hint


def test_undefined_rule_is_reported_at_its_line():
    check = check_grammar('root ::= "a"\n\nroot2 ::= missing\n')
    assert (check.ok, check.line) == (False, 3)
    assert "missing" in check.error


def test_every_real_grammar_compiles_for_a_tokenizer(tiny_model, fixtures_dir):
    tokenizer = _tokenizer(tiny_model)
    for path in _real_grammars(fixtures_dir):
        assert compile_grammar_file(path, tokenizer) is not None


def test_compiled_grammar_is_cached_per_text_and_vocab(tiny_model):
    tokenizer = _tokenizer(tiny_model)
    first = compile_grammar(YES_NO, tokenizer)
    assert compile_grammar(YES_NO, tokenizer) is first
    assert compile_grammar(YES_NO, tokenizer, vocab_size=len(tokenizer) + 8) is not first
    assert compile_grammar('root ::= "no"', tokenizer) is not first


def _tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _model_and_inputs(path, prompts, extra_vocab=0):
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = _tokenizer(path)
    tokenizer.padding_side = "left"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path)
    if extra_vocab:
        model.resize_token_embeddings(len(tokenizer) + extra_vocab, mean_resizing=False)
    model.eval()
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}],
            tokenize=False,
            add_generation_prompt=True,
            enable_thinking=False,
        )
        for p in prompts
    ]
    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    return model, tokenizer, inputs


def _generate(model, inputs, processors=(), max_new_tokens=12):
    return model.generate(
        **inputs, logits_processor=list(processors), max_new_tokens=max_new_tokens, do_sample=False
    )[:, inputs["input_ids"].shape[1] :]


def _texts(tokenizer, generated):
    return [tokenizer.decode(row, skip_special_tokens=True) for row in generated]


def test_grammar_forces_untrained_model_into_the_language_and_stops(tiny_model):
    model, tokenizer, inputs = _model_and_inputs(tiny_model, ["Is the sky blue?"])
    free = _texts(tokenizer, _generate(model, inputs))[0]
    compiled = compile_grammar(
        YES_NO,
        tokenizer,
        vocab_size=model.config.vocab_size,
        stop_token_ids=model.generation_config.eos_token_id,
    )
    generated = _generate(model, inputs, [grammar_logits_processor(compiled, 1)])
    assert free not in ("yes", "no")
    assert _texts(tokenizer, generated)[0] in ("yes", "no")
    assert generated.shape[1] < 12 and generated[0, -1].item() == tokenizer.eos_token_id


def test_sampling_under_a_grammar_stays_in_the_language(tiny_model):
    import torch

    model, tokenizer, inputs = _model_and_inputs(tiny_model, ["Answer:"])
    compiled = compile_grammar('root ::= [a-z]+ " " [0-9]{2}', tokenizer)
    torch.manual_seed(1)
    generated = model.generate(
        **inputs,
        logits_processor=[grammar_logits_processor(compiled, 1)],
        max_new_tokens=40,
        do_sample=True,
        temperature=1.5,
        top_k=20,
        top_p=0.9,
    )
    text = tokenizer.decode(generated[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert __import__("re").fullmatch(r"[a-z]+ [0-9]{2}", text), text


def test_mixed_batch_constrains_only_the_rows_with_a_grammar(tiny_model):
    model, tokenizer, inputs = _model_and_inputs(tiny_model, ["Is the sky blue?", "Say hello"])
    free = _generate(model, inputs)
    compiled = compile_grammar(YES_NO, tokenizer, vocab_size=model.config.vocab_size)
    mixed = _generate(model, inputs, [grammar_logits_processor([compiled, None], 2)])
    assert _texts(tokenizer, mixed)[0] in ("yes", "no")
    assert mixed[1].tolist() == free[1].tolist()[: mixed.shape[1]]
    assert mixed.shape[1] == free.shape[1]  # the free row still runs to max_new_tokens


class _BoostPaddedIds:
    """Makes the ids beyond the tokenizer's vocabulary win, as a badly padded lm_head could."""

    def __init__(self, first_padded_id):
        self.first = first_padded_id

    def __call__(self, input_ids, scores):
        scores[:, self.first :] += 1000.0
        return scores


@pytest.mark.parametrize("pass_vocab_size", [True, False])
def test_model_vocab_larger_than_tokenizer_is_masked(tiny_model, pass_vocab_size):
    model, tokenizer, inputs = _model_and_inputs(tiny_model, ["Is it?"], extra_vocab=24)
    assert model.config.vocab_size == len(tokenizer) + 24
    boost = _BoostPaddedIds(len(tokenizer))
    assert _generate(model, inputs, [boost], max_new_tokens=2)[0, 0].item() >= len(tokenizer)
    vocab_size = model.config.vocab_size if pass_vocab_size else None
    compiled = compile_grammar(YES_NO, tokenizer, vocab_size=vocab_size)
    generated = _generate(model, inputs, [boost, grammar_logits_processor(compiled, 1)])
    assert _texts(tokenizer, generated)[0] in ("yes", "no")


def test_processor_refuses_a_wrong_batch_size(tiny_model):
    tokenizer = _tokenizer(tiny_model)
    compiled = compile_grammar(YES_NO, tokenizer)
    with pytest.raises(GrammarError):
        grammar_logits_processor([compiled], 2)


def test_rows_may_each_have_their_own_grammar(tiny_model):
    import re

    model, tokenizer, inputs = _model_and_inputs(tiny_model, ["Is it?", "Count:", "Say hello"])
    yes_no = compile_grammar(YES_NO, tokenizer)
    digits = compile_grammar("root ::= [0-9] [0-9]", tokenizer)
    free = _generate(model, inputs)
    generated = _generate(model, inputs, [grammar_logits_processor([yes_no, digits, None], 3)])
    texts = _texts(tokenizer, generated)
    assert texts[0] in ("yes", "no")
    assert re.fullmatch(r"[0-9]{2}", texts[1]), texts[1]
    assert generated[2].tolist() == free[2].tolist()


# -- structured output: a JSON Schema instead of a grammar file ------------------------------------------
PET = {"type": "object", "properties": {"name": {"type": ["string", "null"]}, "age": {"type": "integer"},
                                        "vaccinated": {"type": "boolean"}},
       "required": ["name", "age", "vaccinated"], "additionalProperties": False}
SMALL = {"type": "object", "properties": {"ok": {"type": "boolean"}, "size": {"enum": ["small", "large"]}},
         "required": ["ok", "size"], "additionalProperties": False}


def test_a_json_schema_accepts_its_documents_written_as_json_dumps_does():
    from xgrammar.testing import _is_grammar_accept_string

    grammar = json_schema_grammar(PET)
    assert _is_grammar_accept_string(grammar, '{"name": "Luna", "age": 17, "vaccinated": true}')
    assert _is_grammar_accept_string(grammar, '{"name": null, "age": 3, "vaccinated": false}')
    assert not _is_grammar_accept_string(grammar, '{"name": true, "age": 17, "vaccinated": true}')  # a type
    assert not _is_grammar_accept_string(grammar, '{"name": "Luna", "age": 17}')  # a required key
    assert not _is_grammar_accept_string(grammar, '{"age": 17, "name": "Luna", "vaccinated": true}')  # the order
    assert not _is_grammar_accept_string(grammar, '{"name": "Luna", "age": 17, "vaccinated": true, "x": 1}')


@pytest.mark.parametrize(("schema", "message"), [
    ({"type": "objec"}, 'JSON schema `s.json` is not supported: Unsupported type "objec"'),
    (["not", "an", "object"], "JSON schema `s.json` must be a JSON object, not list"),
])
def test_an_unusable_json_schema_is_a_grammar_error(schema, message):
    with pytest.raises(GrammarError) as caught:
        json_schema_grammar(schema, "s.json")
    assert caught.value.message == message


def test_reading_a_json_schema_file_names_what_is_wrong_and_where(tmp_path):
    good = tmp_path / "pet.json"
    good.write_text(json.dumps(PET))
    assert read_json_schema(good) == PET
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "type": "object",\n  "properties": {,}\n}')
    with pytest.raises(GrammarError, match=r"`.*broken.json` is not valid JSON: line 3, column 18: Expecting property name"):
        read_json_schema(broken)
    with pytest.raises(GrammarError, match="cannot read JSON schema `.*missing.json`: No such file"):
        read_json_schema(tmp_path / "missing.json")


def test_a_json_schema_forces_an_untrained_model_into_a_valid_document(tiny_model):
    model, tokenizer, inputs = _model_and_inputs(tiny_model, ["Describe it."])
    compiled = compile_json_schema(SMALL, tokenizer, vocab_size=model.config.vocab_size,
                                   stop_token_ids=model.generation_config.eos_token_id)
    assert compile_json_schema(dict(SMALL), tokenizer, vocab_size=model.config.vocab_size,
                               stop_token_ids=model.generation_config.eos_token_id) is compiled  # cached
    text = _texts(tokenizer, _generate(model, inputs, [grammar_logits_processor(compiled, 1)], 40))[0]
    document = json.loads(text)
    assert list(document) == ["ok", "size"] and isinstance(document["ok"], bool) and document["size"] in ("small", "large")
