"""Checking an extracted package: every listed file's SHA-256, no unlisted files, and the signature.

A package built by expert-cli carries a ``files`` map in its manifest. Without one it is a *legacy* package
(the original system's): nothing can be checked, so it counts as unsigned, whatever ``integrity`` block it
has (the original's signatures cannot be verified; see the reference, section 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.errors import PackageError, SignatureError
from expert_cli.core.hashing import check_sidecar, hash_files, list_files
from expert_cli.core.progress import ProgressCallback
from expert_cli.manifest.locations import check_locations
from expert_cli.manifest.model import MANIFEST_FILE, load_manifest
from expert_cli.packages.archive import ArchiveMember, extract_archive
from expert_cli.packages.signing import (
    ALGORITHM,
    fingerprint,
    normalize_pubkey,
    parse_pubkey,
    signed_hashes,
    signing_message,
)

TAMPER_HINT = "the package was modified after it was built or signed; do not install it"


@dataclass
class IntegrityReport:
    """What was verified in one package folder."""

    label: str
    name: str
    version: str
    files: dict[str, str]
    has_files_map: bool
    signed: bool = False
    pubkey: str | None = None
    signed_at: str | None = None
    publisher: str | None = None
    legacy_signature: bool = False

    @property
    def fingerprint(self) -> str | None:
        return fingerprint(self.pubkey) if self.pubkey else None

    @property
    def verified(self) -> bool:
        """A valid signature over a complete ``files`` map."""
        return self.signed and self.has_files_map and not self.legacy_signature

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "files_checked": len(self.files) if self.has_files_map else 0,
                "has_files_map": self.has_files_map, "signed": self.signed, "signature_valid": self.verified,
                "legacy_signature": self.legacy_signature, "pubkey": self.pubkey, "fingerprint": self.fingerprint,
                "signed_at": self.signed_at, "publisher": self.publisher}


def read_extracted_manifest(folder: Path, label: str) -> dict[str, Any]:
    """The manifest of an extracted package as a raw dict, after the lenient rules."""
    if not (folder / MANIFEST_FILE).is_file():
        raise PackageError(f"`{label}` has no `manifest.json` at its root", hint="rebuild it with `expert-cli package`")
    data = load_manifest(folder / MANIFEST_FILE).to_dict()
    check_locations(data, label)
    return data


def verify_files(folder: Path, data: dict[str, Any], label: str, progress: ProgressCallback | None = None,
                 require_map: bool = True) -> dict[str, str]:
    """Hash every file but the manifest; when the manifest has a ``files`` map, it must match exactly."""
    present = [name for name in list_files(folder) if name != MANIFEST_FILE]
    listed = data.get("files")
    if not isinstance(listed, dict):
        if require_map:
            raise PackageError(f"`{label}` has no `files` map in its manifest, so its contents cannot be checked",
                               hint="rebuild it with `expert-cli package`")
        return hash_files({name: folder / name for name in present}, progress)
    missing = sorted(set(listed) - set(present))
    if missing:
        raise PackageError(f"`{label}` lists `{missing[0]}` in its manifest but does not contain it", hint=TAMPER_HINT)
    unlisted = sorted(set(present) - set(listed))
    if unlisted:
        raise PackageError(f"`{label}` contains `{unlisted[0]}`, which its manifest does not list", hint=TAMPER_HINT)
    hashes = hash_files({name: folder / name for name in present}, progress)
    for name, digest in hashes.items():
        expected = str(listed[name]).lower()
        if digest != expected:
            raise PackageError(f"`{name}` in `{label}` does not match its SHA-256 in the manifest "
                               f"(expected `{expected[:16]}...`, got `{digest[:16]}...`)", hint=TAMPER_HINT)
    return hashes


def read_signature(data: dict[str, Any], hashes: dict[str, str], label: str) -> dict[str, Any]:
    """Verify the ``integrity`` block against ``hashes``; returns its facts, raises SignatureError when invalid."""
    integrity = data.get("integrity")
    if not isinstance(integrity, dict) or not integrity.get("signature"):
        return {"signed": False}
    pub = integrity.get("pubkey") or integrity.get("public_key")
    signed_at = integrity.get("created_at") or integrity.get("timestamp")
    publisher = integrity.get("publisher")
    facts = {"signed": True, "pubkey": None, "signed_at": signed_at if isinstance(signed_at, str) else None,
             "publisher": publisher if isinstance(publisher, str) else None,
             "legacy_signature": not isinstance(data.get("files"), dict)}
    if not isinstance(pub, str):
        raise SignatureError(f"`{label}` has a signature but no public key in `integrity`", hint=TAMPER_HINT)
    facts["pubkey"] = normalize_pubkey(pub)
    if facts["legacy_signature"]:
        return facts
    algorithm = str(integrity.get("signature_algorithm", ALGORITHM)).lower()
    if algorithm != ALGORITHM:
        raise SignatureError(f"`{label}` is signed with `{algorithm}`; only `{ALGORITHM}` is supported")
    _check_signature(pub, str(integrity["signature"]), signing_message(hashes, data), label)
    copy = integrity.get("files")
    if copy is not None and copy != signed_hashes(hashes, data):
        raise SignatureError(f"`integrity.files` of `{label}` differs from the signed file hashes",
                             hint=TAMPER_HINT)
    return facts


def _check_signature(pub: str, signature_text: str, message: bytes, label: str) -> None:
    from cryptography.exceptions import InvalidSignature

    text = signature_text.strip()
    text = text[4:] if text.lower().startswith("hex:") else text
    try:
        parse_pubkey(pub).verify(bytes.fromhex(text), message)
    except (InvalidSignature, ValueError):
        raise SignatureError(f"the signature of `{label}` does not match its contents (key `{fingerprint(pub)}`)",
                             hint=TAMPER_HINT) from None


def check_package_folder(folder: Path, label: str, progress: ProgressCallback | None = None,
                         allow_legacy: bool = True) -> IntegrityReport:
    """Verify an extracted package: manifest rules, file hashes, signature (trust is decided elsewhere)."""
    data = read_extracted_manifest(folder, label)
    has_map = isinstance(data.get("files"), dict)
    hashes = verify_files(folder, data, label, progress, require_map=not allow_legacy)
    facts = read_signature(data, hashes, label)
    return IntegrityReport(label, str(data.get("name")), str(data.get("version")), hashes, has_map,
                           facts["signed"], facts.get("pubkey"), facts.get("signed_at"), facts.get("publisher"),
                           facts.get("legacy_signature", False))


@dataclass
class OpenedPackage:
    """A package file checked and extracted: where its files are, what was verified, the sidecar's digest."""

    folder: Path
    report: IntegrityReport
    sidecar: str | None  # the digest the ``.sha256`` file confirmed; None when there is none


def open_verified(package: Path, dest: Path, progress: ProgressCallback | None = None,
                  digest: str | None = None) -> OpenedPackage:
    """The one path from a package file to a verified folder (install, verify, the SDK's cache): the sidecar,
    the vetted extraction into ``dest``, every member against the ``files`` map, file hashes, the signature.
    Trust (is the key one we accept?) is a separate decision: :mod:`expert_cli.packages.policy`."""
    sidecar = check_sidecar(package, digest)
    members = extract_archive(package, dest, progress=progress)
    report = check_package_folder(dest, package.name, progress)
    if report.has_files_map:
        check_members(members, report.files, package.name)
    return OpenedPackage(dest, report, sidecar)


def check_members(members: list[ArchiveMember], files: dict[str, str], label: str) -> None:
    """A package with a ``files`` map holds exactly those files: no folder entries, nothing else."""
    for member in members:
        if member.is_dir or (member.name != MANIFEST_FILE and member.name not in files):
            kind = "folder" if member.is_dir else "file"
            raise PackageError(f"`{label}` holds the {kind} `{member.name}`, which its `files` map "
                               "does not list",
                               hint=TAMPER_HINT)
