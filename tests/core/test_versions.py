"""Version ranges for constraints.requires."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expert_cli.core.errors import UsageError
from expert_cli.core.versions import Requirement, parse_requirement, satisfies, version_key


@pytest.mark.parametrize("text, requirement", [
    ("sql", Requirement("expert-sql", "*")),
    ("expert-sql@0.3.0", Requirement("expert-sql", "0.3.0")),
    ("sql@^0.3", Requirement("expert-sql", "^0.3")),
    ("  json >=0.2,<0.4 ", Requirement("expert-json", ">=0.2,<0.4")),
    ("neo4j@1.x", Requirement("expert-neo4j", "1.x")),
])
def test_parse_requirement(text: str, requirement: Requirement) -> None:
    assert parse_requirement(text) == requirement


@pytest.mark.parametrize("version, spec, expected", [
    ("0.3.4", "^0.3", True), ("0.4.0", "^0.3", False), ("1.9.0", "^1.2.3", True), ("2.0.0", "^1.2.3", False),
    ("1.2.9", "~1.2.3", True), ("1.3.0", "~1.2.3", False), ("1.2.2", "~1.2.3", False),
    ("0.3.0", ">=0.2,<0.4", True), ("0.4.0", ">=0.2, <0.4", False), ("0.2.0", ">0.2", False),
    ("1.4.0", "1.x", True), ("2.0.0", "1.x", False), ("1.2.7", "1.2.*", True), ("5.0.0", "*", True),
    ("1.2.3", "1.2.3", True), ("1.2.4", "=1.2.3", False), ("1.2.4", "1.2", True), ("1.0.0", "!=1.0.0", False),
    ("0.1.0", "<0.2 || >=1.0", True), ("0.5.0", "<0.2 || >=1.0", False), ("1.0.0-rc.1", "<1.0.0", True),
])
def test_satisfies(version: str, spec: str, expected: bool) -> None:
    assert satisfies(version, spec) is expected


def test_unreadable_range_is_an_error() -> None:
    with pytest.raises(UsageError, match="cannot be read"):
        parse_requirement("sql@>>1")


versions = st.tuples(*(st.integers(0, 30),) * 3).map(lambda t: ".".join(map(str, t)))


@given(versions, versions)
def test_comparators_agree_with_version_order(a: str, b: str) -> None:
    assert satisfies(a, a) and satisfies(a, f"^{a}") and satisfies(a, f"~{a}")
    assert satisfies(a, f">={b}") == (version_key(a) >= version_key(b))
    assert satisfies(a, f"<{b}") == (version_key(a) < version_key(b))
