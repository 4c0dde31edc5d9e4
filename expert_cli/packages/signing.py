"""Ed25519 keys and the signed message (``keygen``; ``sign`` itself is :mod:`expert_cli.packages.signer`).

The signed message keeps the original's format, with its bugs fixed: sorted ``path:sha256hex`` lines joined
by ``\\n`` over every packaged file plus ``manifest.json``, whose hash is taken over the canonical JSON of the
whole manifest except ``integrity.signature`` (the signature itself) and ``integrity.files`` (a copy of these
lines, checked against them). So the publisher, ``created_at``, the key and every other field a user is shown
are covered. ``sign`` records ``{publisher, signature_algorithm, pubkey, created_at, signature, files}`` in
the manifest's ``integrity`` block, rewrites the archive (reproducibly) and its ``.sha256`` sidecar.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core import paths
from expert_cli.core.errors import PackageError, SignatureError, UsageError
from expert_cli.core.files import atomic_write_text, replacing
from expert_cli.core.hashing import canonical_json, sha256_bytes
from expert_cli.manifest.model import MANIFEST_FILE

ALGORITHM = "ed25519"
KEY_PREFIX = "ed25519:"
DEFAULT_KEY_NAME = "publisher.pem"


@dataclass
class KeyPair:
    private_key: Path
    public_key: Path
    pubkey: str

    def to_dict(self) -> dict[str, Any]:
        return {"private_key": str(self.private_key), "public_key": str(self.public_key), "pubkey": self.pubkey,
                "fingerprint": fingerprint(self.pubkey)}


def public_key_path(private_key: Path) -> Path:
    """``publisher.pem`` -> ``publisher.pub`` (the original's rule); a name without suffix gets ``.pub`` added."""
    if private_key.suffix in (".pem", ".key"):
        return private_key.with_suffix(".pub")
    return private_key.with_name(private_key.name + ".pub")


def pubkey_text(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + raw.hex()


def parse_pubkey(text: str) -> Any:
    """An ``Ed25519PublicKey`` from ``ed25519:<64 hex>`` (or bare hex); SignatureError when malformed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    value = text.strip()
    value = value[len(KEY_PREFIX):] if value.lower().startswith(KEY_PREFIX) else value
    try:
        raw = bytes.fromhex(value)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise SignatureError(f"`{text[:80]}` is not an Ed25519 public key (expected `ed25519:<64 hex digits>`)") from None


def normalize_pubkey(text: str) -> str:
    return pubkey_text(parse_pubkey(text))


def fingerprint(pubkey: str) -> str:
    """A short, stable id for a key: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    raw = bytes.fromhex(normalize_pubkey(pubkey)[len(KEY_PREFIX):])
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(path: Path | None = None, force: bool = False) -> KeyPair:
    """Write a new Ed25519 private key (PKCS#8 PEM, mode 0600) and its ``ed25519:<hex>`` public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = Path(path) if path is not None else paths.keys_dir() / DEFAULT_KEY_NAME
    if private_path.is_dir() or not private_path.name:
        raise UsageError(f"`{path}` is a folder; `-o` names the private key file to write",
                         hint=f"e.g. `-o {private_path / DEFAULT_KEY_NAME}`")
    public_path = public_key_path(private_path)
    if not force and (private_path.exists() or public_path.exists()):
        raise UsageError(f"`{private_path}` already exists; refusing to overwrite a key",
                         hint="pass `--force` to replace it, or `-o` to choose another path")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    text = pubkey_text(key.public_key())
    _write_private(private_path, pem)
    atomic_write_text(public_path, text + "\n")
    return KeyPair(private_path, public_path, text)


def _write_private(target: Path, data: bytes) -> None:
    with replacing(target, "write the key", mode=0o600) as tmp:
        tmp.write_bytes(data)


def load_private_key(path: Path) -> Any:
    """An ``Ed25519PrivateKey`` from a PEM file or the original's raw 32-byte key file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read the key `{path}`: {exc.strerror or exc}",
                             hint="create one with `expert-cli keygen`") from None
    if data.strip().lower().startswith(KEY_PREFIX.encode()):  # before the mode: a .pub is world-readable
        raise SignatureError(f"`{path}` is a public key; signing needs the private key",
                             hint="pass the `.pem` file that `expert-cli keygen` wrote next to it") from None
    check_private_mode(Path(path))
    if len(data) == 32:
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        reason = str(exc).split(". See ")[0].rstrip(".")  # cryptography appends a FAQ link
        raise SignatureError(f"`{path}` is not an unencrypted PEM private key: {reason}",
                             hint="create one with `expert-cli keygen`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"`{path}` is not an Ed25519 key", hint="create one with `expert-cli keygen`")
    return key


UNSIGNED_INTEGRITY_KEYS = ("signature", "files")


def signed_manifest(manifest_data: dict[str, Any]) -> dict[str, Any]:
    """The manifest as the signature covers it: all but ``integrity.signature`` and ``integrity.files``."""
    out = {key: value for key, value in manifest_data.items() if key != "integrity"}
    integrity = manifest_data.get("integrity")
    if isinstance(integrity, dict):
        out["integrity"] = {k: v for k, v in integrity.items() if k not in UNSIGNED_INTEGRITY_KEYS}
    elif integrity is not None:
        out["integrity"] = integrity
    return out


def check_private_mode(path: Path) -> None:
    """Refuse a private key that others may read or write (as ssh does): it may be known, or swapped."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SignatureError(f"the private key `{path}` is open to other users (mode `{mode:04o}`); "
                             "refusing to use it",
                             hint=f"run `chmod 600 {path}`; if others could read it, make a new key with "
                                  "`expert-cli keygen`")


def manifest_digest(manifest_data: dict[str, Any]) -> str:
    """SHA-256 of the canonical signed form of the manifest (see :func:`signed_manifest`)."""
    try:
        return sha256_bytes(canonical_json(signed_manifest(manifest_data)))
    except UnicodeEncodeError:
        raise PackageError("the manifest holds text that is not valid Unicode (a lone surrogate such as "
                           "`\\ud800`)", hint="the package is damaged or forged; rebuild it with "
                                              "`expert-cli package`") from None


def signed_hashes(file_hashes: dict[str, str], manifest_data: dict[str, Any]) -> dict[str, str]:
    return dict(sorted({**file_hashes, MANIFEST_FILE: manifest_digest(manifest_data)}.items()))


def signing_message(file_hashes: dict[str, str], manifest_data: dict[str, Any]) -> bytes:
    """Sorted ``path:hex`` lines joined by ``\\n`` (no trailing newline), the manifest included."""
    entries = signed_hashes(file_hashes, manifest_data)
    return "\n".join(f"{name}:{digest}" for name, digest in entries.items()).encode("utf-8")
