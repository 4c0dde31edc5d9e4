"""``validate``'s engine: numbered checks over a manifest file, an expert folder or (later) a package.

Each check is a function ``(ValidationContext) -> Iterable[Check]``. :func:`validate_path` runs the
built-in manifest checks and then any ``extra_checks`` the caller passes, which is how other layers plug in
(grammar compilation from ``inference``, package integrity, quality on test cases) without this module
importing them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ManifestError
from expert_cli.manifest.locations import location_problems
from expert_cli.manifest.model import MANIFEST_FILE, Manifest, Problem, parse_manifest
from expert_cli.manifest.rules import lenient_problems, strict_problems
from expert_cli.manifest.soft_prompt_files import find_soft_prompt

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass
class Check:
    name: str
    status: str
    detail: str = ""
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self, number: int) -> dict[str, Any]:
        return {
            "number": number,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass
class ValidationContext:
    """What a check may look at. ``folder`` is the expert or extracted-package folder, when there is one."""

    target: Path
    kind: str  # "manifest" | "expert" | "package"
    strict: bool
    manifest: Manifest | None = None
    folder: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)


CheckFn = Callable[[ValidationContext], Iterable[Check]]


@dataclass
class ValidationReport:
    target: str
    kind: str
    strict: bool
    checks: list[Check]
    name: str | None = None
    version: str | None = None

    @property
    def ok(self) -> bool:
        return all(check.status != FAIL for check in self.checks)

    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.checks) for status in (PASS, FAIL, WARN, SKIP)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "strict": self.strict,
            "name": self.name,
            "version": self.version,
            "ok": self.ok,
            "checks": [check.to_dict(i) for i, check in enumerate(self.checks, 1)],
            "summary": self.counts(),
        }


def validate_path(path: str | Path, *, strict: bool = False, extra_checks: Iterable[CheckFn] = (),
                  options: dict[str, Any] | None = None, kind: str | None = None,
                  folder: Path | None = None) -> ValidationReport:
    """Run every check on a manifest file or expert folder and return the report (never raises for findings)."""
    target = Path(path)
    if not target.exists():
        raise ManifestError(f"`{target}` does not exist", hint="pass a manifest file, an expert folder or a `.expert` package")
    kind = kind or ("expert" if target.is_dir() else "manifest")
    context = ValidationContext(target, kind, strict, folder=folder or (target if target.is_dir() else None),
                                options=options or {})
    checks = list(_manifest_checks(context))
    if context.manifest is not None:
        for check_fn in (*BUILTIN_FOLDER_CHECKS, *extra_checks):
            checks.extend(check_fn(context))
    report = ValidationReport(str(target), kind, strict, checks)
    if context.manifest is not None:
        report.name, report.version = context.manifest.name, context.manifest.version
    return report


def _manifest_checks(context: ValidationContext) -> Iterable[Check]:
    manifest_path = context.folder / MANIFEST_FILE if context.folder else context.target
    try:
        manifest = parse_manifest(manifest_path)
    except ManifestError as exc:
        yield Check("manifest is readable JSON", FAIL, exc.message)
        return
    context.manifest = manifest
    yield Check("manifest is readable JSON", PASS, str(manifest_path))
    problems = lenient_problems(manifest)
    detail = f"{manifest.name}@{manifest.version}, schema {manifest.schema_version}"
    yield Check("manifest rules (name, version, models, adapters, training)",
                FAIL if problems else PASS, f"{len(problems)} problem(s)" if problems else detail, problems)
    if context.strict:
        schema = strict_problems(manifest)
        yield Check("JSON Schema (strict)", FAIL if schema else PASS,
                    f"{len(schema)} schema error(s)" if schema else "matches schemas/expert-manifest.schema.json",
                    schema)


def check_dataset(context: ValidationContext) -> Iterable[Check]:
    """The training dataset is named, and a local file exists (HF ids and multi-task sets are not fetched)."""
    manifest = context.manifest
    assert manifest is not None
    if context.kind == "package":
        yield Check("training dataset", SKIP, "datasets are not shipped in packages")
        return
    dataset = manifest.dataset
    source = dataset.get("path")
    if not source and not dataset.get("tasks") and not dataset.get("generation"):
        yield Check("training dataset", WARN, "no `training.dataset.path`, `tasks` or `generation`; cannot train")
        return
    if not source:
        yield Check("training dataset", PASS, "multi-task or generated dataset")
        return
    local = manifest.resolve_path(str(source).split("::")[0])
    if local.exists():
        yield Check("training dataset", PASS, str(local))
    elif "/" in str(source) and not str(source).startswith((".", "/")) and not local.suffix:
        yield Check("training dataset", SKIP, f"`{source}` looks like a Hugging Face dataset id")
    else:
        yield Check("training dataset", WARN, f"`{local}` does not exist yet; training needs it")


def check_weights(context: ValidationContext) -> Iterable[Check]:
    """Adapter weights, for an expert folder: ``weights/<model>/adapter/`` or the folder itself."""
    if context.folder is None or context.manifest is None:
        return
    found = find_adapter_dirs(context.folder, context.manifest)
    if found:
        yield Check("adapter weights", PASS, ", ".join(str(p) for p in found))
    elif context.kind == "package":
        yield Check("adapter weights", FAIL, f"no {' + '.join(ADAPTER_FILES)} in the package")
    else:
        yield Check("adapter weights", SKIP, "not trained yet (run `expert-cli train` to create them)")


def check_soft_prompts(context: ValidationContext) -> Iterable[Check]:
    """Each declared soft prompt has its file (the runtime leaves a missing one out of every prompt)."""
    manifest, folder = context.manifest, context.folder
    if folder is None or manifest is None or not manifest.soft_prompts:
        return
    trained = [folder / "weights" / model.slug / "soft_prompts" for model in manifest.base_models]
    found = {p.name: find_soft_prompt(manifest, folder, p, trained) for p in manifest.soft_prompts}
    missing = [name for name, path in found.items() if path is None]
    if not missing:
        yield Check("soft prompts", PASS, ", ".join(str(path) for path in found.values()))
    elif context.kind == "package":
        yield Check("soft prompts", WARN, f"no file for soft prompt(s) {', '.join(missing)}; answers go without them")
    else:
        yield Check("soft prompts", SKIP, f"no file yet for {', '.join(missing)} (`expert-cli train` writes them)")


def check_file_paths(context: ValidationContext) -> Iterable[Check]:
    """Every file the manifest names (grammar, soft prompts, weights; datasets in a package) is inside it."""
    if context.manifest is None:
        return
    problems = [context.manifest.problem(key, message)
                for key, message in location_problems(context.manifest.data, packaged=context.kind == "package")]
    if problems:
        yield Check("file paths inside the expert", FAIL, f"{len(problems)} path(s) lead outside the expert folder",
                    problems)
    else:
        yield Check("file paths inside the expert", PASS, "every file the manifest names is inside it")


def find_adapter_dirs(folder: Path, manifest: Manifest) -> list[Path]:
    """Folders holding a PEFT adapter for this expert, by the documented convention."""
    candidates = [folder] + [folder / "weights" / model.slug / "adapter" for model in manifest.base_models]
    return [c for c in candidates if all((c / name).is_file() for name in ADAPTER_FILES)]


BUILTIN_FOLDER_CHECKS: tuple[CheckFn, ...] = (check_file_paths, check_dataset, check_weights, check_soft_prompts)
