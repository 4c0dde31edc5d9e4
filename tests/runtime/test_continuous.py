"""Continuous batching: rows that join a running batch, or leave it, answer exactly as they would alone."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from expert_factory import make_expert

from expert_cli.sdk.manager import ExpertManager
from expert_cli.sdk.requests import Request

PROMPTS = ["SELECT name FROM users", "MATCH (p:Person) RETURN", "The quick brown fox", "hello", "reverse apple",
           '{"name": "Ada"', "COUNT orders GROUP BY", "yes no maybe"]


@pytest.fixture(scope="module")
def manager(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("continuous-experts")
    with ExpertManager(base_model=tiny_model) as manager:
        manager.load_expert("a", make_expert(tiny_model, root / "a", "expert-a", "lora", 1))
        manager.load_expert("b", make_expert(tiny_model, root / "b", "expert-b", "lora", 2))
        manager.load_expert("c", make_expert(tiny_model, root / "c", "expert-c", "ia3", 3))
        yield manager


COMPOSITIONS = [None, "a", "b", "c", {"a": 0.5, "b": 0.5}, ["b", "c"], "a", None]


def prepared(manager: ExpertManager, index: int, max_tokens: int):
    request = Request(PROMPTS[index], overrides={"temperature": 0, "max_tokens": max_tokens})
    return manager.prepare(COMPOSITIONS[index], request)


def solo(manager: ExpertManager, index: int, max_tokens: int) -> list[int]:
    from expert_cli.sdk import requests

    return requests.run([prepared(manager, index, max_tokens)])[0].token_ids


def new_batch(manager: ExpertManager, ragged: bool = True):
    """A continuous batch on the test base: ``ragged`` folds prompts into the next step (the tiny Qwen3 supports
    it), else the two-forward path other models take (prefill at admission, then decode steps)."""
    from expert_cli.runtime.continuous import ContinuousBatch

    batch = ContinuousBatch(prepared(manager, 0, 1).base)
    assert batch.ragged  # SDPA attention, one lm_head: the tiny Qwen3 takes the ragged path by itself
    batch.ragged = ragged
    return batch


@pytest.mark.parametrize("ragged", [True, False], ids=["ragged", "two-forward"])
def test_rows_joining_and_leaving_a_running_batch_decode_as_they_would_alone(manager: ExpertManager, ragged: bool):
    lengths = [3, 9, 5, 12, 7, 4, 10, 6]
    expected = [solo(manager, i, lengths[i]) for i in range(len(PROMPTS))]
    batch = new_batch(manager, ragged)
    pending = list(range(len(PROMPTS)))
    rows: dict[int, object] = {}
    finished: dict[int, list[int]] = {}
    steps = 0
    while pending or len(batch):
        if pending and steps % 2 == 0:  # two rows join every other step, while the others decode
            joining, pending = pending[:2], pending[2:]
            new = batch.admit([prepared(manager, i, lengths[i]).row for i in joining])
            rows.update(zip(joining, new))
        else:
            batch.step()
        for row in batch.take_finished():
            index = next(i for i, r in rows.items() if r is row)
            finished[index] = row.generated
        steps += 1
        assert steps < 200
    assert [finished[i] for i in range(len(PROMPTS))] == expected
    assert all(len(finished[i]) <= lengths[i] for i in finished)


def test_a_ragged_step_is_one_forward_for_the_running_rows_and_the_prompts_joining_them(manager: ExpertManager):
    batch = new_batch(manager)
    batch.admit([prepared(manager, i, 6).row for i in (1, 2)])
    batch.step()
    forwards = []
    decoder = batch.base.model.model
    hook = decoder.register_forward_hook(lambda module, args, kwargs_or_out: forwards.append(1))
    try:
        joining = batch.admit([prepared(manager, i, 6).row for i in (3, 4, 5)])
        assert batch.waiting == 3 and not any(row.generated for row in joining)  # nothing computed yet
        batch.step()
    finally:
        hook.remove()
    assert len(forwards) == 1 and batch.waiting == 0
    assert all(len(row.generated) == 1 for row in joining) and all(len(row.generated) == 2 for row in batch.rows[:2])
    assert batch._mask.shape[0] == len(batch.rows) == 5


@pytest.mark.parametrize("ragged", [True, False], ids=["ragged", "two-forward"])
def test_a_cancelled_row_leaves_and_the_others_go_on(manager: ExpertManager, ragged: bool):
    expected = solo(manager, 1, 8)
    batch = new_batch(manager, ragged)
    keep, drop = batch.admit([prepared(manager, 1, 8).row, prepared(manager, 2, 8).row])
    batch.step()
    drop.cancelled = True
    assert batch.take_finished() == [drop] and drop.finish == "cancelled"
    while len(batch):
        batch.step()
        batch.take_finished()
    assert keep.generated == expected


def test_padding_columns_are_trimmed_when_the_longest_row_leaves(manager: ExpertManager):
    batch = new_batch(manager)
    long_row = Request("x " * 40, overrides={"temperature": 0, "max_tokens": 1})
    batch.admit([manager.prepare(None, long_row).row, prepared(manager, 3, 6).row])
    batch.step()  # the prompts go through (and the long row ends on its first token)
    wide = batch._mask.shape[1]
    batch.take_finished()  # the long row ended on its first token
    assert len(batch) == 1 and batch._mask.shape[1] < wide
    assert bool(batch._mask[:, 0].all())


def test_the_order_of_a_rows_experts_does_not_change_its_answer(manager: ExpertManager):
    from expert_cli.sdk import requests

    request = Request("SELECT name FROM users", overrides={"temperature": 0, "max_tokens": 8})
    forward = requests.run([manager.prepare({"a": 0.5, "c": 0.5}, request)])[0].token_ids
    backward = requests.run([manager.prepare({"c": 0.5, "a": 0.5}, request)])[0].token_ids
    assert forward == backward


def test_a_row_sharing_an_expert_with_a_running_row_answers_as_alone(manager: ExpertManager):
    """Row plans group rows by (expert, weight): a shared IA3 expert must not reorder the other's LoRA."""
    from expert_cli.runtime.continuous import ContinuousBatch
    from expert_cli.sdk import requests

    target = Request("hello", overrides={"temperature": 0, "max_tokens": 7})
    other = Request("yes no maybe", overrides={"temperature": 0, "max_tokens": 20})
    expected = requests.run([manager.prepare({"a": 0.5, "c": 0.5}, target)])[0].token_ids
    batch = ContinuousBatch(manager.prepare(None, target).base)
    batch.admit([manager.prepare({"c": 0.5, "b": 0.5}, other).row])
    (row,) = batch.admit([manager.prepare({"a": 0.5, "c": 0.5}, target).row])
    while len(batch):
        batch.take_finished()
        if len(batch):
            batch.step()
    assert row.generated == expected



