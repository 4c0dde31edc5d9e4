"""From a manifest's dataset section to train/eval/test examples: files, tasks, splits, filters, HF folders."""

from __future__ import annotations

import json
import random

import pytest
from training_helpers import chat_rows, make_expert, write_jsonl

from expert_cli.core.errors import DatasetError
from expert_cli.manifest.model import load_manifest
from expert_cli.training.dataset_report import inspect_dataset
from expert_cli.training.datasets import load_training_data, read_examples, weighted_sample


def test_a_bad_row_is_reported_with_file_and_line(tmp_path):
    rows = chat_rows(3) + [{"messages": [{"role": "user", "content": "no answer"}]}] + chat_rows(2)
    expert = make_expert(tmp_path / "e", "base", rows)
    with pytest.raises(DatasetError) as caught:
        load_training_data(load_manifest(expert))
    assert f"`{expert / 'data' / 'train.jsonl'}:4`" in caught.value.message
    assert "assistant answer" in caught.value.message
    assert caught.value.hint.startswith("run `expert-cli dataset validate")


def test_invalid_json_lines_are_reported_with_their_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n\n{"prompt": oops}\n', encoding="utf-8")
    result = read_examples(str(path))
    assert [p.location for p in result.problems] == [f"{path}:3"]
    assert "not valid JSON" in result.problems[0].message


def test_mixing_formats_in_one_file_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a", "completion": "b"}] * 2 + [{"text": "plain"}])
    result = read_examples(str(path))
    assert len(result.problems) == 1 and "the file's rows are `prompt_completion`" in result.problems[0].message


def test_dataset_paths_resolve_against_the_manifest_folder(tmp_path, monkeypatch):
    expert = make_expert(tmp_path / "e", "base", chat_rows(4))
    monkeypatch.chdir(tmp_path)
    data = load_training_data(load_manifest(expert))
    assert len(data.train) == 4 and data.eval_source == "none"


def test_validation_and_test_files_are_used_when_named(tmp_path):
    write_jsonl(tmp_path / "e" / "data" / "valid.jsonl", chat_rows(2))
    write_jsonl(tmp_path / "e" / "data" / "test.jsonl", chat_rows(3))
    expert = make_expert(tmp_path / "e", "base", chat_rows(20), dataset={
        "path": "data/train.jsonl", "validation_path": "data/valid.jsonl", "test_path": "data/test.jsonl"})
    data = load_training_data(load_manifest(expert))
    assert (len(data.train), len(data.eval), len(data.test), data.eval_source) == (20, 2, 3, "file")


def test_without_a_validation_file_a_seeded_tenth_is_held_out(tmp_path):
    rows = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(50)]
    expert = make_expert(tmp_path / "e", "base", rows)
    first = load_training_data(load_manifest(expert), seed=7)
    second = load_training_data(load_manifest(expert), seed=7)
    assert (len(first.train), len(first.eval), first.eval_source) == (45, 5, "split")
    assert [e.prompt for e in first.eval] == [e.prompt for e in second.eval]
    assert not {e.prompt for e in first.eval} & {e.prompt for e in first.train}


def test_the_dataset_flag_wins_over_the_manifest(tmp_path):
    other = write_jsonl(tmp_path / "other.jsonl", [{"prompt": "x", "completion": "y"}] * 3)
    expert = make_expert(tmp_path / "e", "base", chat_rows(4))
    data = load_training_data(load_manifest(expert), str(other))
    assert [e.format for e in data.train] == ["prompt_completion"] * 3


def test_multitask_tasks_are_weighted(tmp_path):
    write_jsonl(tmp_path / "e" / "a.jsonl", [_task_row("a", i) for i in range(10)])
    write_jsonl(tmp_path / "e" / "b.jsonl", [_task_row("b", i) for i in range(10)])
    write_jsonl(tmp_path / "e" / "b_valid.jsonl", [_task_row("b", 99)])
    expert = make_expert(tmp_path / "e", "base", None, dataset={"type": "multi_task", "tasks": {
        "a": {"train": "a.jsonl", "weight": 0.5, "format": "sft"},
        "b": {"train": "b.jsonl", "valid": "b_valid.jsonl", "weight": 2, "format": "sft"}},
        "validation": {"deduplicate": False}})
    data = load_training_data(load_manifest(expert))
    tasks = [e.task for e in data.train]
    assert (tasks.count("a"), tasks.count("b"), len(data.eval)) == (5, 20, 1)


def test_multitask_defaults_drop_duplicates_and_too_short_answers(tmp_path):
    rows = [_task_row("a", 1), _task_row("a", 1), {"task": "a", "input": {"instruction": "x"}, "output": "short"}]
    write_jsonl(tmp_path / "e" / "a.jsonl", rows)
    expert = make_expert(tmp_path / "e", "base", None, dataset={"tasks": {
        "a": {"train": "a.jsonl", "weight": 1, "format": "sft"}}})
    warnings: list[str] = []
    data = load_training_data(load_manifest(expert), warn=warnings.append)
    assert len(data.train) == 1 and data.dropped == {"duplicate": 1, "too_short": 1}
    assert any("dropped 2 row(s)" in w for w in warnings)


def test_weighted_sample_repeats_above_one():
    rows = list(range(4))
    assert len(weighted_sample(rows, 2.5, random.Random(0))) == 10  # type: ignore[arg-type]


def test_a_saved_dataset_folder_with_a_split(tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_list([{"prompt": "a", "completion": "b"}] * 3),
                 "test": Dataset.from_list([{"prompt": "c", "completion": "d"}])}).save_to_disk(tmp_path / "ds")
    result = read_examples(f"{tmp_path / 'ds'}::test")
    assert [(e.prompt, e.completion) for e in result.examples] == [("c", "d")]
    assert result.examples[0].location.endswith("row 1")


def test_an_unknown_split_names_the_ones_there(tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_list([{"text": "x"}])}).save_to_disk(tmp_path / "ds")
    with pytest.raises(DatasetError, match="no split `dev`; it has train"):
        read_examples(f"{tmp_path / 'ds'}::dev")


def test_an_uncached_hub_dataset_fails_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DatasetError) as caught:
        read_examples("nobody-here/no-such-dataset::train")
    assert "nobody-here/no-such-dataset" in caught.value.message and "hf download" in caught.value.hint


def test_a_missing_local_file_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_examples(str(tmp_path / "nope.jsonl"))


def test_inspect_reads_every_file_a_manifest_names(tmp_path):
    write_jsonl(tmp_path / "e" / "data" / "valid.jsonl", [{"messages": [{"role": "user", "content": "x"}]}])
    expert = make_expert(tmp_path / "e", "base", chat_rows(3), dataset={
        "path": "data/train.jsonl", "validation_path": "data/valid.jsonl"})
    report = inspect_dataset(expert)
    assert not report.ok and len(report.sources) == 2
    assert report.problems[0].location == f"{expert / 'data' / 'valid.jsonl'}:1"


def _task_row(task: str, index: int) -> dict:
    return {"task": task, "input": {"instruction": f"make {index}"}, "output": json.dumps({"value": index})}
