"""Expert test cases: read every `tests/test_cases.json` shape the original system used, plus ours.

Accepted, per case (a file holds ``{"test_cases": [...]}``, a bare list, or JSON Lines):

- the original template: ``{id, name, prompt, expected_keywords, expected_format, category, may_fail?,
  failure_reason?}``, scored by keywords (the original's 10 x found/expected);
- the progress-test and experts/README variants: ``input`` instead of ``prompt``, ``expected_output`` instead of
  ``expected_keywords`` (scored by exact match), missing fields tolerated;
- the expert-tools variant: ``{name, system, user, expected_tool}`` (the tool name is the keyword);
- our extension: ``system`` (the Dialect/Schema system message), ``reference``, ``metric`` and ``setup`` (statements
  that build the database an execution metric runs on);
- a chat row of a reference expert's test split: ``{"messages": [system, user, assistant], metric?, setup?}``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import DatasetError

METRICS = ("keywords", "exact_match", "sql_execution", "cypher_execution", "cypher_structure", "json_equal")
NEEDS_REFERENCE = frozenset(METRICS) - {"keywords"}
_KNOWN_KEYS = {"id", "name", "prompt", "input", "user", "system", "reference", "expected_output", "expected_keywords",
               "expected_format", "category", "metric", "setup", "may_fail", "failure_reason", "description",
               "messages", "json_schema"}


@dataclass
class TestCase:
    """One prompt to send to an expert and how to score the answer."""

    __test__ = False  # not a pytest class

    id: str
    name: str
    prompt: str
    metric: str = "keywords"
    system: str | None = None
    reference: str | None = None
    expected_keywords: list[str] = field(default_factory=list)
    expected_format: str | None = None
    category: str | None = None
    setup: list[str] = field(default_factory=list)
    may_fail: bool = False
    failure_reason: str | None = None
    description: str | None = None
    json_schema: dict[str, Any] | None = None  # structured output: the answer must be JSON this schema accepts
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_test_cases(path: str | Path) -> list[TestCase]:
    """Read a test-case file (``.json`` in any accepted shape, or ``.jsonl``); errors name the file and case."""
    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"no test cases at `{source}`", hint="pass a `tests/test_cases.json` file")
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read `{source}`: {exc}") from exc
    raw_cases = _parse_jsonl(text, source) if source.suffix == ".jsonl" else _parse_json(text, source)
    cases = [parse_test_case(raw, index, source) for index, raw in enumerate(raw_cases)]
    duplicates = sorted({c.id for c in cases if sum(other.id == c.id for other in cases) > 1})
    if duplicates:
        raise DatasetError(f"`{source}` repeats test case id `{duplicates[0]}`", hint="give every case its own `id`")
    return cases


def _parse_json(text: str, source: Path) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"`{source}` is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    if isinstance(data, dict):
        data = data.get("test_cases")
        if not isinstance(data, list):
            raise DatasetError(f"`{source}` has no `test_cases` list", hint='write {"test_cases": [{"prompt": ...}]}')
    if not isinstance(data, list):
        raise DatasetError(f"`{source}` must hold an object with `test_cases` or a list of cases")
    return data


def _parse_jsonl(text: str, source: Path) -> list[Any]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"`{source}` line {number} is not valid JSON: {exc.msg}") from exc
    return rows


def parse_test_case(raw: Any, index: int, source: str | Path = "test cases") -> TestCase:
    """Build one :class:`TestCase` from any accepted shape; ``index`` (0-based) names it in errors."""
    if not isinstance(raw, dict):
        raise DatasetError(f"case #{index + 1} in `{source}` must be a JSON object, not {type(raw).__name__}")
    if "messages" in raw:
        raw = {**_from_messages(raw, index, source), **{k: v for k, v in raw.items() if k != "messages"}}
    case_id = str(raw.get("id") or raw.get("name") or f"case_{index + 1:03d}")
    where = f"case `{case_id}` in `{source}`"
    prompt = _first(raw, ("prompt", "input", "user"))
    if not isinstance(prompt, str) or not prompt.strip():
        raise DatasetError(f"{where} has no prompt", hint="give it a `prompt` (or `input`) string")
    keywords = _keywords(raw, where)
    reference = _reference(raw, where)
    metric = raw.get("metric") or ("exact_match" if reference is not None and not keywords else "keywords")
    if metric not in METRICS:
        raise DatasetError(f"{where} has unknown metric `{metric}`", hint=f"use one of: {', '.join(METRICS)}")
    if metric in NEEDS_REFERENCE and reference is None:
        raise DatasetError(f"{where} uses metric `{metric}` but has no `reference`")
    if metric == "json_equal":
        _check_json(reference, where)
    return TestCase(
        id=case_id, name=str(raw.get("name") or case_id), prompt=prompt, metric=metric,
        system=_optional_str(raw, "system", where), reference=reference, expected_keywords=keywords,
        expected_format=_optional_str(raw, "expected_format", where), category=_optional_str(raw, "category", where),
        setup=_setup(raw, where), may_fail=bool(raw.get("may_fail", False)),
        failure_reason=_optional_str(raw, "failure_reason", where), description=_optional_str(raw, "description", where),
        json_schema=_json_schema(raw, where), extra={k: v for k, v in raw.items() if k not in _KNOWN_KEYS},
    )


def _json_schema(raw: dict[str, Any], where: str) -> dict[str, Any] | None:
    schema = raw.get("json_schema")
    if schema is not None and not isinstance(schema, dict):
        raise DatasetError(f"{where} has a `json_schema` that is not a JSON object",
                           hint='write a JSON Schema such as {"type": "object", "properties": {...}}')
    return schema


def _from_messages(raw: dict[str, Any], index: int, source: str | Path) -> dict[str, Any]:
    messages = raw["messages"]
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise DatasetError(f"case #{index + 1} in `{source}` has a `messages` field that is not a list of objects")
    by_role = {str(m.get("role")): str(m.get("content", "")) for m in messages}  # the last of each role
    out = {"prompt": by_role.get("user"), "reference": by_role.get("assistant")}
    if "system" in by_role:
        out["system"] = by_role["system"]
    return out


def _first(raw: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((raw[k] for k in keys if raw.get(k) is not None), None)


def _keywords(raw: dict[str, Any], where: str) -> list[str]:
    keywords = raw.get("expected_keywords")
    if keywords is None:
        tool = raw.get("expected_tool")
        return [tool] if isinstance(tool, str) and tool else []
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise DatasetError(f"{where} has `expected_keywords` that is not a list of strings")
    return keywords


def _reference(raw: dict[str, Any], where: str) -> str | None:
    value = _first(raw, ("reference", "expected_output"))
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list, int, float, bool)):
        return json.dumps(value, ensure_ascii=False)
    raise DatasetError(f"{where} has a `reference` that is neither text nor JSON")


def _setup(raw: dict[str, Any], where: str) -> list[str]:
    setup = raw.get("setup", [])
    if isinstance(setup, str):
        return [setup]
    if not isinstance(setup, list) or not all(isinstance(s, str) for s in setup):
        raise DatasetError(f"{where} has a `setup` that is not a list of statements")
    return list(setup)


def _optional_str(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise DatasetError(f"{where} has `{key}` that is not a string")
    return value


def _check_json(reference: str | None, where: str) -> None:
    try:
        json.loads(reference or "")
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where} has a `reference` that is not valid JSON: {exc.msg}") from exc
