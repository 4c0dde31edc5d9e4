"""``verify`` (a package file or an installed expert) and ``validate`` for ``.expert`` files."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.errors import PackageError, SignatureError, UsageError
from expert_cli.core.hashing import check_sidecar
from expert_cli.core.progress import ProgressCallback
from expert_cli.manifest.validation import (
    FAIL,
    PASS,
    SKIP,
    WARN,
    Check,
    CheckFn,
    ValidationContext,
    ValidationReport,
    validate_path,
)
from expert_cli.packages.archive import ArchiveMember, extract_archive
from expert_cli.packages.build import PACKAGE_SUFFIX
from expert_cli.packages.integrity import (
    IntegrityReport,
    check_members,
    check_package_folder,
    open_verified,
    read_signature,
    verify_files,
)
from expert_cli.packages.policy import decide_trust
from expert_cli.packages.registry import read_registry
from expert_cli.packages.signing import fingerprint
from expert_cli.packages.trust import list_trusted_keys


@dataclass
class VerifyResult:
    target: str
    kind: str  # "package" | "installed"
    integrity: IntegrityReport
    trust: str
    sidecar: str  # "ok" | "absent" | "n/a"
    pinned_key: str | None = None  # the key this expert's name is pinned to here (trust on first use)

    def to_dict(self) -> dict[str, Any]:
        pinned = {"pinned_key": self.pinned_key,
                  "pinned_fingerprint": fingerprint(self.pinned_key) if self.pinned_key else None}
        return {"target": self.target, "kind": self.kind, **self.integrity.to_dict(), "trust": self.trust,
                "sidecar": self.sidecar, **pinned, "ok": True}


def verify_target(target: str, allow_unsigned: bool = False, trust_keys: Iterable[str] = (),
                  progress: ProgressCallback | None = None) -> VerifyResult:
    """Verify a ``.expert`` file, or an installed ``name[@version]``; raises on any failure."""
    path = Path(target).expanduser()
    if path.is_dir():
        raise UsageError(f"`{target}` is a folder; `verify` checks a `.expert` file or an installed expert",
                         hint=f"check an expert folder with `expert-cli validate {target}`")
    if not path.is_file() and (path.suffix == PACKAGE_SUFFIX or "/" in target):
        raise PackageError(f"no package at `{target}`",
                           hint="pass an existing `.expert` file, or NAME[@VERSION] of an installed expert")
    if path.is_file():
        with tempfile.TemporaryDirectory(prefix="expert-verify-") as scratch:
            opened = open_verified(path, Path(scratch) / "package", progress)
        report, sidecar = opened.report, "ok" if opened.sidecar else "absent"
        trust = decide_trust(report, allow_unsigned, trust_keys)
        pinned = read_registry().pinned_key(report.name)
        return VerifyResult(str(path), "package", report, trust, sidecar, pinned)
    registry = read_registry()
    spec = registry.resolve(target)
    entry = registry.get(spec.name, spec.version)
    folder = Path(entry.path)
    if not folder.is_dir():
        raise PackageError(f"the folder of `{entry.spec}` is missing: `{folder}`",
                           hint="reinstall it with `expert-cli install <source> --force`")
    report = check_package_folder(folder, entry.spec, progress)
    accepted = (entry.extra.get("integrity") or {}).get("trust") in ("unsigned", "local")
    trust = decide_trust(report, allow_unsigned or accepted, trust_keys)
    return VerifyResult(entry.spec, "installed", report, trust, "n/a", registry.pinned_key(entry.name))


def validate_package(path: Path, strict: bool = False, extra_checks: Iterable[CheckFn] = (),
                     options: dict[str, Any] | None = None) -> ValidationReport:
    """``validate`` on a ``.expert``: safe extraction, sidecar, manifest checks, file hashes, signature."""
    with tempfile.TemporaryDirectory(prefix="expert-validate-") as scratch:
        folder = Path(scratch) / "package"
        try:
            members = extract_archive(path, folder)
        except PackageError as exc:
            return ValidationReport(str(path), "package", strict, [Check("archive is a safe gzip tar", FAIL, exc.message)])
        checks = [Check("archive is a safe gzip tar", PASS, f"{len(members)} members"), _sidecar_check(path)]

        def check_contents(context: ValidationContext) -> Iterable[Check]:
            yield from _contents_checks(context, members, path.name)

        report = validate_path(folder, strict=strict, kind="package", folder=folder,
                               options={**(options or {}), "package_label": path.name},
                               extra_checks=[check_contents, check_integrity, *extra_checks])
    report.target = str(path)
    for check in report.checks:
        check.detail = check.detail.replace(str(folder), path.name)
    report.checks = checks + report.checks
    return report


def _contents_checks(context: ValidationContext, members: list[ArchiveMember], label: str) -> Iterable[Check]:
    """No archive member beyond the ``files`` map (folder entries included)."""
    assert context.manifest is not None
    data = context.manifest.data
    if isinstance(data.get("files"), dict):
        try:
            check_members(members, data["files"], label)
        except PackageError as exc:
            yield Check("members are the listed files", FAIL, exc.message)


def _sidecar_check(path: Path) -> Check:
    try:
        digest = check_sidecar(path)
    except PackageError as exc:
        return Check("checksum file (.sha256)", FAIL, exc.message)
    return Check("checksum file (.sha256)", PASS if digest else SKIP, "matches" if digest else "no sidecar next to it")


def check_integrity(context: ValidationContext) -> Iterable[Check]:
    """File hashes against the manifest's ``files`` map, then the signature and whether its key is trusted."""
    assert context.manifest is not None and context.folder is not None
    data, label = context.manifest.data, context.options.get("package_label", Path(context.target).name)
    if not isinstance(data.get("files"), dict):
        yield Check("file hashes", WARN, "legacy package without a `files` map; contents cannot be checked")
        yield Check("signature", WARN, "not verifiable without a `files` map (install needs `--allow-unsigned`)")
        return
    try:
        hashes = verify_files(context.folder, data, label)
    except PackageError as exc:
        yield Check("file hashes", FAIL, exc.message)
        return
    yield Check("file hashes", PASS, f"{len(hashes)} files match the manifest")
    yield _signature_check(data, hashes, label)


def _signature_check(data: dict[str, Any], hashes: dict[str, str], label: str) -> Check:
    try:
        facts = read_signature(data, hashes, label)
    except SignatureError as exc:
        return Check("signature", FAIL, exc.message)
    if not facts["signed"]:
        return Check("signature", WARN, "not signed (install needs `--allow-unsigned`); sign it with `expert-cli sign`")
    key = facts["pubkey"]
    names = [k.name for k in list_trusted_keys() if k.pubkey == key]
    if names:
        return Check("signature", PASS, f"valid, by trusted key `{names[0]}` ({fingerprint(key)})")
    return Check("signature", WARN, f"valid, by key {fingerprint(key)}, which is not trusted here "
                                    f"(`expert-cli trust add <publisher>.pub`)")

