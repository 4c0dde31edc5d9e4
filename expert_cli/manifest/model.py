"""A typed view of ``manifest.json`` that reads schema 1.0 and 2.0 and never loses a key.

``Manifest.data`` is the JSON exactly as loaded (unknown keys and ``_comment`` keys included); the typed
properties are read-only views over it, so ``to_dict()``/``dumps()`` round-trip the author's file. Loading
runs the lenient semantic rules (:mod:`expert_cli.manifest.rules`); ``check_strict`` adds the bundled
JSON Schema.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ManifestError, ManifestValidationError, UsageError
from expert_cli.core.jsonlines import PathKey, format_path, line_for, line_index, parse_json
from expert_cli.manifest.problems import Problem

MANIFEST_FILE = "manifest.json"

__all__ = ["MANIFEST_FILE", "Manifest", "Problem", "load_manifest", "manifest_from_dict", "model_slug",
           "parse_manifest"]


@dataclass(frozen=True)
class AdapterSpec:
    type: str
    target_modules: list[str]
    feedforward_modules: list[str] = field(default_factory=list)
    r: int | None = None
    alpha: float | None = None
    dropout: float | None = None
    use_dora: bool = False
    scaling: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdapterSpec:
        kind = str(data.get("type", "")).lower()
        return cls(
            type=kind,
            target_modules=_strings(data.get("target_modules")),
            feedforward_modules=_strings(data.get("feedforward_modules")),
            r=data.get("r"),
            alpha=data.get("alpha"),
            dropout=data.get("dropout"),
            use_dora=bool(data.get("use_dora", kind == "dora")),
            scaling=data.get("scaling"),
        )


@dataclass(frozen=True)
class BaseModelSpec:
    name: str
    adapters: list[AdapterSpec]
    sha256: str | None = None
    quantization: str | None = None
    rope_scaling: Any = None
    prompt_template: str | None = None

    @property
    def slug(self) -> str:
        return model_slug(self.name)

    @classmethod
    def from_dict(cls, data: dict[str, Any], adapters: list[dict[str, Any]]) -> BaseModelSpec:
        return cls(
            name=str(data.get("name", "")),
            adapters=[AdapterSpec.from_dict(a) for a in _items(adapters) if isinstance(a, dict)],
            sha256=data.get("sha256") or None,
            quantization=data.get("quantization"),
            rope_scaling=data.get("rope_scaling"),
            prompt_template=data.get("prompt_template"),
        )


@dataclass(frozen=True)
class RoutingSpec:
    keywords: list[str] = field(default_factory=list)
    exclude_keywords: list[str] = field(default_factory=list)
    priority: float | None = None
    router_hint: str | None = None


@dataclass(frozen=True)
class ConstraintsSpec:
    requires: list[str] = field(default_factory=list)
    incompatible_with: list[str] = field(default_factory=list)
    load_order: int | None = None
    max_chain: int | None = None


@dataclass(frozen=True)
class SoftPromptSpec:
    name: str
    path: str
    tokens: int
    init_method: str | None = None
    init_text: str | None = None


@dataclass(frozen=True)
class DecodingSpec:
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    max_new_tokens: int | None = None
    stop_sequences: list[str] = field(default_factory=list)
    use_grammar: bool = False
    grammar_type: str | None = None
    grammar_file: str | None = None
    names_from_prompt: str | None = None  # a grammar rule bound to the prompt's identifiers (grammar_binding)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodingSpec:
        return cls(
            temperature=data.get("temperature"),
            top_p=data.get("top_p"),
            top_k=data.get("top_k"),
            min_p=data.get("min_p"),
            repetition_penalty=data.get("repetition_penalty"),
            max_new_tokens=data.get("max_new_tokens", data.get("max_tokens")),
            stop_sequences=_strings(data.get("stop_sequences")),
            use_grammar=bool(data.get("use_grammar", False)),
            grammar_type=data.get("grammar_type"),
            grammar_file=data.get("grammar_file") if isinstance(data.get("grammar_file"), str) else None,
            names_from_prompt=data.get("names_from_prompt") if isinstance(data.get("names_from_prompt"), str) else None,
        )


def _items(value: Any) -> list[Any]:
    """A manifest list, or [] when the field holds something else (the rules report the wrong type)."""
    return value if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [item for item in _items(value) if isinstance(item, str)]


def model_slug(base_model_name: str) -> str:
    """The folder/file-name form of a base model: last path part, lowercased, ``.`` and ``_`` -> ``-``.

    ``F:/x/Qwen3-0.6B`` and ``Qwen/Qwen3-0.6B`` give ``qwen3-0-6b``; ``builtin:tiny-qwen3`` gives ``tiny-qwen3``.
    """
    last = re.split(r"[/\\:]", base_model_name.rstrip("/\\"))[-1]
    return re.sub(r"[._\s]+", "-", last.lower()).strip("-") or "model"


class Manifest:
    """A loaded manifest. Construct with :func:`load_manifest` or :func:`manifest_from_dict`."""

    def __init__(self, data: dict[str, Any], path: Path | None = None, text: str | None = None) -> None:
        self.data = data
        self.path = path
        self._lines = line_index(text) if text is not None else {}

    # -- identity -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))

    @property
    def version(self) -> str:
        return str(self.data.get("version", ""))

    @property
    def description(self) -> str:
        return str(self.data.get("description", ""))

    @property
    def schema_version(self) -> str:
        declared = self.data.get("schema_version")
        if declared is not None:
            return str(declared)
        return "2.0" if "base_models" in self.data else "1.0"

    @property
    def root(self) -> Path | None:
        return self.path.parent if self.path is not None else None

    def resolve_path(self, relative: str | Path) -> Path:
        """A path from the manifest, resolved against the manifest's folder (absolute paths unchanged)."""
        candidate = Path(relative).expanduser()
        if candidate.is_absolute() or self.root is None:
            return candidate
        return self.root / candidate

    # -- models and adapters --------------------------------------------------------------------
    @property
    def base_models(self) -> list[BaseModelSpec]:
        if self.schema_version == "2.0":
            entries = _items(self.data.get("base_models"))
            return [BaseModelSpec.from_dict(e, e.get("adapters") or []) for e in entries if isinstance(e, dict)]
        base = self.data.get("base_model")
        if not isinstance(base, dict):
            return []
        return [BaseModelSpec.from_dict(base, _items(self.data.get("adapters")))]

    def base_model(self, name: str | None = None) -> BaseModelSpec:
        """The base model named ``name`` (exact name or slug), or the only one when ``name`` is None."""
        models = self.base_models
        names = ", ".join(f"`{m.name}`" for m in models)
        if name is None:
            if len(models) == 1:
                return models[0]
            raise UsageError(
                f"`{self.name}` lists {len(models)} base models ({names}); choose one",
                hint="pass `--model <name>` (or `--base-model`) with one of them",
            )
        for model in models:
            if name in (model.name, model.slug) or model_slug(name) == model.slug:
                return model
        raise UsageError(f"`{self.name}` has no base model `{name}`; it lists {names}")

    def for_base_model(self, name: str | None = None) -> dict[str, Any]:
        """A deep copy of the raw manifest that keeps only the selected base model (v2); v1 is unchanged."""
        data = copy.deepcopy(self.data)
        if self.schema_version != "2.0":
            return data
        chosen = self.base_model(name)
        data["base_models"] = [
            entry for entry in _items(data.get("base_models")) if isinstance(entry, dict) and entry.get("name") == chosen.name
        ]
        return data

    # -- routing, constraints, training ----------------------------------------------------------
    @property
    def capabilities(self) -> list[str]:
        return _strings(self.data.get("capabilities"))

    @property
    def routing(self) -> RoutingSpec | None:
        routing = self.data.get("routing")
        if not isinstance(routing, dict):
            return None
        return RoutingSpec(
            keywords=[k for k in routing.get("keywords") or [] if isinstance(k, str)],
            exclude_keywords=[k for k in routing.get("exclude_keywords") or [] if isinstance(k, str)],
            priority=routing.get("priority"),
            router_hint=routing.get("router_hint"),
        )

    @property
    def constraints(self) -> ConstraintsSpec:
        data = self.data.get("constraints")
        data = data if isinstance(data, dict) else {}
        return ConstraintsSpec(
            requires=_strings(data.get("requires")),
            incompatible_with=_strings(data.get("incompatible_with")),
            load_order=data.get("load_order"),
            max_chain=data.get("max_chain"),
        )

    @property
    def soft_prompts(self) -> list[SoftPromptSpec]:
        return [
            SoftPromptSpec(
                name=str(sp.get("name", "")),
                path=str(sp.get("path", "")),
                tokens=sp["tokens"] if isinstance(sp.get("tokens"), int) else 0,
                init_method=sp.get("init_method"),
                init_text=sp.get("init_text"),
            )
            for sp in _items(self.data.get("soft_prompts"))
            if isinstance(sp, dict)
        ]

    @property
    def training(self) -> dict[str, Any]:
        value = self.data.get("training")
        return value if isinstance(value, dict) else {}

    @property
    def training_config(self) -> dict[str, Any]:
        value = self.training.get("config")
        return value if isinstance(value, dict) else {}

    def training_config_for(self, base_model: str | None = None) -> dict[str, Any]:
        """``training.config`` with the chosen base model's own ``training_config`` overrides merged on top.

        A v2 ``base_models[]`` entry may carry ``training_config`` (e.g. small-CPU settings for the demo base
        beside GPU settings for Qwen3-0.6B); keys it sets win, everything else comes from ``training.config``.
        """
        merged = copy.deepcopy(self.training_config)
        if self.schema_version != "2.0" or not self.base_models:
            return merged
        chosen = self.base_model(base_model) if base_model or len(self.base_models) == 1 else None
        for entry in _items(self.data.get("base_models")):
            if chosen is not None and isinstance(entry, dict) and entry.get("name") == chosen.name:
                merged.update(copy.deepcopy(entry.get("training_config") or {}))
        return merged

    @property
    def dataset(self) -> dict[str, Any]:
        value = self.training.get("dataset")
        return value if isinstance(value, dict) else {}

    @property
    def decoding(self) -> DecodingSpec:
        value = self.training.get("decoding")
        return DecodingSpec.from_dict(value if isinstance(value, dict) else {})

    # -- serialisation and locations --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)

    def dumps(self) -> str:
        return json.dumps(self.data, indent=2, ensure_ascii=False) + "\n"

    def line_of(self, path: PathKey) -> int | None:
        return line_for(self._lines, path) if self._lines else None

    def problem(self, path: PathKey, message: str) -> Problem:
        return Problem(format_path(path), message, self.line_of(path))

    def label(self) -> str:
        return str(self.path) if self.path is not None else (self.name or "manifest")


