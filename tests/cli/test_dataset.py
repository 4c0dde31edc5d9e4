"""``expert-cli dataset validate|stats``."""

from __future__ import annotations

import json

from training_helpers import chat_rows, make_expert, write_jsonl

MULTITASK = "datasets/expert-json-text_to_schema-test.multitask.jsonl"


def test_validate_a_good_file(cli, fixtures_dir):
    result = cli("dataset", "validate", fixtures_dir / MULTITASK)
    assert result.exit_code == 0
    assert result.stdout.strip() == "valid: 5 usable of 5 rows (multitask 5), 0 problem(s)"


def test_validate_lists_each_bad_row_with_its_line(cli, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", chat_rows(2) + [{"messages": [{"role": "user", "content": "q"}]}])
    with path.open("a") as handle:
        handle.write("{broken\n")
    result = cli("dataset", "validate", path)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}:3: the last message must be a non-empty assistant answer"
    assert lines[1].startswith(f"{path}:4: not valid JSON")
    assert lines[-1].startswith("INVALID: 2 usable of 4 rows")


def test_validate_json_and_an_expert_folder(cli, tmp_path):
    expert = make_expert(tmp_path / "e", "base", chat_rows(3))
    result = cli("dataset", "validate", expert, "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["examples"] == 3 and report["formats"] == {"messages": 3}


def test_stats_json(cli, fixtures_dir):
    result = cli("dataset", "stats", fixtures_dir / "datasets/expert-json-text_to_schema-test.chatml.jsonl", "--json")
    assert result.exit_code == 0
    stats = json.loads(result.stdout)
    assert stats["formats"] == {"text": 5} and stats["loss_on_answer_only"] == 5
    assert stats["answer_chars"]["min"] > 100


def test_a_missing_file_is_an_error(cli, tmp_path):
    result = cli("dataset", "stats", tmp_path / "nope.jsonl")
    assert result.exit_code == 1 and result.stderr.startswith("error: dataset")


def test_a_local_file_of_unknown_type_is_refused_without_going_online(cli, tmp_path, monkeypatch):
    import datasets

    def no_hub(*args, **kwargs):
        raise AssertionError("an unknown local file was handed to datasets.load_dataset")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    notes = tmp_path / "rows.txt"
    notes.write_text(json.dumps(chat_rows(1)[0]) + "\n")
    result = cli("dataset", "validate", notes)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[0] == f"error: `{notes}` is not a dataset file (`.txt`)"
    assert "name it `.jsonl`" in result.stderr


def test_an_empty_file_is_invalid_and_says_why(cli, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = cli("dataset", "validate", empty, "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["problems"] == [
        {"location": str(empty), "message": "no rows: the dataset is empty"}]


def test_an_empty_name_is_an_error_not_the_current_folder(cli):
    result = cli("dataset", "stats", "")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[0] == "error: the dataset name is empty"


def test_the_root_folder_is_an_error_not_a_traceback(cli):
    result = cli("dataset", "validate", "/")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[0] == "error: cannot load dataset `/`: no data files found"
