"""``validate``: numbered checks over a manifest, an expert folder or a ``.expert`` package (grammars compiled
too), and an expert's test cases run against it and its bare base."""

from __future__ import annotations

from pathlib import Path

from expert_cli.manifest.validation import FAIL, PASS, SKIP, WARN, ValidationReport, validate_path
from expert_cli.packages.verify import validate_package
from expert_cli.runtime.grammar_checks import check_grammar_compiles
from expert_cli.scoring.test_cases import TestCase, load_test_cases
from expert_cli.sdk.test_runs import TestSuiteResult, run_test_suite

__all__ = ["FAIL", "PASS", "SKIP", "WARN", "TestCase", "TestSuiteResult", "ValidationReport", "load_test_cases",
           "quiet_model_loading", "run_test_suite", "validate"]


def validate(path: Path, *, strict: bool = False) -> ValidationReport:
    """Every check for ``path`` (a package when it is a ``.expert`` file); grammars are compiled."""
    if path.suffix == ".expert" and path.is_file():
        return validate_package(path, strict=strict, extra_checks=(check_grammar_compiles,))
    return validate_path(path, strict=strict, extra_checks=(check_grammar_compiles,))


def quiet_model_loading() -> None:
    """Turn off the model loaders' own progress bars (transformers' ``Loading weights``)."""
    from expert_cli.models.loading import disable_loading_progress

    disable_loading_progress()