def read_manifest_text(path: str | Path) -> tuple[Path, str]:
    """Resolve a manifest file or an expert folder to ``(file, text)``; clear errors when missing."""
    target = Path(path)
    if target.is_dir():
        target = target / MANIFEST_FILE
    if not target.is_file():
        raise ManifestError(
            f"no manifest at `{target}`",
            hint="pass a `manifest.json` file or an expert folder that contains one",
        )
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read `{target}`: {exc.strerror or exc}") from exc
    if data[:2] == b"\x1f\x8b":  # gzip: a `.expert` package given where a manifest is expected
        raise ManifestError(f"`{target}` is a `.expert` package, not a manifest",
                            hint="pass the expert folder or its `manifest.json`; "
                                 f"`expert-cli validate {target}` checks a package")
    try:
        return target, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"`{target}` is not a UTF-8 text file (byte {exc.start}), so not a manifest",
                            hint="pass a `manifest.json` file or an expert folder that contains one") from exc


def parse_manifest(path: str | Path) -> Manifest:
    """Read and parse a manifest without the semantic rules (``validate`` reports those itself)."""
    target, text = read_manifest_text(path)
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"`{target}` is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            hint="fix the JSON syntax at that line",
        ) from exc
    except ValueError as exc:
        raise ManifestError(f"`{target}` is not usable JSON: {exc}", hint="fix that value in the file") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"`{target}` must hold a JSON object, not {type(data).__name__}")
    return Manifest(data, target, text)


def load_manifest(path: str | Path) -> Manifest:
    """Load a manifest file or expert folder leniently: semantic rules only, every key kept."""
    manifest = parse_manifest(path)
    raise_for_problems(manifest)
    return manifest


def manifest_from_dict(data: dict[str, Any], source: str | Path | None = None) -> Manifest:
    """Build a manifest from an already-parsed dict (no copy) and run the lenient rules."""
    if not isinstance(data, dict):
        raise ManifestError("a manifest must be a JSON object")
    manifest = Manifest(data, Path(source) if source is not None else None)
    raise_for_problems(manifest)
    return manifest


def raise_for_problems(manifest: Manifest) -> None:
    from expert_cli.manifest.rules import lenient_problems

    problems = lenient_problems(manifest)
    if problems:
        raise ManifestValidationError(
            f"manifest `{manifest.label()}` is invalid: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            problems,
            hint=f"run `expert-cli validate {manifest.label()}` for the full report",
        )
