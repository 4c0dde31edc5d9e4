"""The index format: prefix paths, entry lines (good and hostile), and agreement with the JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expert_cli.packages.index import (
    IndexContentError,
    entry_path,
    format_lines,
    parse_config,
    parse_entry_file,
    read_entries,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
KEY = "ed25519:" + "ab" * 32
LINE = {"name": "expert-sql", "version": "1.2.0", "description": "SQL", "capabilities": ["language:sql"],
        "tags": ["sql"], "base_models": [{"name": "builtin:tiny-qwen3", "sha256": None}],
        "adapter": {"type": "lora", "size_bytes": 1000}, "source": {"url": "file:///tmp/x.expert"},
        "sha256": "0" * 64, "size_bytes": 2048, "publisher": {"key": KEY, "fingerprint": "0123456789abcdef"},
        "yanked": False, "requires": ["expert-json@^0.1"], "published_at": "2026-01-01T00:00:00Z"}


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(("name", "path"), [
    ("expert-sql", "3/s/expert-sql"), ("expert-json", "js/on/expert-json"), ("expert-ab", "2/expert-ab"),
    ("expert-a", "1/expert-a"), ("neo4j", "ne/o4/neo4j"), ("Expert-SQL", "3/s/expert-sql"), ("sql", "3/s/sql"),
])
def test_entry_path_follows_the_crates_io_prefix_rule_on_the_short_name(name: str, path: str) -> None:
    assert entry_path(name) == path


def test_a_line_round_trips_and_matches_the_entry_schema() -> None:
    entries = parse_entry_file(json.dumps(LINE) + "\n\n", "expert-sql", "3/s/expert-sql")
    assert [e.to_dict() for e in entries] == [LINE]
    assert json.loads(format_lines(entries)) == LINE
    jsonschema.validate(LINE, schema("expert-index-entry.schema.json"))
    git_source = {**LINE, "source": {"git": "https://h/r.git", "ref": "v1", "commit": None, "path": "x.expert"}}
    jsonschema.validate(git_source, schema("expert-index-entry.schema.json"))
    assert parse_entry_file(json.dumps(git_source), "expert-sql", "f")[0].source == git_source["source"]


def test_config_needs_a_name_and_the_known_format() -> None:
    config = {"name": "team", "format": 1}
    jsonschema.validate(config, schema("expert-index-config.schema.json"))
    assert parse_config(json.dumps(config), "index `t`") == config
    with pytest.raises(IndexContentError, match="uses index format `2`"):
        parse_config('{"name": "team", "format": 2}', "index `t`")
    with pytest.raises(IndexContentError, match="must be an object with a `name`"):
        parse_config('{"format": 1}', "index `t`")


@pytest.mark.parametrize(("change", "message"), [
    ({"sha256": "xyz"}, "`sha256` is missing or malformed"),
    ({"version": "1.2"}, "`version` is missing or malformed"),
    ({"size_bytes": -1}, "`size_bytes` must be a non-negative integer"),
    ({"size_bytes": True}, "`size_bytes` must be a non-negative integer"),
    ({"yanked": "no"}, "`yanked` must be true or false"),
    ({"requires": "expert-json"}, "`requires` must be a list of strings"),
    ({"publisher": {"key": "rsa:1"}}, "`publisher` needs a `key`"),
    ({"base_models": []}, "`base_models` must be a non-empty list"),
    ({"source": {"git": "https://h/r.git", "path": "../../etc/passwd"}}, "relative path inside the repository"),
    ({"source": 5}, "`source` must be an object"),
    ({"name": "expert-json"}, "is for `expert-json`, but the file belongs to `expert-sql`"),
])
def test_a_bad_field_names_the_line_and_the_field(change: dict, message: str) -> None:
    with pytest.raises(IndexContentError) as info:
        parse_entry_file(json.dumps({**LINE, **change}), "expert-sql", "3/s/expert-sql")
    assert message in info.value.message and "`3/s/expert-sql` line 1" in info.value.message
    if "name" not in change:  # which file a line sits in is outside what a schema can say
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**LINE, **change}, schema("expert-index-entry.schema.json"))


def test_the_same_version_for_the_same_base_twice_is_refused() -> None:
    with pytest.raises(IndexContentError, match="line 2 repeats `expert-sql@1.2.0`"):
        parse_entry_file(json.dumps(LINE) + "\n" + json.dumps({**LINE, "sha256": "1" * 64}), "expert-sql", "f")
    other_base = {**LINE, "base_models": [{"name": "Qwen/Qwen3-0.6B"}]}
    assert len(parse_entry_file(json.dumps(LINE) + "\n" + json.dumps(other_base), "expert-sql", "f")) == 2


def test_read_entries_refuses_a_file_at_the_wrong_path_and_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"name": "t", "format": 1}')
    (tmp_path / "3" / "s").mkdir(parents=True)
    (tmp_path / "3" / "s" / "expert-sql").write_text(json.dumps(LINE) + "\n")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "x.yml").write_text("ignored: dot folders")
    (tmp_path / "README.md").write_text("ignored: root files")
    assert [e.spec for e in read_entries(tmp_path, "index `t`")] == ["expert-sql@1.2.0"]
    (tmp_path / "3" / "s" / "expert-sqm").symlink_to("/etc/hostname")
    with pytest.raises(IndexContentError, match="has no regular file `expert-sqm`"):
        read_entries(tmp_path, "index `t`")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                 st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                        st.text(max_size=20)),
                              lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.sampled_from(list(LINE)), inner,
                                                                      max_size=8)),
                              max_leaves=20).map(json.dumps)))
def test_any_line_is_an_entry_or_an_index_content_error(text: str) -> None:
    try:
        parse_entry_file(text, "expert-sql", "3/s/expert-sql")
    except IndexContentError as exc:
        assert exc.message and exc.hint
