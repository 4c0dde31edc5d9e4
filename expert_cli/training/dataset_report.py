"""``expert-cli dataset validate`` / ``stats``: every problem with its ``file:line``, and the numbers of a dataset.

The target is a dataset file (or Hugging Face id), or an expert folder / manifest, in which case every file the
manifest names (``path``, ``validation_path``, ``test_path``, each task's ``train``/``valid``/``test``) is read
with the manifest's ``field_mapping``.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import DatasetError
from expert_cli.manifest.model import MANIFEST_FILE, Manifest, load_manifest
from expert_cli.training.datasets import ExampleSet, read_examples
from expert_cli.training.formats import Example, FieldMapping
from expert_cli.training.rows import SourceProblem

MAX_PROBLEMS_SHOWN = 50


@dataclass
class DatasetReport:
    target: str
    sources: list[str]
    rows: int
    examples: list[Example] = field(repr=False)
    problems: list[SourceProblem]
    formats: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.examples)

    def summary(self) -> dict[str, Any]:
        answers = [len(e.answer) for e in self.examples]
        prompts = [len(e.question) for e in self.examples]
        completion_only = sum(1 for e in self.examples if e.messages or e.prompt)
        return {
            "examples": len(self.examples),
            "formats": self.formats,
            "tasks": dict(Counter(e.task for e in self.examples if e.task)),
            "loss_on_answer_only": completion_only,
            "loss_on_full_text": len(self.examples) - completion_only,
            "with_system_prompt": sum(1 for e in self.examples if any(m["role"] == "system" for m in e.messages)),
            "duplicate_answers": len(answers) - len({e.answer for e in self.examples}),
            "prompt_chars": _spread(prompts),
            "answer_chars": _spread(answers),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "sources": self.sources,
            "ok": self.ok,
            "rows": self.rows,
            "problem_count": len(self.problems),
            "problems": [p.to_dict() for p in self.problems[:MAX_PROBLEMS_SHOWN]],
            **self.summary(),
        }


def inspect_dataset(target: str | Path, field_mapping: dict[str, Any] | None = None) -> DatasetReport:
    """Read every row of ``target`` (a dataset or an expert's manifest) and report problems and numbers."""
    manifest = _manifest_or_none(Path(str(target)))
    if manifest is None:
        sets = [read_examples(str(target), mapping=FieldMapping.from_dict(field_mapping))]
    else:
        mapping = FieldMapping.from_dict(field_mapping or manifest.dataset.get("field_mapping"))
        specs = manifest_dataset_specs(manifest)
        if not specs:
            raise DatasetError(f"`{manifest.name}` names no dataset (`training.dataset.path` or `tasks`)")
        sets = [read_examples(spec, base_dir=manifest.root, mapping=mapping) for spec in specs]
    return _combine(str(target), sets)


def manifest_dataset_specs(manifest: Manifest) -> list[str]:
    """Every dataset file a manifest names, in a stable order."""
    dataset = manifest.dataset
    specs = [str(dataset[key]) for key in ("path", "validation_path", "test_path") if dataset.get(key)]
    tasks = dataset.get("tasks") if isinstance(dataset.get("tasks"), dict) else {}
    for task in tasks.values():
        if isinstance(task, dict):
            specs.extend(str(task[key]) for key in ("train", "valid", "test") if task.get(key))
    return list(dict.fromkeys(specs))


def _manifest_or_none(path: Path) -> Manifest | None:
    if path.is_dir() and (path / MANIFEST_FILE).is_file():
        return load_manifest(path)
    if path.is_file() and path.name == MANIFEST_FILE:
        return load_manifest(path)
    return None


def _combine(target: str, sets: list[ExampleSet]) -> DatasetReport:
    examples = [e for s in sets for e in s.examples]
    empty = [SourceProblem(s.label, "no rows: the dataset is empty") for s in sets if not s.rows and not s.problems]
    return DatasetReport(
        target=target,
        sources=[s.label for s in sets],
        rows=sum(s.rows for s in sets),
        examples=examples,
        problems=[p for s in sets for p in s.problems] + empty,
        formats=dict(Counter(e.format for e in examples)),
    )


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0, "median": 0, "max": 0}
    return {
        "min": min(values),
        "mean": round(statistics.fmean(values), 1),
        "median": statistics.median(values),
        "max": max(values),
    }
