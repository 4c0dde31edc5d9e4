"""The quality gates set up for one expert, and ``expert-cli dataset check`` / ``dedupe`` over any dataset file.

Settings come from the manifest's ``training.generation`` block (``validators``, ``sql_dialect``,
``near_duplicate_threshold``), else from its capabilities: a SQL expert gets the ``sql`` validator in the dialect
its capabilities name (``database:postgres`` -> ``postgres``; sqlite by default), a Cypher expert ``cypher``, a
JSON expert ``json``. The expert's own dataset files are the references: ``training.dataset.path`` and
``validation_path`` (and multi-task ``train``/``valid`` files) for duplicates, ``test_path`` (and ``test``
files) for leakage; the file being checked is never its own reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.errors import DatasetError, UsageError
from expert_cli.core.progress import ProgressCallback, report
from expert_cli.manifest.model import Manifest, load_manifest
from expert_cli.prompts.templates import dialect_from_capabilities
from expert_cli.sdk.quality_gates import GateReport, GateSettings, QualityGates
from expert_cli.sdk.task_validators import BUILTIN
from expert_cli.training.datasets import read_examples
from expert_cli.training.formats import Example, FieldMapping
from expert_cli.training.near_duplicates import DEFAULT_THRESHOLD
from expert_cli.training.rows import read_rows, resolve_source

SQL_DIALECTS = {"postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql",
                "sqlite": "sqlite", "duckdb": "duckdb", "bigquery": "bigquery", "snowflake": "snowflake",
                "tsql": "tsql", "mssql": "tsql", "oracle": "oracle", "spark": "spark", "trino": "trino",
                "presto": "presto", "redshift": "redshift", "clickhouse": "clickhouse", "hive": "hive"}


@dataclass
class CheckResult:
    """A dataset file judged by an expert's gates; ``out`` is where the kept rows went (dedupe only)."""

    file: str
    expert: str
    report: GateReport
    out: str | None = None

    @property
    def ok(self) -> bool:
        return not self.report.rejections

    def to_dict(self, every_rejection: bool = False) -> dict[str, Any]:
        document = {"file": self.file, "expert": self.expert, "ok": self.ok}
        if self.out is not None:
            document["out"] = self.out
        return {**document, **self.report.to_dict(every_rejection)}


def generation_block(manifest: Manifest) -> dict[str, Any]:
    value = manifest.training.get("generation")
    return value if isinstance(value, dict) else {}


def gate_settings(manifest: Manifest, row_format: str | None = None) -> GateSettings:
    block = generation_block(manifest)
    validators = block.get("validators")
    if validators is None:
        dialect = dialect_from_capabilities(manifest.capabilities)
        validators = [dialect] if dialect in BUILTIN else []
    if not isinstance(validators, list) or not all(isinstance(v, str) for v in validators):
        raise UsageError("`training.generation.validators` must be a list of names",
                         hint="e.g. [\"sql\"], [\"json\"] or [\"my_checks:check_row\"]")
    threshold = block.get("near_duplicate_threshold", DEFAULT_THRESHOLD)
    return GateSettings(validators=tuple(validators), sql_dialect=str(block.get("sql_dialect") or sql_dialect(manifest)),
                        threshold=float(threshold), mapping=FieldMapping.from_dict(manifest.dataset.get("field_mapping")),
                        row_format=row_format, root=manifest.root)


def sql_dialect(manifest: Manifest) -> str:
    """The sqlglot dialect the capabilities name (``database:postgres``), sqlite when none does."""
    for capability in manifest.capabilities:
        name = capability.rpartition(":")[2].strip().lower()
        if name in SQL_DIALECTS:
            return SQL_DIALECTS[name]
    return "sqlite"


def expert_gates(manifest: Manifest, *, exclude: Path | None = None,
                 extra_references: list[Example] = ()) -> QualityGates:
    """Gates loaded with the expert's dataset files (all but ``exclude``) and ``extra_references``."""
    references, tests = _dataset_files(manifest)
    mapping = FieldMapping.from_dict(manifest.dataset.get("field_mapping"))
    loaded = [read_examples(str(p), mapping=mapping) for p in references if _other(p, exclude)]
    row_format = next((s.format for s in loaded if s.format), None)
    gates = QualityGates(gate_settings(manifest, row_format))
    gates.add_reference(extra_references)
    for examples in loaded:
        gates.add_reference(examples.examples)
    for path in tests:
        if _other(path, exclude):
            gates.add_test(read_examples(str(path), mapping=mapping).examples)
    return gates


def _dataset_files(manifest: Manifest) -> tuple[list[Path], list[Path]]:
    dataset = manifest.dataset
    references = [dataset.get("path"), dataset.get("validation_path")]
    tests = [dataset.get("test_path")]
    tasks = dataset.get("tasks") if isinstance(dataset.get("tasks"), dict) else {}
    for task in (t for t in tasks.values() if isinstance(t, dict)):
        references += [task.get("train"), task.get("valid")]
        tests.append(task.get("test"))

    def files(specs: list[Any]) -> list[Path]:
        paths = [manifest.resolve_path(str(s)) for s in specs if isinstance(s, str) and s]
        return [p for p in dict.fromkeys(paths) if p.is_file()]

    return files(references), files(tests)


def _other(path: Path, exclude: Path | None) -> bool:
    return exclude is None or path.resolve() != exclude.resolve()


def check_dataset(file: str | Path, expert: str | Path, *, out: str | Path | None = None,
                  progress: ProgressCallback | None = None) -> CheckResult:
    """Every row of ``file`` through the expert's gates; with ``out``, the rows that pass are written there."""
    manifest = load_manifest(expert)
    source = resolve_source(str(file))
    if source.path is None:
        raise DatasetError(f"`{file}` is not a local dataset file", hint="pass a .jsonl/.json/.csv file")
    if out is not None and Path(out).resolve() == source.path.resolve():
        raise UsageError("`-o` must not be the file being checked", hint="write the kept rows to another file")
    rows, problems = read_rows(source)
    gates = expert_gates(manifest, exclude=source.path)
    result = CheckResult(str(file), manifest.name, GateReport(), str(out) if out is not None else None)
    for problem in problems:
        result.report.record(_unreadable(problem.location, problem.message))
    kept: list[Any] = []
    for index, (location, row) in enumerate(rows, 1):
        _, rejection = gates.check(row, location)
        result.report.record(rejection)
        if rejection is None:
            kept.append(row)
        report(progress, f"checking · {source.path.name}", index, len(rows))
    result.report.rejections.sort(key=lambda r: _line_number(r.location))  # unreadable lines among the rest
    if out is not None:
        _write_rows(Path(out), kept)
    return result


def _line_number(location: str) -> int:
    tail = location.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def _unreadable(location: str, message: str):
    from expert_cli.sdk.quality_gates import Rejection

    return Rejection(location, "format", message)


def _write_rows(path: Path, rows: list[Any]) -> None:
    from expert_cli.core.files import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
