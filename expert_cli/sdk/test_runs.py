"""``validate --test-cases``: run an expert's test cases (every ``test_cases.json`` shape of the original) against
the expert and against its bare base, and decide pass or fail.

Scoring is :mod:`expert_cli.scoring.metrics` (the original's keyword score, 10 x found/expected, a case passing at
8; exact match, SQL/Cypher execution, JSON equality where a case asks for them); generation goes through the
runtime via :func:`expert_cli.sdk.evaluation.evaluate_expert` (greedy, the manifest's decoding budget and stops).
The suite passes when at least :data:`PASS_RATE` of the cases not marked ``may_fail`` pass. Importing this
module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.progress import ProgressCallback
from expert_cli.scoring.test_cases import TestCase, load_test_cases

PASS_RATE = 0.8


@dataclass
class TestSuiteResult:
    """The evaluation plus the verdict: expert and base pass counts over the required cases."""

    __test__ = False  # not a pytest class

    cases_file: str
    evaluation: Any  # expert_cli.sdk.evaluation.Evaluation
    pass_rate: float = PASS_RATE

    @property
    def required(self) -> list[Any]:
        return [o for o in self.evaluation.outcomes if not o.case.may_fail]

    @property
    def expert_rate(self) -> float:
        required = self.required
        return sum(o.expert.passed for o in required) / len(required) if required else 1.0

    @property
    def base_rate(self) -> float | None:
        required = [o for o in self.required if o.base is not None]
        return sum(o.base.passed for o in required) / len(required) if required else None

    @property
    def ok(self) -> bool:
        return self.expert_rate >= self.pass_rate

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases_file": self.cases_file,
            "ok": self.ok,
            "pass_rate": self.pass_rate,
            "required_cases": len(self.required),
            "expert_pass_rate": round(self.expert_rate, 4),
            "base_pass_rate": None if self.base_rate is None else round(self.base_rate, 4),
            **self.evaluation.to_dict(cases=True),
        }


def run_test_suite(target: str | Path, cases_file: str | Path, *, base_model: str | None = None,
                   device: str | None = None, progress: ProgressCallback | None = None,
                   cases: list[TestCase] | None = None) -> TestSuiteResult:
    """Run the cases (loaded from ``cases_file`` unless given) on the expert (folder, manifest, ``.expert`` file
    or installed name) and on its bare base."""
    from expert_cli.sdk.evaluation import evaluate_expert

    cases = load_test_cases(cases_file) if cases is None else cases
    evaluation = evaluate_expert(str(target), cases, base_model=base_model, device=device, progress=progress)
    return TestSuiteResult(str(cases_file), evaluation)
