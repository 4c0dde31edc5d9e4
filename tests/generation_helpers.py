"""A small SQL expert folder and rows for dataset generation tests (seeds, a test split, valid and broken rows)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMA = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, city TEXT);"
CITIES = ("Lima", "Oslo", "Pune", "Kyiv", "Lyon", "Cork", "Nara", "Bonn")


def sql_row(i: int, answer: str | None = None, question: str | None = None) -> dict[str, Any]:
    """A chat row in the reference SQL expert's format; each ``i`` gives a different question and query."""
    city = CITIES[i % len(CITIES)]
    question = question or f"List the name of users older than {20 + i} who live in {city}."
    answer = answer or f"SELECT name FROM users WHERE age > {20 + i} AND city = '{city}'"
    return {"messages": [{"role": "system", "content": f"Dialect: sql\nSchema:\n{SCHEMA}"},
                         {"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def write_rows(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def make_sql_expert(folder: Path, generation: dict[str, Any] | None = None) -> Path:
    """The reference SQL expert's manifest over 3 seed rows (data/train.jsonl) and 2 test rows."""
    manifest = json.loads((REPO / "experts" / "expert-sql" / "manifest.json").read_text(encoding="utf-8"))
    manifest["training"]["dataset"] = {"path": "data/train.jsonl", "test_path": "data/test.jsonl", "format": "jsonl"}
    if generation is not None:
        manifest["training"]["generation"] = generation
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    write_rows(folder / "data" / "train.jsonl", [sql_row(i) for i in (100, 101, 102)])
    write_rows(folder / "data" / "test.jsonl", [
        sql_row(0, question="How many users live in Oslo?", answer="SELECT COUNT(*) FROM users WHERE city = 'Oslo'"),
        sql_row(0, question="What is the average age of the users?", answer="SELECT AVG(age) FROM users")])
    return folder
