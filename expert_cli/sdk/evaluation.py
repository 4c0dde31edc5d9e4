"""Measure an expert against its bare base model on scored test cases, and check the router on the same prompts.

    from expert_cli.sdk.evaluation import evaluate_expert, load_eval_cases
    cases = load_eval_cases("experts/expert-sql", limit=20)          # data/test.jsonl (held-out prompts)
    report = evaluate_expert("experts/expert-sql", cases, base_model="builtin:tiny-qwen3")
    print(report.expert_score, report.base_score)                     # sql execution accuracy, 0..1

Each case is sent the way training rendered it: its own system message (``Dialect: ...`` plus the schema)
and its user turn. The expert decodes with its manifest's decoding settings and grammar, greedily; the bare
base decodes the same prompts, greedily, with the same token budget and stop sequences but no adapter and no
grammar. Answers are scored by :mod:`expert_cli.scoring.metrics` (SQL executed in sqlite, Cypher in ladybug or by
structure, JSON by equality, the original keyword score). Rows are decoded in batches.

Used by ``scripts/eval_experts.py`` and meant for ``expert-cli validate --test-cases``. Importing this module
does not import torch; evaluating does.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import DatasetError
from expert_cli.core.progress import ProgressCallback, report
from expert_cli.manifest.model import Manifest, load_manifest
from expert_cli.scoring.metrics import CaseScore, score_case
from expert_cli.scoring.test_cases import TestCase, load_test_cases
from expert_cli.sdk import requests
from expert_cli.sdk.requests import Request

DEFAULT_BATCH_SIZE = 16
Router = Callable[[str], Sequence[str]]


@dataclass
class CaseOutcome:
    """One prompt: both answers, their scores, and which experts the router picked for it."""

    case: TestCase
    expert: CaseScore
    expert_answer: str
    base: CaseScore | None = None
    base_answer: str | None = None
    routed: list[str] | None = None

    @property
    def held_out(self) -> str | None:
        meta = self.case.extra.get("meta")
        return meta.get("held_out") if isinstance(meta, dict) else None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.case.id, "prompt": self.case.prompt, "metric": self.expert.metric,
                "held_out": self.held_out, "reference": self.case.reference,
                "expert": {"answer": self.expert_answer, **self.expert.to_dict()},
                "base": None if self.base is None else {"answer": self.base_answer, **self.base.to_dict()},
                "routed": self.routed}


@dataclass
class Evaluation:
    """An expert's scores (mean of per-case scores, 0..1) beside the bare base's, over ``n`` cases."""

    name: str
    version: str
    base_model: str
    outcomes: list[CaseOutcome] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def metric(self) -> str:
        """The metric most cases were scored with (``cypher_structure`` when no Cypher engine ran)."""
        counts = Counter(outcome.expert.metric for outcome in self.outcomes)
        return counts.most_common(1)[0][0] if counts else ""

    @property
    def expert_score(self) -> float:
        return _mean(outcome.expert.score for outcome in self.outcomes)

    @property
    def base_score(self) -> float | None:
        scores = [outcome.base.score for outcome in self.outcomes if outcome.base is not None]
        return _mean(scores) if scores else None

    @property
    def expert_passed(self) -> int:
        return sum(outcome.expert.passed for outcome in self.outcomes)

    @property
    def base_passed(self) -> int | None:
        scored = [outcome.base for outcome in self.outcomes if outcome.base is not None]
        return sum(score.passed for score in scored) if scored else None

    def held_out_score(self, kind: str) -> float | None:
        """The expert's score on the cases held out by ``kind`` (``schema``, ``template``); None if none."""
        scores = [outcome.expert.score for outcome in self.outcomes if outcome.held_out == kind]
        return _mean(scores) if scores else None

    @property
    def router_accuracy(self) -> float | None:
        """Share of prompts whose first routed expert is this one; None when the router was not asked."""
        routed = [outcome.routed for outcome in self.outcomes if outcome.routed is not None]
        return _mean(float(bool(r) and r[0] == self.name) for r in routed) if routed else None

    def summary(self) -> dict[str, Any]:
        return {"metric": self.metric, "expert": _round(self.expert_score), "base": _round(self.base_score),
                "n": self.n, "expert_passed": self.expert_passed, "base_passed": self.base_passed,
                "held_out_schema": _round(self.held_out_score("schema")),
                "held_out_template": _round(self.held_out_score("template")),
                "router_accuracy": _round(self.router_accuracy), "base_model": self.base_model,
                "version": self.version, "wall_s": round(self.wall_seconds, 2)}

    def to_dict(self, cases: bool = True) -> dict[str, Any]:
        data = {"name": self.name, **self.summary()}
        if cases:
            data["cases"] = [outcome.to_dict() for outcome in self.outcomes]
        return data


