"""The quality gates a dataset row must pass, in order: it parses (the parser ``train`` uses), its task validators
accept it, it is not a near copy of the test set (leakage), and it duplicates nothing seen before (seeds, the
existing dataset, earlier rows), exactly or nearly.

:class:`QualityGates` is fed the reference rows first (:meth:`add_reference`, :meth:`add_test`), then judges rows
one by one with :meth:`check`; a row that passes joins the references, so later rows may not repeat it.
:class:`GateReport` counts rejections per reason and keeps every one (the first few per reason in ``to_dict``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.sdk import task_validators
from expert_cli.training.formats import Example, FieldMapping, RowError, convert_row, detect_format
from expert_cli.training.near_duplicates import DEFAULT_THRESHOLD, NearDuplicateIndex, exact_key

REASONS = ("format", "sql", "cypher", "json", "validator", "leakage", "duplicate", "near_duplicate")
EXAMPLES_PER_REASON = 3
ROW_PREVIEW = 300


@dataclass(frozen=True)
class GateSettings:
    """What the gates check: task ``validators`` (``sql``, ``cypher``, ``json`` or ``module:function``), the SQL
    dialect, the near-duplicate threshold, and how rows map to examples."""

    validators: tuple[str, ...] = ()
    sql_dialect: str = "sqlite"
    threshold: float = DEFAULT_THRESHOLD
    mapping: FieldMapping = field(default_factory=FieldMapping)
    row_format: str | None = None  # the expert's row format; rows of another format are rejected
    root: Path | None = None  # where a user validator's module may live (the expert's folder)


@dataclass(frozen=True)
class Rejection:
    location: str
    reason: str
    message: str
    row: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"location": self.location, "reason": self.reason, "message": self.message, "row": self.row}


@dataclass
class GateReport:
    """Rows checked and kept, and every rejection with its reason."""

    checked: int = 0
    kept: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rejected(self) -> dict[str, int]:
        counts = Counter(r.reason for r in self.rejections)
        return {reason: counts[reason] for reason in REASONS if counts[reason]}

    def record(self, rejection: Rejection | None) -> None:
        self.checked += 1
        if rejection is None:
            self.kept += 1
        else:
            self.rejections.append(rejection)

    def examples(self, limit: int | None = EXAMPLES_PER_REASON) -> dict[str, list[dict[str, str]]]:
        shown: dict[str, list[dict[str, str]]] = {}
        for rejection in self.rejections:
            bucket = shown.setdefault(rejection.reason, [])
            if limit is None or len(bucket) < limit:
                bucket.append(rejection.to_dict())
        return shown

    def to_dict(self, every_rejection: bool = False) -> dict[str, Any]:
        share = {reason: round(count / self.checked, 4) for reason, count in self.rejected.items()} if self.checked else {}
        return {"checked": self.checked, "kept": self.kept, "rejected": self.rejected, "rejected_share": share,
                "examples": self.examples(None if every_rejection else EXAMPLES_PER_REASON)}


class QualityGates:
    """Judges rows against the settings and everything seen so far."""

    def __init__(self, settings: GateSettings) -> None:
        self.settings = settings
        self._validators = [(name, _validator(name, settings)) for name in settings.validators]
        self._exact: dict[str, str] = {}
        self._near = NearDuplicateIndex(settings.threshold)
        self._test = NearDuplicateIndex(settings.threshold)
        self._test_exact: dict[str, str] = {}

    def add_reference(self, examples: Iterable[Example]) -> None:
        """Rows that exist already (seeds, the dataset, earlier output): new rows may not duplicate them."""
        for example in examples:
            self._remember(example)

    def add_test(self, examples: Iterable[Example]) -> None:
        """The expert's test rows: no row may be a (near) copy of one."""
        for example in examples:
            self._test_exact.setdefault(exact_key(dedupe_text(example)), example.location)
            self._test.add(dedupe_text(example), example.location)

    def check(self, row: Any, location: str) -> tuple[Example | None, Rejection | None]:
        """The row's example and None when it passes (it is then remembered), else None and why not."""
        example, problem = self._parse(row, location)
        if problem is not None:
            return None, Rejection(location, "format", problem, preview(row))
        for name, validate in self._validators:
            message = validate(example, row)
            if message:
                reason = name if name in task_validators.BUILTIN else "validator"
                return None, Rejection(location, reason, message, preview(row))
        rejection = self._duplicate(example, location, row)
        if rejection is None:
            self._remember(example)
        return example, rejection

    def _parse(self, row: Any, location: str) -> tuple[Example, None] | tuple[None, str]:
        if isinstance(row, str):
            text = " ".join(row.split())
            return None, f"not a JSON row: `{text[:80]}{'...' if len(text) > 80 else ''}`"
        if not isinstance(row, dict):
            return None, f"each row must be a JSON object, not {type(row).__name__}"
        fmt = detect_format(row, self.settings.mapping)
        expected = self.settings.row_format
        if fmt is None:
            return None, f"unrecognised row ({', '.join(f'`{k}`' for k in list(row)[:6]) or 'no keys'})"
        if expected is not None and fmt != expected:
            return None, f"this row is `{fmt}` but the expert's rows are `{expected}`"
        try:
            return convert_row(row, fmt, location, self.settings.mapping), None
        except RowError as exc:
            return None, str(exc)

    def _duplicate(self, example: Example, location: str, row: Any) -> Rejection | None:
        text = dedupe_text(example)
        key = exact_key(text)
        if key in self._test_exact:
            return Rejection(location, "leakage", f"copies test row `{self._test_exact[key]}`", preview(row))
        sketch = self._near.sketch(text)
        leak = self._test.find(text, sketch)
        if leak is not None:
            return Rejection(location, "leakage", f"near copy of test row `{leak.label}` (similarity "
                             f"{leak.similarity})", preview(row))
        exact = self._exact.get(exact_key(full_text(example)))
        if exact is not None:
            return Rejection(location, "duplicate", f"same as `{exact}`", preview(row))
        near = self._near.find(text, sketch)
        if near is not None:
            return Rejection(location, "near_duplicate", f"near copy of `{near.label}` (similarity "
                             f"{near.similarity})", preview(row))
        return None

    def _remember(self, example: Example) -> None:
        key = exact_key(full_text(example))
        if key not in self._exact:
            self._exact[key] = example.location
            self._near.add(dedupe_text(example), example.location)


def dedupe_text(example: Example) -> str:
    """What near-duplicates are judged on: the question and the answer (a shared schema does not count)."""
    return f"{example.question}\n{example.answer}"


def full_text(example: Example) -> str:
    """What exact duplicates are judged on: every turn, so one question over two schemas is two rows."""
    turns = [m["content"] for m in example.messages] or [example.prompt, example.completion]
    return "\n".join(turns)


def preview(row: Any) -> str:
    import json

    text = json.dumps(row, ensure_ascii=False) if not isinstance(row, str) else row
    return text if len(text) <= ROW_PREVIEW else text[:ROW_PREVIEW] + "..."


def _validator(name: str, settings: GateSettings) -> Callable[[Example, dict[str, Any]], str | None]:
    if name == "sql":
        return lambda example, row: task_validators.check_sql(example, row, settings.sql_dialect)
    if name == "cypher":
        return task_validators.check_cypher
    if name == "json":
        return task_validators.check_json
    return task_validators.load_user_validator(name, settings.root)
