"""Every file a manifest names must lie inside the expert's own folder.

A signed manifest could otherwise point inference at ``../../outside/sql.gbnf`` or ``/tmp/prompt.pt`` and have
a file that another writer creates later read at load time. So the check looks at the text of each path,
not at whether the file exists: relative, no ``..``, no ``~``, no drive letter, no backslash. It covers the
grammar, the soft prompts, the adapter weights and the packaging checkpoint, and, in a package (a manifest
with a ``files`` map), the datasets too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ManifestError

PathKey = tuple[str | int, ...]


def named_paths(data: dict[str, Any], packaged: bool = False) -> Iterator[tuple[PathKey, Any]]:
    """``(json path, value)`` of every file location the manifest names (datasets too when ``packaged``)."""
    training = data.get("training") if isinstance(data.get("training"), dict) else {}
    decoding = training.get("decoding") if isinstance(training.get("decoding"), dict) else {}
    if "grammar_file" in decoding:
        yield ("training", "decoding", "grammar_file"), decoding["grammar_file"]
    if "packaging_checkpoint" in training:
        yield ("training", "packaging_checkpoint"), training["packaging_checkpoint"]
    for index, prompt in enumerate(_list(data.get("soft_prompts"))):
        if isinstance(prompt, dict) and "path" in prompt:
            yield ("soft_prompts", index, "path"), prompt["path"]
    models = _list(data.get("base_models")) or [data.get("base_model")]
    for m_index, model in enumerate(models):
        v2 = isinstance(model, dict) and "base_models" in data
        adapters = model.get("adapters") if v2 else data.get("adapters")
        prefix: PathKey = ("base_models", m_index, "adapters") if "base_models" in data else ("adapters",)
        for a_index, adapter in enumerate(_list(adapters)):
            if isinstance(adapter, dict) and "path" in adapter:
                yield prefix + (a_index, "path"), adapter["path"]
        if "base_models" not in data:
            break
    if packaged or isinstance(data.get("files"), dict):
        dataset = training.get("dataset") if isinstance(training.get("dataset"), dict) else {}
        for key in ("path", "validation_path", "test_path"):
            if key in dataset:
                yield ("training", "dataset", key), dataset[key]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def location_problem(value: Any) -> str | None:
    """Why ``value`` is not a path inside the expert folder, or None when it is one."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be a path string, not `{type(value).__name__}`"
    if not value.strip():
        return "cannot be empty"
    if "\\" in value or "\x00" in value:
        return f"`{value[:120]}` has a backslash or NUL in it; use `/` between folders"
    if value.startswith(("/", "~")) or (len(value) > 1 and value[1] == ":"):
        return f"`{value[:120]}` is absolute; use a path inside the expert folder"
    if ".." in value.split("/"):
        return f"`{value[:120]}` climbs out of the expert folder with `..`"
    return None


def inside(root: Path, value: Any) -> Path | None:
    """``root / value`` when ``value`` is a path inside ``root`` by its text; None otherwise. Readers of the
    files a manifest names go through this, so a manifest that slipped past the checks reads nothing
    outside."""
    if location_problem(value) is not None or not isinstance(value, str):
        return None
    return root / value


def location_problems(data: dict[str, Any], packaged: bool = False) -> list[tuple[PathKey, str]]:
    """Every named path that is not inside the expert folder, with its JSON path and why."""
    found = ((key, location_problem(value)) for key, value in named_paths(data, packaged))
    return [(key, problem) for key, problem in found if problem]


def check_locations(data: dict[str, Any], label: str, packaged: bool = False) -> None:
    """Raise ManifestError for the first path in the manifest that leaves the expert folder (``packaged``: the
    manifest is about to go into a package, so its dataset paths count too)."""
    problems = location_problems(data, packaged)
    if problems:
        key, problem = problems[0]
        where = ".".join(str(part) for part in key)
        what = ("a file path that is not a string" if problem.startswith("must be")
                else "a file outside its expert folder")
        raise ManifestError(f"manifest `{label}` names {what}: `{where}` {problem}",
                            hint="every grammar, soft prompt, weights and dataset path must be relative "
                                 "and inside the expert folder")
