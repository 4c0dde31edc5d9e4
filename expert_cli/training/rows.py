"""Read raw dataset rows with their line numbers: JSONL, JSON, CSV, Parquet, a dataset folder, or a Hugging Face id.

Every row comes back as ``(line, row)`` so errors can say ``file:line``. Local text formats are read here
without any heavy import; Parquet, dataset folders and Hugging Face ids go through ``datasets`` (imported
inside the function that needs it).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.errors import DatasetError
from expert_cli.core.jsonlines import parse_json

LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".ndjson")


@dataclass(frozen=True)
class DatasetSource:
    """Where rows come from: a local ``path`` (file or folder), or a Hugging Face ``hf_id`` with split/config."""

    label: str
    path: Path | None = None
    hf_id: str | None = None
    split: str | None = None
    config: str | None = None


@dataclass(frozen=True)
class SourceProblem:
    """A row or line that cannot be used, with where it is."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"location": self.location, "message": self.message}


def resolve_source(spec: str, base_dir: Path | None = None) -> DatasetSource:
    """Resolve ``spec`` (a path, or ``name[::split[::config]]``) against ``base_dir`` (the manifest's folder)."""
    if not str(spec).strip():
        raise DatasetError("the dataset name is empty", hint="pass a dataset file or a Hugging Face id")
    name, _, rest = str(spec).partition("::")
    split, _, config = rest.partition("::")
    candidate = Path(name).expanduser()
    if not candidate.is_absolute() and base_dir is not None:
        candidate = base_dir / candidate
    if candidate.exists():
        return DatasetSource(str(candidate) + (f"::{rest}" if rest else ""), candidate, split=split or None,
                             config=config or None)
    if _looks_like_hf_id(name):
        return DatasetSource(spec, hf_id=name, split=split or None, config=config or None)
    raise DatasetError(
        f"dataset `{candidate}` does not exist",
        hint="pass a .jsonl/.json/.csv/.parquet file or a Hugging Face id such as `org/name::train` "
             "(`train` takes it as `--dataset PATH`)",
    )


def _looks_like_hf_id(name: str) -> bool:
    return (
        "/" in name
        and not name.startswith((".", "/", "~"))
        and not name.lower().endswith(LOCAL_SUFFIXES)
        and name.count("/") == 1
    )


def read_rows(source: DatasetSource, *, streaming: bool = False, limit: int | None = None
              ) -> tuple[list[tuple[str, Any]], list[SourceProblem]]:
    """All rows as ``(location, row)`` plus the lines that are not valid JSON."""
    if source.path is not None and source.path.is_file():
        suffix = source.path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(source.path, limit)
        if suffix == ".json":
            return _read_json(source.path, limit)
        if suffix == ".csv":
            return _read_csv(source.path, limit), []
        if suffix != ".parquet":  # datasets would take an unknown local file for a hub id and go online
            raise DatasetError(f"`{source.path}` is not a dataset file (`{suffix or 'no extension'}`)",
                               hint=f"use a {', '.join(LOCAL_SUFFIXES)} file (JSON Lines: name it `.jsonl`)")
    return _read_with_datasets(source, streaming=streaming, limit=limit), []


def _read_jsonl(path: Path, limit: int | None) -> tuple[list[tuple[str, Any]], list[SourceProblem]]:
    rows: list[tuple[str, Any]] = []
    problems: list[SourceProblem] = []
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, 1):
            location = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(SourceProblem(location, f"not UTF-8 text (byte {exc.start + 1} of the line)"))
                continue
            if not line.strip():
                continue
            try:
                rows.append((location, parse_json(line)))
            except json.JSONDecodeError as exc:
                problems.append(SourceProblem(location, f"not valid JSON: {exc.msg} (column {exc.colno})"))
            except ValueError as exc:
                problems.append(SourceProblem(location, f"not usable JSON: {exc}"))
            if limit is not None and len(rows) >= limit:
                break
    return rows, problems


