"""Expert specs as users type them: `name[@version]`, canonicalised to `expert-<name>`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expert_cli.core.errors import ExitCode, SpecError
from expert_cli.core.specs import ExpertSpec, canonical_name, format_spec, parse_expert_spec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sql", ExpertSpec("expert-sql", None)),
        ("expert-sql", ExpertSpec("expert-sql", None)),
        ("sql@0.3.0", ExpertSpec("expert-sql", "0.3.0")),
        ("expert-sql@0.3.0", ExpertSpec("expert-sql", "0.3.0")),
        ("  sql  @  0.3.0  ", ExpertSpec("expert-sql", "0.3.0")),
        ("neo4j@1.0.0-rc.1", ExpertSpec("expert-neo4j", "1.0.0-rc.1")),
    ],
)
def test_parse_expert_spec(text: str, expected: ExpertSpec):
    assert parse_expert_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "@0.3.0", "sql@", "sql@  ", "s ql", "sql@0.3 .0", "sql@@0.3.0", "sql@0.3.0@1", "-sql",
     "../etc", "sql/evil", "sql\\evil", ".hidden", "sql@../0.3.0", "sql@0.3.0/x"],
)
def test_bad_specs_raise_spec_error(text: str):
    with pytest.raises(SpecError) as caught:
        parse_expert_spec(text)
    assert caught.value.exit_code == ExitCode.USAGE
    assert "`" in caught.value.message


def test_display_form():
    assert str(ExpertSpec("expert-sql", "0.3.0")) == "expert-sql@0.3.0"
    assert str(ExpertSpec("expert-sql")) == "expert-sql"
    assert format_spec("expert-sql", None) == "expert-sql"
    assert canonical_name("  sql ") == "expert-sql"


# -- properties ---------------------------------------------------------------------------------------------
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
versions = st.from_regex(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(-[0-9A-Za-z.]{1,8})?", fullmatch=True)
spaces = st.text(alphabet=" \t", max_size=3)


@settings(max_examples=200)
@given(name=names, version=versions, pad=st.tuples(spaces, spaces, spaces, spaces))
def test_whitespace_around_either_part_is_ignored(name: str, version: str, pad: tuple):
    text = f"{pad[0]}{name}{pad[1]}@{pad[2]}{version}{pad[3]}"
    assert parse_expert_spec(text) == parse_expert_spec(f"{name}@{version}")


@settings(max_examples=200)
@given(name=names, version=st.none() | versions)
def test_parsed_spec_is_canonical_and_round_trips(name: str, version: str | None):
    text = f"{name}@{version}" if version else name
    spec = parse_expert_spec(text)
    assert spec.name.startswith("expert-")
    assert spec.name in (name, "expert-" + name)
    assert spec.version == version
    assert parse_expert_spec(str(spec)) == spec


@settings(max_examples=300)
@given(text=st.text(max_size=30))
def test_any_text_parses_or_raises_spec_error(text: str):
    try:
        spec = parse_expert_spec(text)
    except SpecError:
        return
    assert spec.name.startswith("expert-")
    assert "/" not in spec.name and "\\" not in spec.name and not spec.name.startswith(".")
    assert spec.version is None or ("/" not in spec.version and spec.version == spec.version.strip())
