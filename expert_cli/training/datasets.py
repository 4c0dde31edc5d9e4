"""From a manifest's ``training.dataset`` (or ``--dataset``) to validated train / eval / test examples.

Every row is checked before any model is loaded; bad rows are reported as ``file:line: what is wrong``.
Sources: one file or Hugging Face id (``name::split::config``), the original's multi-task ``tasks`` map with
per-task weights, separate ``validation_path`` / ``test_path`` files, or else a seeded 10% split.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import DatasetError
from expert_cli.manifest.model import Manifest
from expert_cli.training.formats import (
    FORMATS,
    Example,
    FieldMapping,
    RowError,
    convert_row,
    describe_format,
    detect_format,
)
from expert_cli.training.rows import SourceProblem, read_rows, resolve_source

EVAL_FRACTION = 0.1
MIN_ROWS_FOR_SPLIT = 10
MULTITASK_LIMITS = (10, 2048)  # the original's default output length bounds for multi-task rows
Warn = Callable[[str], None]


@dataclass
class ExampleSet:
    """The examples read from one source, and every problem found on the way."""

    label: str
    examples: list[Example]
    problems: list[SourceProblem]
    rows: int
    format: str | None

    def raise_for_problems(self) -> None:
        if not self.problems:
            return
        shown = "; ".join(f"`{p.location}`: {p.message}" for p in self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        raise DatasetError(
            f"{len(self.problems)} bad row(s) in `{self.label}`: {shown}{more}",
            hint=f"run `expert-cli dataset validate {self.label.split('::')[0]}` for the full list",
        )


@dataclass
class TrainingData:
    """What training uses: three example lists plus how they were obtained."""

    train: list[Example]
    eval: list[Example]
    test: list[Example]
    source: str
    eval_source: str  # "file" | "split" | "none"
    formats: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "train_examples": len(self.train),
            "eval_examples": len(self.eval),
            "test_examples": len(self.test),
            "eval_source": self.eval_source,
            "formats": self.formats,
            "dropped": self.dropped,
        }


@dataclass(frozen=True)
class RowFilters:
    """``training.dataset.validation``: dedupe by answer, answer length bounds, JSON answers."""

    deduplicate: bool = False
    min_length: int | None = None
    max_length: int | None = None
    validate_json: bool = False

    @classmethod
    def from_dataset(cls, dataset: dict[str, Any], multitask: bool) -> RowFilters:
        rules = dataset.get("validation") if isinstance(dataset.get("validation"), dict) else {}
        low, high = MULTITASK_LIMITS if multitask else (None, None)
        return cls(
            deduplicate=bool(rules.get("deduplicate", multitask)),
            min_length=rules.get("min_length", low),
            max_length=rules.get("max_length", high),
            validate_json=bool(rules.get("validate_json", False)),
        )

    def apply(self, examples: list[Example]) -> tuple[list[Example], dict[str, int]]:
        kept: list[Example] = []
        dropped: Counter[str] = Counter()
        seen: set[str] = set()
        for example in examples:
            reason = self._reason_to_drop(example, seen)
            if reason:
                dropped[reason] += 1
            else:
                kept.append(example)
        return kept, dict(dropped)

    def _reason_to_drop(self, example: Example, seen: set[str]) -> str | None:
        answer = example.answer
        if self.min_length is not None and len(answer) < self.min_length:
            return "too_short"
        if self.max_length is not None and len(answer) > self.max_length:
            return "too_long"
        if self.validate_json and not _is_json(answer):
            return "invalid_json"
        if self.deduplicate:
            digest = hashlib.sha256(answer.encode("utf-8")).hexdigest()
            if digest in seen:
                return "duplicate"
            seen.add(digest)
        return None


def read_examples(spec: str, *, base_dir: Path | None = None, mapping: FieldMapping | None = None,
                  streaming: bool = False, limit: int | None = None) -> ExampleSet:
    """Read and check every row of one source; problems are collected, not raised."""
    mapping = mapping or FieldMapping()
    source = resolve_source(spec, base_dir)
    rows, problems = read_rows(source, streaming=streaming, limit=limit)
    total_rows = len(rows) + len(problems)
    detected = [(location, row, detect_format(row, mapping) if isinstance(row, dict) else None)
                for location, row in rows]
    counts = Counter(fmt for _, _, fmt in detected if fmt)
    file_format = counts.most_common(1)[0][0] if counts else None
    examples: list[Example] = []
    for location, row, fmt in detected:
        try:
            examples.append(_convert(row, fmt, file_format, location, mapping))
        except RowError as exc:
            problems.append(SourceProblem(location, str(exc)))
    problems.sort(key=lambda p: _location_order(p.location))
    return ExampleSet(source.label, examples, problems, total_rows, file_format)


def _convert(row: Any, fmt: str | None, file_format: str | None, location: str, mapping: FieldMapping) -> Example:
    if file_format is None:
        keys = ", ".join(f"`{k}`" for k in row) if isinstance(row, dict) else type(row).__name__
        raise RowError(f"unrecognised row ({keys}); expected one of: {', '.join(FORMATS)}")
    if fmt is not None and fmt != file_format:
        raise RowError(f"this row is `{fmt}` but the file's rows are `{file_format}`; use one format per file")
    try:
        return convert_row(row, file_format, location, mapping)
    except RowError as exc:
        if fmt is None:
            raise RowError(f"{exc} (rows here look like {describe_format(file_format, mapping)})") from None
        raise


def load_training_data(manifest: Manifest, dataset_override: str | None = None, *, seed: int = 42,
                       warn: Warn | None = None) -> TrainingData:
    """Train / eval / test examples for ``manifest``; raises :class:`DatasetError` on any bad row."""
    warn = warn or (lambda message: None)
    dataset = manifest.dataset
    mapping = FieldMapping.from_dict(dataset.get("field_mapping"))
    tasks = dataset.get("tasks") if isinstance(dataset.get("tasks"), dict) else None
    if dataset_override:
        train, source = _read_checked(dataset_override, None, mapping, dataset), dataset_override
        extra_eval, extra_test = _optional_split_files(manifest, mapping, warn)
    elif tasks and (not dataset.get("path") or dataset.get("type") == "multi_task"):
        return _load_multitask(manifest, tasks, mapping, seed, warn)
    elif dataset.get("path"):
        source = str(dataset["path"])
        train = _read_checked(source, manifest.root, mapping, dataset)
        extra_eval, extra_test = _optional_split_files(manifest, mapping, warn)
    else:
        raise DatasetError(
            f"`{manifest.name}` names no dataset (`training.dataset.path` or `tasks`)",
            hint="pass `--dataset PATH` or set `training.dataset.path` in the manifest",
        )
    filters = RowFilters.from_dataset(dataset, multitask=train.format == "multitask")
    examples, dropped = filters.apply(train.examples)
    return _assemble(examples, extra_eval, extra_test, source, seed, dropped, warn)


def _read_checked(spec: str, base_dir: Path | None, mapping: FieldMapping, dataset: dict[str, Any]) -> ExampleSet:
    streaming = bool(dataset.get("streaming", False))
    limit = dataset.get("max_in_memory_samples") if streaming else None
    result = read_examples(spec, base_dir=base_dir, mapping=mapping, streaming=streaming, limit=limit)
    result.raise_for_problems()
    if not result.examples:
        raise DatasetError(f"dataset `{result.label}` has no rows")
    return result


def _optional_split_files(manifest: Manifest, mapping: FieldMapping, warn: Warn
                          ) -> tuple[list[Example] | None, list[Example]]:
    found: dict[str, list[Example] | None] = {}
    for key in ("validation_path", "test_path"):
        value = manifest.dataset.get(key)
        found[key] = None
        if not value:
            continue
        if not manifest.resolve_path(str(value).split("::")[0]).exists() and "::" not in str(value):
            warn(f"`training.dataset.{key}` `{value}` does not exist; ignored")
            continue
        found[key] = _read_checked(str(value), manifest.root, mapping, manifest.dataset).examples
    return found["validation_path"], found["test_path"] or []


def _load_multitask(manifest: Manifest, tasks: dict[str, Any], mapping: FieldMapping, seed: int,
                    warn: Warn) -> TrainingData:
    rng = random.Random(seed)
    train: list[Example] = []
    evals: list[Example] = []
    tests: list[Example] = []
    for name, task in tasks.items():
        if not isinstance(task, dict) or not task.get("train"):
            raise DatasetError(f"`training.dataset.tasks.{name}` needs a `train` file")
        task_format = str(task.get("format", "sft")).lower()
        if task_format not in ("sft", "dpo"):
            raise DatasetError(f"`training.dataset.tasks.{name}.format` `{task_format}` is not `sft` or `dpo`")
        weight = task.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or weight <= 0:
            raise DatasetError(f"`training.dataset.tasks.{name}.weight` must be a number above 0, not `{weight}`")
        rows = _read_checked(str(task["train"]), manifest.root, mapping, manifest.dataset).examples
        train.extend(weighted_sample(rows, float(weight), rng))
        for key, bucket in (("valid", evals), ("test", tests)):
            if task.get(key):
                bucket.extend(_read_checked(str(task[key]), manifest.root, mapping, manifest.dataset).examples)
    filters = RowFilters.from_dataset(manifest.dataset, multitask=True)
    train, dropped = filters.apply(train)
    if not train:
        raise DatasetError(f"no multi-task rows left after filtering (dropped: {dropped})")
    return _assemble(train, evals or None, tests, f"{len(tasks)} task(s)", seed, dropped, warn)


def weighted_sample(examples: list[Example], weight: float, rng: random.Random) -> list[Example]:
    """The original's task weights: ``weight`` < 1 samples that fraction; above 1 repeats rows."""
    whole, fraction = divmod(weight, 1.0)
    picked = list(examples) * int(whole)
    extra = round(len(examples) * fraction)
    if extra:
        picked.extend(rng.sample(examples, min(extra, len(examples))))
    return picked


def _assemble(train: list[Example], eval_set: list[Example] | None, test: list[Example], source: str,
              seed: int, dropped: dict[str, int], warn: Warn) -> TrainingData:
    if dropped:
        warn(f"dropped {sum(dropped.values())} row(s) by `training.dataset.validation`: {dropped}")
    eval_source = "file"
    if eval_set is None:
        train, eval_set, eval_source = _split(train, seed, warn)
    formats = dict(Counter(example.format for example in train))
    return TrainingData(train, eval_set, test, source, eval_source, formats, dropped)


def _split(examples: list[Example], seed: int, warn: Warn) -> tuple[list[Example], list[Example], str]:
    if len(examples) < MIN_ROWS_FOR_SPLIT:
        warn(f"only {len(examples)} rows and no validation file: training without evaluation")
        return examples, [], "none"
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    size = max(1, round(len(shuffled) * EVAL_FRACTION))
    return shuffled[size:], shuffled[:size], "split"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _location_order(location: str) -> tuple[str, int]:
    head, _, tail = location.rpartition(":")
    if tail.isdigit():
        return head, int(tail)
    head, _, number = location.rpartition(" row ")
    return (head, int(number)) if number.isdigit() else (location, 0)
