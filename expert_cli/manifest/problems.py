"""A broken manifest rule, as every checker reports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One broken rule: the JSON path of the field, what is wrong, and the file line when known."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"`{self.path}`" + (f" (line {self.line})" if self.line else "")
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message, "line": self.line}
