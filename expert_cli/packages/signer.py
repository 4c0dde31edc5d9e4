"""``sign``: sign a package file in place, after checking its files against its manifest.

The message and keys are :mod:`expert_cli.packages.signing`'s; this module reads the package, records the
``integrity`` block, rewrites the archive (reproducibly) and its ``.sha256`` sidecar.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.hashing import write_sidecar
from expert_cli.core.progress import ProgressCallback
from expert_cli.manifest.model import MANIFEST_FILE
from expert_cli.packages.archive import ArchiveEntry, extract_archive
from expert_cli.packages.build import write_package_file
from expert_cli.packages.integrity import read_extracted_manifest, verify_files
from expert_cli.packages.registry import utc_now
from expert_cli.packages.signing import (
    ALGORITHM,
    fingerprint,
    load_private_key,
    pubkey_text,
    signed_hashes,
    signing_message,
)


@dataclass
class SignResult:
    path: Path
    sha256: str
    name: str
    version: str
    pubkey: str
    files: int
    signed_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "name": self.name, "version": self.version,
                "pubkey": self.pubkey, "fingerprint": fingerprint(self.pubkey), "files": self.files,
                "signed_at": self.signed_at}


def sign_package(package: Path, key_path: Path, publisher: str | None = None,
                 progress: ProgressCallback | None = None) -> SignResult:
    """Sign ``package`` in place with the key at ``key_path``; the files must match the manifest first."""
    key = load_private_key(key_path)
    package = Path(package).absolute()
    with tempfile.TemporaryDirectory(prefix="expert-sign-") as scratch:
        folder = Path(scratch) / "package"
        extract_archive(package, folder, progress=progress)
        data = read_extracted_manifest(folder, package.name)
        hashes = verify_files(folder, data, package.name, progress, require_map=False)
        data["files"] = dict(sorted(hashes.items()))
        pub, signed_at = pubkey_text(key.public_key()), utc_now()
        author = data.get("author") if isinstance(data.get("author"), str) else None
        data["integrity"] = {"publisher": publisher or author or "expert-cli", "signature_algorithm": ALGORITHM,
                             "pubkey": pub, "created_at": signed_at}
        signature = key.sign(signing_message(hashes, data))
        data["integrity"].update(signature=signature.hex(), files=signed_hashes(hashes, data))
        blob = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        entries = [ArchiveEntry(MANIFEST_FILE, blob)] + [ArchiveEntry(n, folder / n) for n in sorted(hashes)]
        digest = write_package_file(entries, package, progress)
    write_sidecar(package, digest)
    return SignResult(package, digest, str(data.get("name")), str(data.get("version")), pub, len(hashes), signed_at)
