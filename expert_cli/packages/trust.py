"""The trust store, ``$EXPERT_HOME/trusted-keys/<name>.pub``, and the names pinned to publisher keys.

The store is refused, as ssh refuses an ``authorized_keys`` others can write, when the folder or a key file
in it is writable by other users: anyone could drop a key there. Removing a key marks the installed experts
it signed ``untrusted`` in the registry (and adding it back marks them ``trusted``), so ``list`` shows what
``chat`` and the SDK will refuse (the policy itself is :mod:`expert_cli.packages.policy`).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core import paths
from expert_cli.core.errors import SignatureError, UsageError
from expert_cli.packages.signing import KEY_PREFIX, fingerprint, normalize_pubkey

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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
    """Every key in the trust store, by name; unreadable files are skipped, an open store is refused."""
    folder = paths.trusted_keys_dir()
    keys = []
    if folder.is_dir():
        check_store_mode(folder)
    for path in sorted(folder.glob("*.pub")) if folder.is_dir() else []:
        check_store_mode(path)
        try:
            keys.append(TrustedKey(path.stem, read_pubkey_source(path), path))
        except (UsageError, SignatureError):
            continue
    return keys


def check_store_mode(path: Path) -> None:
    """Refuse a trust-store folder or key file that other users can write (a dropped key would be trusted)."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o022:
        raise SignatureError(f"`{path}` is writable by other users (mode `{mode:04o}`), so any key in it "
                             "could have been dropped there; refusing to trust it",
                             hint=f"run `chmod go-w {path}` and check the keys with `expert-cli trust list`")


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

    mark_installed(pubkey, "trusted")
    atomic_write_text(target, pubkey + "\n")
    return TrustedKey(name, pubkey, target), True


def remove_trusted_key(ident: str) -> TrustedKey:
    """Forget a key named by its name, fingerprint or ``ed25519:<hex>`` text."""
    for key in list_trusted_keys():
        if ident in (key.name, key.fingerprint, key.pubkey):
            mark_installed(key.pubkey, "untrusted")
            key.path.unlink()
            return key
    names = ", ".join(f"`{k.name}`" for k in list_trusted_keys()) or "none"
    raise UsageError(f"no trusted key `{ident}` (trusted: {names})", hint="see `expert-cli trust list`")


def mark_installed(pubkey: str, state: str) -> list[str]:
    """Record ``state`` (``trusted``/``untrusted``) on every installed expert signed by ``pubkey``."""
    from expert_cli.packages.registry import read_registry, registry_lock, write_registry

    changed: list[str] = []
    if not paths.registry_path().is_file():  # nothing installed, nothing to mark
        return changed
    with registry_lock():
        registry = read_registry()
        for entry in registry.experts():
            integrity = entry.extra.get("integrity")
            if isinstance(integrity, dict) and integrity.get("pubkey") == pubkey and integrity.get("signed"):
                integrity["trust"] = state
                integrity.pop("trusted_by", None)
                changed.append(entry.spec)
        if changed:
            write_registry(registry)
    return changed


def pin_publisher(name: str, source: str | Path) -> tuple[str, str, str | None]:
    """Pin the expert name ``name`` to the key in ``source`` (a ``.pub`` file or ``ed25519:<hex>``);
    returns (the name as installed, the new key, the key it was pinned to before)."""
    from expert_cli.packages.registry import registry_transaction

    pubkey = read_pubkey_source(source)
    with registry_transaction() as registry:
        name = registry.find_installed_name(name) or name
        previous = registry.pinned_key(name)
        registry.publisher_keys[name] = pubkey
    return name, pubkey, previous
