"""Score one expert answer against one test case. Pure Python; engines are imported only when used.

Metrics (``TestCase.metric``):

- ``keywords``: the original system's score, 10 x found/expected over case-insensitive keyword hits (10 when no
  keyword is expected); it passes at 8 or more. ``CaseScore.score`` is that value divided by 10.
- ``exact_match``: equal after collapsing whitespace, ignoring case and a trailing semicolon.
- ``sql_execution``: the prediction and the reference run in fresh in-memory sqlite databases built from the
  case's ``setup``; equal results (a multiset of rows, in order only when the reference has ORDER BY) score 1.
  Any error in the prediction scores 0.
- ``cypher_execution``: the same in an embedded Cypher engine, **ladybug** (``pip install 'expert-cli[eval]'``):
  the maintained fork of Kuzu, one dependency-free wheel that runs in process on an in-memory graph (about 20 ms
  per test graph here). ``falkordblite`` needs Python >= 3.12 and a Redis server process; ``kuzu`` is archived.
  Without the engine the case is scored by ``cypher_structure`` instead, and the score says so.
- ``cypher_structure``: equal canonical token lists (keyword case, variable names, quotes and spacing ignored).
- ``json_equal``: both parse as JSON and are equal; booleans never equal numbers, 1 equals 1.0.

Before scoring, a ``<think>...</think>`` block and Markdown code fences around the answer are removed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from expert_cli.core.errors import DatasetError
from expert_cli.scoring.engines import (
    QueryError,
    cypher_engine,
    cypher_structure,
    has_order_by,
    results_match,
    run_cypher,
    run_sql,
)
from expert_cli.scoring.test_cases import METRICS, TestCase, load_test_cases, parse_test_case

__all__ = ["METRICS", "CaseScore", "TestCase", "clean_prediction", "load_test_cases", "parse_test_case", "score_case"]

KEYWORD_PASS_SCORE = 8.0
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)
_FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)


@dataclass(frozen=True)
class CaseScore:
    """How one answer fared: ``score`` in 0..1, ``passed``, and a one-line ``detail`` saying why."""

    case_id: str
    metric: str
    score: float
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean_prediction(text: str) -> str:
    """Drop a thinking block and surrounding code fences; strip whitespace."""
    text = _THINK.sub("", text).strip()
    fenced = _FENCE.match(text)
    return fenced.group(1).strip() if fenced else text


def score_case(case: TestCase, prediction: str) -> CaseScore:
    """Score ``prediction`` (raw model output) against ``case`` with the case's metric."""
    scorer = _SCORERS.get(case.metric)
    if scorer is None:
        raise DatasetError(f"case `{case.id}` has unknown metric `{case.metric}`", hint=f"use one of: {', '.join(METRICS)}")
    return scorer(case, clean_prediction(prediction))


def _result(case: TestCase, metric: str, ok: bool, detail: str) -> CaseScore:
    return CaseScore(case.id, metric, 1.0 if ok else 0.0, ok, detail)


def score_keywords(case: TestCase, prediction: str) -> CaseScore:
    expected = case.expected_keywords
    lowered = prediction.lower()
    missing = [k for k in expected if k.lower() not in lowered]
    ratio = 1.0 if not expected else (len(expected) - len(missing)) / len(expected)
    detail = f"{len(expected) - len(missing)}/{len(expected)} keywords found (score {10 * ratio:.1f}/10)"
    if missing:
        detail += "; missing: " + ", ".join(f"`{k}`" for k in missing)
    return CaseScore(case.id, "keywords", ratio, 10 * ratio >= KEYWORD_PASS_SCORE, detail)


def normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(";").strip().lower()


def score_exact(case: TestCase, prediction: str) -> CaseScore:
    ok = normalise_text(prediction) == normalise_text(case.reference or "")
    return _result(case, "exact_match", ok, "matches the reference" if ok else "differs from the reference")


def score_sql(case: TestCase, prediction: str) -> CaseScore:
    return _score_execution(case, prediction, "sql_execution", run_sql)


def score_cypher(case: TestCase, prediction: str) -> CaseScore:
    if cypher_engine() is None:
        scored = score_cypher_structure(case, prediction)
        return CaseScore(case.id, scored.metric, scored.score, scored.passed,
                         f"{scored.detail} (no Cypher engine installed: `pip install 'expert-cli[eval]'`)")
    return _score_execution(case, prediction, "cypher_execution", run_cypher)


def score_cypher_structure(case: TestCase, prediction: str) -> CaseScore:
    ok = cypher_structure(prediction) == cypher_structure(case.reference or "")
    return _result(case, "cypher_structure", ok, "same query structure" if ok else "different query structure")


@lru_cache(maxsize=512)
def _reference_rows(metric: str, setup: tuple[str, ...], reference: str) -> tuple:
    """The reference's result, computed once per case even when several models are scored against it."""
    run = run_sql if metric == "sql_execution" else run_cypher
    return tuple(run(list(setup), reference))


def _score_execution(case: TestCase, prediction: str, metric: str, run: Callable[..., list]) -> CaseScore:
    reference = case.reference or ""
    try:
        expected = list(_reference_rows(metric, tuple(case.setup), reference))
    except QueryError as exc:
        raise DatasetError(f"the reference query of case `{case.id}` does not run: {exc}",
                           hint="fix the case's `setup` or `reference`") from exc
    if not prediction:
        return _result(case, metric, False, "empty answer")
    try:
        got = run(case.setup, prediction)
    except QueryError as exc:
        return _result(case, metric, False, str(exc))
    ordered = has_order_by(reference)
    ok = results_match(got, expected, ordered)
    how = "in order" if ordered else "as a multiset"
    detail = f"same {len(got)} row(s) {how}" if ok else f"{len(got)} row(s) differ from the reference's {len(expected)} ({how})"
    return _result(case, metric, ok, detail)


def score_json(case: TestCase, prediction: str) -> CaseScore:
    expected = json.loads(case.reference or "null")
    try:
        got = json.loads(prediction)
    except json.JSONDecodeError as exc:
        return _result(case, "json_equal", False, f"answer is not valid JSON: {exc.msg}")
    ok = json_equal(got, expected)
    return _result(case, "json_equal", ok, "equal to the reference" if ok else "differs from the reference")


def json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality: dict key order ignored, 1 == 1.0, but ``true`` never equals 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


_SCORERS: dict[str, Callable[[TestCase, str], CaseScore]] = {
    "keywords": score_keywords,
    "exact_match": score_exact,
    "sql_execution": score_sql,
    "cypher_execution": score_cypher,
    "cypher_structure": score_cypher_structure,
    "json_equal": score_json,
}
