"""Generation: mixed-expert batches, padding, streaming, stop sequences, grammar, decoding settings."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from expert_factory import make_expert

from expert_cli.core.errors import UsageError

YES_NO = 'root ::= answer (" " answer)?\nanswer ::= "yes" | "no" | "maybe"\n'
PICK = 'root ::= "FROM " schema-name\nschema-name ::= [a-z]+\n'
PROMPTS = ["SELECT name FROM users", "hi", "MATCH (p:Person) RETURN p.name, p.age ORDER BY p.age", "The quick"]


@pytest.fixture(scope="module")
def experts(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gen-experts")
    return {
        "a": make_expert(tiny_model, root / "a", "expert-a", "lora", 1, capabilities=["query:sql"]),
        "b": make_expert(tiny_model, root / "b", "expert-b", "dora", 2, template="chatml"),
        "c": make_expert(tiny_model, root / "c", "expert-c", "ia3", 3),
        "yn": make_expert(tiny_model, root / "yn", "expert-yn", "lora", 4, grammar=YES_NO,
                          decoding={"temperature": 1.0, "max_new_tokens": 6}),
        "pick": make_expert(tiny_model, root / "pick", "expert-pick", "lora", 5, grammar=PICK,
                            decoding={"names_from_prompt": "schema-name", "max_new_tokens": 12}),
        "pickfree": make_expert(tiny_model, root / "pickfree", "expert-pickfree", "lora", 5, grammar=PICK,
                                decoding={"max_new_tokens": 12}),
        "unbound": make_expert(tiny_model, root / "unbound", "expert-unbound", "lora", 6, grammar=YES_NO,
                               decoding={"names_from_prompt": "schema-name"}),
    }


@pytest.fixture(scope="module")
def loaded(tiny_model: Path, experts: dict[str, Path]):
    from expert_cli.runtime.bundle import open_expert
    from expert_cli.runtime.generate import Member
    from expert_cli.runtime.pool import BasePool

    base = BasePool().get(tiny_model, device="cpu")
    members = {}
    for key, folder in experts.items():
        bundle = open_expert(folder)
        members[key] = Member(base.acquire_adapter(bundle.label, bundle.adapter_dir), bundle)
    return base, members


def run(loaded, prompts, compositions, **overrides):
    from expert_cli.runtime.generate import PromptOptions, generate_rows, prepare_row

    base, members = loaded
    grammar = overrides.pop("grammar", True)
    options = PromptOptions(overrides={"temperature": 0, "max_tokens": 8, **overrides}, grammar=grammar)
    chosen = [[members[k] for k in keys] for keys in compositions]
    rows = [prepare_row(base, prompt, mem, options) for prompt, mem in zip(prompts, chosen)]
    return generate_rows(base, rows, chosen)


def test_mixed_expert_batch_equals_each_row_alone(loaded):
    compositions = [["a"], [], ["b", "a"], ["c"]]
    batch = run(loaded, PROMPTS, compositions)
    singles = [run(loaded, [p], [c])[0] for p, c in zip(PROMPTS, compositions)]
    assert [r.token_ids for r in batch] == [r.token_ids for r in singles]
    assert [r.experts for r in batch] == [["expert-a@0.1.0"], [], ["expert-b@0.1.0", "expert-a@0.1.0"],
                                          ["expert-c@0.1.0"]]
    assert len({tuple(r.token_ids) for r in run(loaded, [PROMPTS[0]] * 3, [["a"], ["b"], []])}) > 1


def test_sampled_rows_are_reproducible_with_a_seed_alone_or_batched(loaded):
    compositions = [["a"], ["b"], []]
    options = {"temperature": 0.9, "top_k": 40, "top_p": 0.95, "repetition_penalty": 1.3, "seed": 11}
    batch = run(loaded, PROMPTS[:3], compositions, **options)
    singles = [run(loaded, [p], [c], **options)[0] for p, c in zip(PROMPTS[:3], compositions)]
    assert [r.token_ids for r in batch] == [r.token_ids for r in singles]


def test_left_padding_does_not_change_results(loaded):
    short = run(loaded, ["hi"], [["a"]])[0]
    padded = run(loaded, ["hi", PROMPTS[2] * 3], [["a"], ["a"]])[0]
    assert padded.token_ids == short.token_ids and padded.text == short.text


def test_streamed_pieces_concatenate_to_the_plain_text(loaded):
    from expert_cli.runtime.generate import PromptOptions, TextStream, prepare_row

    base, members = loaded
    plain = run(loaded, [PROMPTS[0]], [["a"]], max_tokens=12)[0]
    row = prepare_row(base, PROMPTS[0], [members["a"]], PromptOptions(overrides={"temperature": 0, "max_tokens": 12}))
    stream = TextStream(base, row, [members["a"]])
    pieces = list(stream)
    assert "".join(pieces) == plain.text == stream.result.text
    assert stream.result.token_ids == plain.token_ids


def test_closing_a_stream_stops_early_and_keeps_the_partial_result(loaded):
    from expert_cli.runtime.generate import PromptOptions, TextStream, prepare_row

    base, members = loaded
    options = PromptOptions(overrides={"temperature": 1.0, "seed": 3, "max_tokens": 50})
    row = prepare_row(base, "hi", [members["a"]], options)
    with TextStream(base, row, [members["a"]]) as stream:
        assert next(stream)
        result = stream.close()
    assert result.finish_reason == "cancelled" and 1 <= result.tokens < 50
    assert base.routing.plan == ()


def test_stop_sequence_ends_generation_and_is_removed(loaded):
    full = run(loaded, [PROMPTS[3]], [["a"]], max_tokens=12)[0]
    stop = full.raw_text[len(full.raw_text) // 2:][:2]
    cut = run(loaded, [PROMPTS[3]], [["a"]], max_tokens=12, stop=[stop])[0]
    assert cut.finish_reason == "stop_sequence" and stop not in cut.text
    assert full.raw_text.startswith(cut.raw_text[: full.raw_text.index(stop)])
    assert cut.tokens < full.tokens


def test_grammar_forces_output_into_its_language(loaded):
    allowed = {"yes", "no", "maybe"}
    for seed in range(4):
        result = run(loaded, [PROMPTS[seed]], [["yn"]], temperature=1.0, max_tokens=16, seed=seed)[0]
        assert result.grammar and result.finish_reason == "stop"
        assert all(word in allowed for word in result.text.split(" ")), result.text
    free = [run(loaded, [PROMPTS[s]], [["yn"]], temperature=1.0, seed=s, grammar=False)[0] for s in range(4)]
    assert not any(r.grammar for r in free)
    assert any(not set(r.text.split(" ")) <= allowed for r in free)


def test_a_rule_bound_to_the_prompt_only_produces_the_prompts_names(loaded):
    prompt = "Tables: harbor, vessel, cargo. Which one?"
    names = {"Tables", "harbor", "vessel", "cargo", "Which", "one"}
    picked = []
    for seed in range(6):
        result = run(loaded, [prompt], [["pick"]], temperature=1.0, max_tokens=12, seed=seed)[0]
        assert result.grammar and result.text.startswith("FROM ")
        picked.append(result.text.removeprefix("FROM "))
    assert set(picked) <= names, picked
    free = [run(loaded, [prompt], [["pickfree"]], temperature=1.0, max_tokens=12, seed=s)[0].text for s in range(6)]
    assert not {text.removeprefix("FROM ") for text in free} <= names, free  # the file's rule alone: any word


def test_binding_a_rule_the_grammar_lacks_names_the_rule_and_the_manifest_field(loaded):
    from expert_cli.core.errors import GrammarError

    with pytest.raises(GrammarError, match="schema-name") as caught:
        run(loaded, ["hi"], [["unbound"]])
    assert "names_from_prompt" in caught.value.message


def test_manifest_decoding_applies_and_overrides_win(loaded):
    from expert_cli.runtime.generate import PromptOptions, prepare_row

    base, members = loaded
    row = prepare_row(base, "hi", [members["yn"]], PromptOptions())
    assert row.params.max_tokens == 6 and row.params.temperature == 1.0
    row = prepare_row(base, "hi", [members["yn"]], PromptOptions(overrides={"max_tokens": 3, "temperature": 0}))
    assert row.params.max_tokens == 3 and row.params.greedy
    result = run(loaded, ["hi"], [["a"]], max_tokens=3, grammar=False)[0]
    assert result.tokens <= 3
    with pytest.raises(UsageError, match="unknown generation option `max_new_tokenz`"):
        prepare_row(base, "hi", [], PromptOptions(overrides={"max_new_tokenz": 3}))
    with pytest.raises(UsageError, match="top_p"):
        prepare_row(base, "hi", [], PromptOptions(overrides={"top_p": 0}))


def test_expert_template_and_schema_shape_the_prompt(loaded):
    from expert_cli.runtime.generate import PromptOptions, prepare_row

    base, members = loaded
    row = prepare_row(base, "List users", [members["a"]], PromptOptions(schema="CREATE TABLE users (id INT)"))
    text = base.tokenizer.decode(row.prompt_ids)
    assert text.startswith("<|im_start|>system\nDialect: sql\nSchema:\nCREATE TABLE users (id INT)<|im_end|>")
    legacy = base.tokenizer.decode(prepare_row(base, "List users", [members["b"]], PromptOptions()).prompt_ids)
    assert legacy.startswith("<|system|>\n")