def test_ignore_eos_rows_run_to_max_tokens_beside_rows_that_stop():
    from expert_cli.runtime.continuous import ContinuousBatch
    from expert_cli.sdk import requests

    question = "What is the capital of France?"  # the demo base answers and ends its turn
    with ExpertManager(base_model="builtin:tiny-qwen3") as demo:
        def row(**extra):
            return demo.prepare(None, Request(question, overrides={"temperature": 0, "max_tokens": 40, **extra}))

        alone = requests.run([row()])[0].token_ids
        assert len(alone) < 40
        batch = ContinuousBatch(row().base)
        plain, forced = batch.admit([row().row, row(ignore_eos=True).row])
        while len(batch):
            batch.step()
            batch.take_finished()
    assert plain.generated[:len(alone)] == alone and plain.finish == "stop"
    assert len(forced.generated) == 40 and forced.finish == "length"
    assert not set(forced.generated) & set(batch.stop_ids)



def test_prompt_tuning_and_plain_rows_joining_one_ragged_step_answer_as_alone(manager: ExpertManager, tiny_model,
                                                                             tmp_path: Path):
    """Prompt tuning prepends virtual tokens as embeddings: they go through the ragged step like prompt tokens."""
    import dataclasses

    from expert_factory import make_adapter

    from expert_cli.runtime.decoder import BatchDecoder

    base = prepared(manager, 0, 1).base
    base.attach("pt", make_adapter(tiny_model, tmp_path / "pt", "prompt_tuning", 4))
    try:
        a, b = "expert-a@0.1.0", "expert-b@0.1.0"
        compositions = [(("pt", 1.0),), ((a, 1.0),), (("pt", 1.0), (b, 1.0)), ()]
        rows = [dataclasses.replace(prepared(manager, i, 4 + i).row, composition=c) for i, c in enumerate(compositions)]
        expected = [BatchDecoder(base, [row]).run()[0].token_ids for row in rows]
        batch = new_batch(manager)
        first = batch.admit(rows[:1])
        batch.step()
        joined = batch.admit(rows[1:])  # a running prompt-tuning row, three joining (one more with prompt tuning)
        while len(batch):
            batch.step()
            batch.take_finished()
        assert [row.generated for row in first + joined] == expected
    finally:
        base.detach("pt")
