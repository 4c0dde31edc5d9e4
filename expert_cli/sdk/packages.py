"""Moving experts between machines: package, keys and trust, sign, verify, install, uninstall, update, list.

The SDK face of :mod:`expert_cli.packages`: the CLI and scripts call these, never the modules below.

    from expert_cli.sdk.packages import build_package, install_expert, sign_package
    result = build_package(Path("experts/expert-sql"), Path("dist"), model="builtin:tiny-qwen3")
    sign_package(result.path, default_key_path())
    install_expert(str(result.path))
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from expert_cli.core import paths
from expert_cli.core.progress import ProgressCallback
from expert_cli.packages.build import PackageResult, build_package
from expert_cli.packages.index_install import index_record, update_from_index
from expert_cli.packages.install import UninstallResult, UpdateResult, install_expert, uninstall_expert
from expert_cli.packages.install import update_expert as update_from_source
from expert_cli.packages.policy import installed_trust as _installed_trust
from expert_cli.packages.registry import InstalledExpert, read_registry
from expert_cli.packages.signer import SignResult, sign_package
from expert_cli.packages.signing import DEFAULT_KEY_NAME, KeyPair, fingerprint, generate_keypair
from expert_cli.packages.staging import InstallOptions, InstallResult
from expert_cli.packages.trust import (
    TrustedKey,
    add_trusted_key,
    list_trusted_keys,
    pin_publisher,
    remove_trusted_key,
)
from expert_cli.packages.verify import VerifyResult, verify_target

__all__ = [
    "InstallOptions", "InstallResult", "InstalledExpert", "KeyPair", "PackageResult", "SignResult", "TrustedKey",
    "UninstallResult", "UpdateResult", "VerifyResult", "add_trusted_key", "build_package", "default_key_path",
    "generate_keypair", "install_expert", "install_options", "installed_trust", "installed_versions",
    "list_trusted_keys", "pin_publisher", "pinned_fingerprints", "remove_trusted_key", "sign_package", "uninstall_expert", "update_expert", "verify_target",
]


def default_key_path() -> Path:
    """The publisher key ``keygen`` creates and ``sign`` uses by default: ``$EXPERT_HOME/keys/publisher.pem``."""
    return paths.keys_dir() / DEFAULT_KEY_NAME


def install_options(*, force: bool = False, allow_unsigned: bool = False, trust_keys: Iterable[str | Path] = (),
                    model: str | None = None, allow_new_publisher: bool = False,
                    allow_downgrade: bool = False) -> InstallOptions:
    """What ``install`` and ``update`` may accept: ``trust_keys`` are public keys trusted for this call;
    ``allow_new_publisher`` accepts (and pins) another key for a name; ``allow_downgrade`` an older version."""
    return InstallOptions(force=force, allow_unsigned=allow_unsigned, trust_keys=tuple(str(k) for k in trust_keys),
                          model=model, allow_new_publisher=allow_new_publisher, allow_downgrade=allow_downgrade)


def installed_trust(entry: InstalledExpert) -> str:
    """``trusted``, ``untrusted`` (its key was revoked), ``unsigned`` or ``local``, evaluated now."""
    return _installed_trust(entry)


def pinned_fingerprints() -> dict[str, str]:
    """The fingerprint of each installed name's pinned publisher key (trust on first use)."""
    registry = read_registry()
    return {name: fingerprint(key) for name in registry.names() if (key := registry.pinned_key(name))}


def update_expert(spec_text: str, options: InstallOptions | None = None,
                  progress: ProgressCallback | None = None) -> UpdateResult:
    """Update an installed expert from where it came: its index (within the range it was installed with),
    or its Git source."""
    registry = read_registry()
    spec = registry.resolve(spec_text)
    entry = registry.get(spec.name, spec.version)
    if index_record(entry) is not None:
        return update_from_index(entry, options or InstallOptions(), progress)
    return update_from_source(spec_text, options, progress)


def installed_versions() -> list[InstalledExpert]:
    """Every installed version of every expert, newest first within a name."""
    return read_registry().experts()