def _read_json(path: Path, limit: int | None) -> tuple[list[tuple[str, Any]], list[SourceProblem]]:
    with _open_text(path) as handle:
        text = _read_all(handle, path)
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        if "\n" in text.strip():  # maybe JSON Lines with a .json name
            return _read_jsonl(path, limit)
        raise DatasetError(f"`{path}:{exc.lineno}` is not valid JSON: {exc.msg}") from exc
    except ValueError as exc:
        raise DatasetError(f"`{path}` is not usable JSON: {exc}") from exc
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [data])
    if not isinstance(data, list):
        raise DatasetError(f"`{path}` must hold a JSON list of rows (or JSON Lines)")
    from expert_cli.core.jsonlines import line_index

    lines = line_index(text)
    rows = [(f"{path}:{lines.get((i,), i + 1)}", row) for i, row in enumerate(data)]
    return rows[:limit] if limit is not None else rows, []


def _read_csv(path: Path, limit: int | None) -> list[tuple[str, Any]]:
    with _open_text(path) as handle:
        reader = csv.DictReader(io.StringIO(_read_all(handle, path)))
        rows = [(f"{path}:{reader.line_num}", dict(row)) for row in reader]
    return rows[:limit] if limit is not None else rows


def _read_all(handle: Any, path: Path) -> str:
    try:
        return handle.read()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"`{path}` is not UTF-8 text (byte {exc.start})",
                           hint="save the dataset as UTF-8 JSON Lines") from exc


def _open_binary(path: Path):
    try:
        return path.open("rb")
    except OSError as exc:
        raise DatasetError(f"cannot read `{path}`: {exc.strerror or exc}") from exc


def _open_text(path: Path):
    try:
        return path.open(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read `{path}`: {exc.strerror or exc}") from exc


def _read_with_datasets(source: DatasetSource, *, streaming: bool, limit: int | None) -> list[tuple[str, Any]]:
    """Parquet files, saved dataset folders and Hugging Face ids, through the ``datasets`` library."""
    from expert_cli.core.errors import require

    require("datasets", "train")
    dataset = _load_hf(source, streaming)
    rows: list[tuple[str, Any]] = []
    for index, row in enumerate(dataset):
        if limit is not None and index >= limit:
            break
        rows.append((f"{source.label} row {index + 1}", dict(row)))
    return rows


def _load_hf(source: DatasetSource, streaming: bool):
    import datasets

    try:
        if source.path is not None and source.path.is_dir() and _is_saved_dataset(source.path):
            loaded = datasets.load_from_disk(str(source.path))
        elif source.path is not None:
            kind = "parquet" if source.path.suffix.lower() == ".parquet" else None
            loaded = (datasets.load_dataset(kind, data_files=str(source.path), streaming=streaming) if kind
                      else datasets.load_dataset(str(source.path), source.config, streaming=streaming))
        else:
            loaded = datasets.load_dataset(source.hf_id, source.config, streaming=streaming)
    except (FileNotFoundError, ConnectionError, ValueError, OSError, IndexError) as exc:
        reason = "no data files found" if isinstance(exc, IndexError) else (  # datasets' IndexError on `/`
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise DatasetError(
            f"cannot load dataset `{source.label}`: {reason}",
            hint="check the id and split, or download it first (`hf download --repo-type dataset <id>`)",
        ) from exc
    return _pick_split(loaded, source)


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_info.json").exists() or (folder / "dataset_dict.json").exists()


def _pick_split(loaded: Any, source: DatasetSource):
    if not hasattr(loaded, "keys"):
        return loaded
    splits = list(loaded.keys())
    split = source.split or ("train" if "train" in splits else splits[0])
    if split not in splits:
        raise DatasetError(f"dataset `{source.label}` has no split `{split}`; it has {', '.join(splits)}")
    return loaded[split]
