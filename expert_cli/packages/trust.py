"""The trust store, ``$EXPERT_HOME/trusted-keys/<name>.pub``, and the install-time trust decision."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core import paths
from expert_cli.core.errors import SignatureError, UsageError
from expert_cli.packages.integrity import IntegrityReport
from expert_cli.packages.signing import KEY_PREFIX, fingerprint, normalize_pubkey

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TRUSTED = "trusted"
UNSIGNED = "unsigned"


@dataclass
class TrustedKey:
    name: str
    pubkey: str
    path: Path

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.pubkey)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fingerprint": self.fingerprint, "pubkey": self.pubkey, "path": str(self.path)}


def read_pubkey_source(source: str | Path) -> str:
    """A public key from a ``.pub`` file, or given inline as ``ed25519:<hex>``."""
    text = str(source)
    if text.lower().startswith(KEY_PREFIX) and not Path(text).exists():
        return normalize_pubkey(text)
    hint = "pass the `.pub` file that `expert-cli keygen` wrote, or the text `ed25519:<hex>`"
    try:
        content = Path(source).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read the public key `{source}`: {exc.strerror or exc}", hint=hint) from None
    except UnicodeDecodeError:
        content = ""
    if "PRIVATE KEY" in content:
        raise SignatureError(f"`{source}` holds a private key, not a public key; never share it", hint=hint)
    try:
        return normalize_pubkey(content.splitlines()[0] if content else "")
    except SignatureError:
        raise SignatureError(f"`{source}` does not hold an Ed25519 public key (`ed25519:<64 hex digits>`)",
                             hint=hint) from None


def list_trusted_keys() -> list[TrustedKey]:
    """Every key in the trust store, by name; unreadable files are skipped."""
    folder = paths.trusted_keys_dir()
    keys = []
    for path in sorted(folder.glob("*.pub")) if folder.is_dir() else []:
        try:
            keys.append(TrustedKey(path.stem, read_pubkey_source(path), path))
        except (UsageError, SignatureError):
            continue
    return keys


def add_trusted_key(source: str | Path, name: str | None = None) -> tuple[TrustedKey, bool]:
    """Trust a public key under ``name`` (default: the file's stem); returns (key, newly added)."""
    pubkey = read_pubkey_source(source)
    for key in list_trusted_keys():
        if key.pubkey == pubkey:
            return key, False
    name = name or (Path(str(source)).stem if not str(source).lower().startswith(KEY_PREFIX) else fingerprint(pubkey))
    if not _NAME.match(name):
        raise UsageError(f"`{name}` is not a valid key name (letters, digits, `.`, `_`, `-`)", hint="pass `--name`")
    target = paths.trusted_keys_dir() / f"{name}.pub"
    if target.exists():
        raise UsageError(f"a different key is already trusted as `{name}`", hint="pass `--name` to choose another name")
    from expert_cli.core.files import atomic_write_text

    atomic_write_text(target, pubkey + "\n")
    return TrustedKey(name, pubkey, target), True


def remove_trusted_key(ident: str) -> TrustedKey:
    """Forget a key named by its name, fingerprint or ``ed25519:<hex>`` text."""
    for key in list_trusted_keys():
        if ident in (key.name, key.fingerprint, key.pubkey):
            key.path.unlink()
            return key
    names = ", ".join(f"`{k.name}`" for k in list_trusted_keys()) or "none"
    raise UsageError(f"no trusted key `{ident}` (trusted: {names})", hint="see `expert-cli trust list`")


def decide_trust(report: IntegrityReport, allow_unsigned: bool = False,
                 extra_keys: Iterable[str | Path] = ()) -> str:
    """``trusted`` or ``unsigned`` (when allowed); otherwise a SignatureError naming the flag that would allow it."""
    label = report.label
    if not report.verified:
        if allow_unsigned:
            return UNSIGNED
        what = "carries a legacy signature that cannot be verified" if report.legacy_signature else "is not signed"
        raise SignatureError(f"`{label}` {what}; unsigned packages are not installed by default",
                             hint="ask its publisher for a signed package, or pass `--allow-unsigned` to accept it")
    trusted = {key.pubkey for key in list_trusted_keys()} | {read_pubkey_source(k) for k in extra_keys}
    if report.pubkey in trusted:
        return TRUSTED
    raise SignatureError(
        f"`{label}` is signed by key `{report.fingerprint}` (`{report.pubkey}`), which is not in your trusted keys",
        hint="if you trust its publisher, run `expert-cli trust add <publisher>.pub` or pass `--trust-key <publisher>.pub`",
    )
