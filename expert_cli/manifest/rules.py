"""The two tiers of manifest checking.

- :func:`lenient_problems`: the semantic rules every run-time load applies (the original loader's rules,
  fixed and extended: safe names, semver-like versions, known schema versions and adapter types,
  rank/alpha per adapter type, positive epochs and learning rate, non-empty target modules).
- :func:`strict_problems`: the bundled JSON Schema (``schemas/expert-manifest.schema.json``), for
  ``validate --strict``.
Both return :class:`~expert_cli.manifest.problems.Problem` lists naming the JSON path and the file line.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expert_cli.core.errors import ExpertError
from expert_cli.manifest.adapter_types import ADAPTER_TYPES, is_ranked
from expert_cli.manifest.problems import Problem

if TYPE_CHECKING:
    from expert_cli.manifest.model import Manifest

# Used with fullmatch: `$` alone would let a trailing newline through (`"expert-sql\n"`).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
VERSION_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.+-]+)?")
SCHEMA_FILE = "expert-manifest.schema.json"


def lenient_problems(manifest: Manifest) -> list[Problem]:
    data = manifest.data
    problems: list[Problem] = []
    add = lambda path, message: problems.append(manifest.problem(path, message))

    _check_identity(data, add)
    _check_models(manifest, add)
    _check_training(data, add)
    _check_soft_prompts(data.get("soft_prompts"), add)
    routing = data.get("routing")
    if routing is not None and not isinstance(routing, dict):
        add(("routing",), "must be an object")
    elif isinstance(routing, dict):
        priority = routing.get("priority")
        if priority is not None and not (_is_number(priority) and 0 <= priority <= 1):
            add(("routing", "priority"), f"must be a number from 0 to 1, not `{priority}`")
        for key in ("keywords", "exclude_keywords"):
            if key in routing and not _is_str_list(routing[key]):
                add(("routing", key), "must be a list of strings")
    if "capabilities" in data and not _is_str_list(data["capabilities"]):
        add(("capabilities",), "must be a list of strings")
    return problems


def _check_identity(data: dict[str, Any], add) -> None:
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str) or not name.strip():
        add(("name",), "is required and cannot be empty")
    elif not NAME_RE.fullmatch(name):
        add(("name",), f"`{name}` is not a valid expert name (letters, digits, `.`, `_`, `-`)")
    if not isinstance(version, str) or not version.strip():
        add(("version",), "is required and cannot be empty")
    elif not VERSION_RE.fullmatch(version):
        add(("version",), f"`{version}` is not a semantic version like `1.2.3`")
    declared = data.get("schema_version")
    if declared is not None and declared not in ("1.0", "2.0"):
        add(("schema_version",), f"`{declared}` is unknown; use `1.0` or `2.0`")


def _check_models(manifest: Manifest, add) -> None:
    data = manifest.data
    if "base_model" in data and "base_models" in data:
        add(("base_models",), "cannot be used together with `base_model`; keep one")
        return
    if manifest.schema_version == "2.0":
        entries = data.get("base_models")
        if not isinstance(entries, list) or not entries:
            add(("base_models",), "schema 2.0 requires `base_models` with at least one entry")
            return
        for index, entry in enumerate(entries):
            _check_model_entry(entry, ("base_models", index), entry.get("adapters") if isinstance(entry, dict) else None,
                               ("base_models", index, "adapters"), add)
    else:
        if not isinstance(data.get("base_model"), dict):
            add(("base_model",), "schema 1.0 requires a `base_model` object")
            return
        _check_model_entry(data["base_model"], ("base_model",), data.get("adapters"), ("adapters",), add)


def _check_model_entry(entry: Any, path: tuple, adapters: Any, adapters_path: tuple, add) -> None:
    if not isinstance(entry, dict):
        add(path, "must be an object")
        return
    if not isinstance(entry.get("name"), str) or not entry["name"].strip():
        add(path + ("name",), "base model name cannot be empty")
    if not isinstance(adapters, list) or not adapters:
        add(adapters_path, "requires at least one adapter")
        return
    for index, adapter in enumerate(adapters):
        _check_adapter(adapter, adapters_path + (index,), add)


def _check_adapter(adapter: Any, path: tuple, add) -> None:
    if not isinstance(adapter, dict):
        add(path, "must be an object")
        return
    kind = str(adapter.get("type", "")).lower()
    if kind not in ADAPTER_TYPES:
        add(path + ("type",), f"`{adapter.get('type')}` is not a known adapter type ({', '.join(ADAPTER_TYPES)})")
    if not _is_str_list(adapter.get("target_modules")) or not adapter.get("target_modules"):
        add(path + ("target_modules",), "must list at least one module")
    if is_ranked(kind):
        for key in ("r", "alpha"):
            value = adapter.get(key)
            if not (_is_number(value) and value > 0):
                add(path + (key,), f"a `{kind}` adapter needs `{key}` greater than 0")
    elif kind in ADAPTER_TYPES:
        for key in ("r", "alpha"):
            if key in adapter:
                add(path + (key,), f"an `{kind}` adapter has no rank or alpha; remove it")
    dropout = adapter.get("dropout")
    if dropout is not None and not (_is_number(dropout) and 0 <= dropout < 1):
        add(path + ("dropout",), f"must be from 0 to below 1, not `{dropout}`")


def _check_training(data: dict[str, Any], add) -> None:
    training = data.get("training")
    if training is None:
        return
    if not isinstance(training, dict):
        add(("training",), "must be an object")
        return
    config = training.get("config")
    if config is None:
        return
    if not isinstance(config, dict):
        add(("training", "config"), "must be an object")
        return
    base = ("training", "config")
    epochs_key = "epochs" if "epochs" in config else "num_epochs"
    for key in (epochs_key, "learning_rate"):
        if key in config and not (_is_number(config[key]) and config[key] > 0):
            add(base + (key,), f"must be greater than 0, not `{config[key]}`")
    kind = str(config.get("adapter_type", "")).lower()
    if kind and kind not in ADAPTER_TYPES:
        add(base + ("adapter_type",), f"`{config['adapter_type']}` is not a known adapter type")
    if "rank" in config:
        if not (_is_number(config["rank"]) and config["rank"] > 0):
            add(base + ("rank",), "must be greater than 0")
    elif is_ranked(kind) and config.get("method", "sft") == "sft" and "adapter_type" in config:
        add(base + ("rank",), f"a `{kind}` adapter needs `rank` and `alpha`")
    if "target_modules" in config and (not _is_str_list(config["target_modules"]) or not config["target_modules"]):
        add(base + ("target_modules",), "must list at least one module")


def _check_soft_prompts(prompts: Any, add) -> None:
    """Each soft prompt needs a name, a path and a positive whole number of tokens (``Manifest.soft_prompts``)."""
    if prompts is None:
        return
    if not isinstance(prompts, list):
        add(("soft_prompts",), "must be a list")
        return
    for index, prompt in enumerate(prompts):
        path = ("soft_prompts", index)
        if not isinstance(prompt, dict):
            add(path, "must be an object with `name`, `path` and `tokens`")
            continue
        for key in ("name", "path"):
            if not isinstance(prompt.get(key), str) or not prompt[key].strip():
                add(path + (key,), "is required and cannot be empty")
        tokens = prompt.get("tokens")
        if not (isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0):
            add(path + ("tokens",), f"must be a whole number greater than 0, not `{tokens}`")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# -- strict tier: the bundled JSON Schema ---------------------------------------------------------------
@functools.cache
def load_schema(name: str = SCHEMA_FILE) -> dict[str, Any]:
    """A bundled schema: from the wheel (``expert_cli/_schemas``) or the source tree's ``schemas/``."""
    try:
        text = resources.files("expert_cli").joinpath("_schemas").joinpath(name).read_text(encoding="utf-8")
    except OSError:
        source = Path(__file__).resolve().parents[2] / "schemas" / name
        if not source.is_file():
            raise ExpertError(f"the bundled schema `{name}` is missing from this installation",
                              hint="reinstall expert-cli") from None
        text = source.read_text(encoding="utf-8")
    return json.loads(text)


def strict_problems(manifest: Manifest) -> list[Problem]:
    """Every JSON Schema violation, each with its JSON path and line, in document order."""
    import jsonschema

    validator = jsonschema.Draft7Validator(load_schema())
    problems = []
    for error in validator.iter_errors(manifest.data):
        detail = error
        if error.validator == "oneOf" and error.context:  # name the branch that came closest
            detail = min(error.context, key=lambda e: len(e.absolute_path) * -1)
        path = tuple(detail.absolute_path)
        problems.append(manifest.problem(path, _short(detail.message)))
    return sorted(problems, key=lambda p: (p.line or 0, p.path))


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