def _mean(values: Any) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def load_eval_cases(expert: str | Path | Manifest, path: str | Path | None = None,
                    limit: int | None = None) -> list[TestCase]:
    """The expert's held-out cases: ``path``, else ``training.dataset.test_path``, else ``evaluation.suite``,
    else ``evaluation.test_cases`` / ``tests/test_cases.json``; the first ``limit`` of them."""
    manifest = expert if isinstance(expert, Manifest) else load_manifest(expert)
    source = Path(path) if path is not None else default_cases_file(manifest)
    cases = load_test_cases(source)
    return cases[:limit] if limit is not None else cases


def default_cases_file(manifest: Manifest) -> Path:
    evaluation = manifest.data.get("evaluation")
    evaluation = evaluation if isinstance(evaluation, dict) else {}
    names = [manifest.dataset.get("test_path"), evaluation.get("suite"), evaluation.get("test_cases"),
             "tests/test_cases.json"]
    for name in names:
        if isinstance(name, str) and name.strip() and manifest.resolve_path(name).is_file():
            return manifest.resolve_path(name)
    raise DatasetError(f"expert `{manifest.name}` has no test cases (looked for `training.dataset.test_path`, "
                       "`evaluation.suite` and `tests/test_cases.json`)",
                       hint="set `training.dataset.test_path` in the manifest, or pass a test-case file")


def evaluate_expert(source: str | Path, cases: Sequence[TestCase], *, base_model: str | None = None,
                    compare_base: bool = True, router: Router | None = None, device: str | None = None,
                    batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressCallback | None = None) -> Evaluation:
    """Run ``cases`` through the expert at ``source`` (folder, ``.expert`` file or installed name) and,
    with ``compare_base``, through its bare base; ``router`` (prompt -> expert names) is asked per prompt."""
    if not cases:
        raise DatasetError("no test cases to evaluate", hint="check the test-case file and `--limit`")
    if batch_size < 1:
        raise DatasetError(f"`batch_size` must be at least 1, got `{batch_size}`")
    started = time.perf_counter()
    runner = EvaluationRunner(source, base_model=base_model, device=device)
    try:
        expert_answers = runner.answer(cases, with_expert=True, batch_size=batch_size,
                                       progress=_task(progress, f"{runner.name}: expert"))
        base_answers = (runner.answer(cases, with_expert=False, batch_size=batch_size,
                                      progress=_task(progress, f"{runner.name}: bare base"))
                        if compare_base else None)
    finally:
        runner.close()
    evaluation = Evaluation(runner.name, runner.version, runner.base_model_name)
    for index, case in enumerate(cases):
        base_answer = base_answers[index] if base_answers is not None else None
        evaluation.outcomes.append(CaseOutcome(
            case, score_case(case, expert_answers[index]), expert_answers[index],
            None if base_answer is None else score_case(case, base_answer), base_answer,
            None if router is None else list(router(chat_prompt(case)))))
        report(progress, f"{evaluation.name}: scoring", index + 1, len(cases))
    evaluation.wall_seconds = time.perf_counter() - started
    return evaluation


def chat_prompt(case: TestCase) -> str:
    """The case as a person would type it into ``chat``: its context (the system message without the
    ``Dialect:`` line that names the answer) above a blank line, then the question."""
    context = "\n".join(line for line in (case.system or "").splitlines() if not line.startswith("Dialect:"))
    return f"{context.strip()}\n\n{case.prompt}" if context.strip() else case.prompt


def _task(progress: ProgressCallback | None, name: str) -> Callable[[int, int], None]:
    return lambda done, total: report(progress, name, done, total)


class EvaluationRunner:
    """The expert attached to its base (through the SDK), answering cases with or without its adapter."""

    def __init__(self, source: str | Path, *, base_model: str | None = None, device: str | None = None) -> None:
        from expert_cli.sdk.expert import Expert

        self.expert = Expert.load(source, device, base_model=base_model)
        self.name, self.version = self.expert.name, self.expert.version
        self.base_model_name = self.expert.bundle.base_model.name

    def close(self) -> None:
        self.expert.unload()

    def answer(self, cases: Sequence[TestCase], *, with_expert: bool, batch_size: int,
               progress: Callable[[int, int], None]) -> list[str]:
        """Greedy answers in case order; the bare base keeps the expert's token budget and stop sequences, and a
        case's JSON schema constrains both."""
        from expert_cli.runtime.sampling import resolve_decoding

        decoding = resolve_decoding(self.expert.bundle.decoding)
        overrides = {"temperature": 0.0, "max_tokens": decoding.max_tokens, "stop": list(decoding.stop)}
        answers: list[str] = []
        progress(0, len(cases))
        for start in range(0, len(cases), batch_size):
            batch = [self.expert.prepare(Request(case.prompt, system=case.system, json_schema=case.json_schema,
                                                 overrides=dict(overrides)), with_adapter=with_expert)
                     for case in cases[start:start + batch_size]]
            answers.extend(result.text for result in requests.run(batch))
            progress(len(answers), len(cases))
        return answers
