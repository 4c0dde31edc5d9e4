"""The registry of installed experts: ``$EXPERT_HOME/expert-registry.json``.

The file keeps the original system's grouped shape (``experts -> versions``, newest first; ``base_models``)
and reads its legacy flat shape too. Reads need no lock; every change goes through
:func:`registry_transaction`, which holds a file lock, re-reads the file, and saves atomically (temp file,
fsync, ``os.replace``). A corrupt file is reported and never overwritten.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from expert_cli.core import paths
from expert_cli.core.errors import NotInstalledError, RegistryError, StorageError
from expert_cli.core.files import atomic_write_text, ensure_dir
from expert_cli.core.jsonlines import parse_json
from expert_cli.core.specs import ExpertSpec, parse_expert_spec
from expert_cli.core.versions import version_key

REGISTRY_VERSION = "1.0"
LOCK_TIMEOUT_S = 60.0
_DOCUMENT_KEYS = ("version", "last_updated", "install_dir", "models_dir", "base_models", "experts",
                  "publisher_keys")
_ENTRY_KEYS = ("version", "base_model", "path", "source", "installed_at", "adapters", "capabilities", "dependencies")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class InstalledExpert:
    name: str
    version: str
    base_model: str = ""
    path: str = ""
    source: str = ""
    installed_at: str = ""
    adapters: list[dict[str, Any]] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> InstalledExpert:
        known = {key: data[key] for key in _ENTRY_KEYS if data.get(key) is not None}  # null = absent
        extra = {key: value for key, value in data.items() if key not in _ENTRY_KEYS and key != "name"}
        known["version"] = str(known.get("version", ""))
        for key in ("base_model", "path", "source", "installed_at"):
            known[key] = "" if known.get(key) is None else str(known[key])
        return cls(name=name, extra=extra, **known)

    def version_dict(self) -> dict[str, Any]:
        """The entry as stored under ``experts[].versions[]``."""
        out = {key: getattr(self, key) for key in _ENTRY_KEYS}
        out.update(self.extra)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.version_dict()}

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


class Registry:
    """An in-memory registry. Mutate only inside :func:`registry_transaction`."""

    def __init__(self, path: Path, experts: dict[str, list[InstalledExpert]] | None = None,
                 base_models: list[dict[str, Any]] | None = None, extra: dict[str, Any] | None = None,
                 publisher_keys: dict[str, str] | None = None) -> None:
        self.path = path
        self._experts = experts or {}
        self.base_models = base_models or []
        self.extra = extra or {}
        self.publisher_keys = publisher_keys or {}  # name -> the key it is pinned to (trust on first use)

    def experts(self) -> list[InstalledExpert]:
        """Every installed version: names ascending, versions newest first."""
        return [entry for name in sorted(self._experts) for entry in self._experts[name]]

    def names(self) -> list[str]:
        return sorted(self._experts)

    def find(self, name: str, version: str | None = None) -> InstalledExpert | None:
        versions = self._experts.get(name, [])
        if version is None:
            return versions[0] if versions else None
        return next((entry for entry in versions if entry.version == version), None)

    def get(self, name: str, version: str | None = None) -> InstalledExpert:
        entry = self.find(name, version)
        if entry is not None:
            return entry
        label = f"{name}@{version}" if version else name
        installed = ", ".join(f"`{e.spec}`" for e in self.experts()) or "none"
        raise NotInstalledError(f"`{label}` is not installed (installed: {installed})",
                                hint="see `expert-cli list`, or install it with `expert-cli install <source>`")

    def add(self, entry: InstalledExpert) -> None:
        """Add a version, replacing the same name and version; keeps versions newest first."""
        versions = [e for e in self._experts.get(entry.name, []) if e.version != entry.version]
        versions.append(entry)
        versions.sort(key=lambda e: version_key(e.version), reverse=True)
        self._experts[entry.name] = versions

    def pinned_key(self, name: str) -> str | None:
        """The publisher key ``name`` is pinned to: the recorded pin, else (registries written before pins
        existed) the key that signed its newest signed installed version."""
        if name in self.publisher_keys:
            return self.publisher_keys[name]
        for entry in self._experts.get(name, []):
            integrity = entry.extra.get("integrity")
            signed = isinstance(integrity, dict) and integrity.get("signed")
            if signed and isinstance(integrity.get("pubkey"), str):
                return integrity["pubkey"]
        return None

    def find_installed_name(self, name: str) -> str | None:
        """The installed name a user typed: exactly as installed, else its ``expert-`` short/long form."""
        for candidate in (name, name[len("expert-"):] if name.startswith("expert-") else "expert-" + name):
            if candidate in self._experts:
                return candidate
        return None

    def resolve(self, text: str) -> ExpertSpec:
        """``name[@version]`` as typed -> the installed name (exactly as installed first, then the
        ``expert-`` short or long form) and the version; an uninstalled name keeps its canonical form."""
        spec = parse_expert_spec(text)
        typed = text.strip().partition("@")[0].strip()
        return ExpertSpec(self.find_installed_name(typed) or spec.name, spec.version)

    def remove(self, name: str, version: str | None = None) -> list[InstalledExpert]:
        """Remove one version (or all); returns what was removed; raises when nothing matches."""
        if version is not None:
            self.get(name, version)
        versions = self._experts.get(name, [])
        if not versions:
            self.get(name)
        removed = [e for e in versions if version is None or e.version == version]
        kept = [e for e in versions if e not in removed]
        if kept:
            self._experts[name] = kept
        else:
            self._experts.pop(name, None)
        return removed

    def to_dict(self) -> dict[str, Any]:
        document = {
            "version": REGISTRY_VERSION,
            "last_updated": utc_now(),
            "install_dir": str(paths.experts_dir()),
            "models_dir": str(paths.models_dir()),
            "base_models": self.base_models,
            "publisher_keys": dict(sorted(self.publisher_keys.items())),
            "experts": [
                {"name": name, "versions": [e.version_dict() for e in self._experts[name]]}
                for name in sorted(self._experts)
            ],
        }
        return {**self.extra, **document}

    @classmethod
    def from_dict(cls, path: Path, document: Any) -> Registry:
        if not isinstance(document, dict) or not isinstance(document.get("experts", []), list):
            raise _corrupt(path, "expected an object with an `experts` list")
        registry = cls(path, base_models=_list_of_objects(path, document, "base_models"),
                       extra={k: v for k, v in document.items() if k not in _DOCUMENT_KEYS},
                       publisher_keys=_publisher_keys(path, document.get("publisher_keys")))
        for record in document.get("experts", []):
            if not isinstance(record, dict) or not isinstance(record.get("name"), str):
                raise _corrupt(path, "an entry in `experts` has no `name`")
            versions = record.get("versions")
            if versions is None:  # legacy flat shape: one object per installed version
                versions = [record]
            if not isinstance(versions, list) or not all(isinstance(v, dict) for v in versions):
                raise _corrupt(path, f"`versions` of `{record['name']}` must be a list of objects")
            for version in versions:
                _check_entry_fields(path, record["name"], version)
                registry.add(InstalledExpert.from_dict(record["name"], version))
        return registry


def _list_of_objects(path: Path, document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = document.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _corrupt(path, f"`{key}` must be a list of objects")
    return list(value)


def _publisher_keys(path: Path, value: Any) -> dict[str, str]:
    if value is None:  # a registry from before names were pinned to keys
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise _corrupt(path, "`publisher_keys` must map expert names to `ed25519:<hex>` keys")
    return dict(value)


def _check_entry_fields(path: Path, name: str, data: dict[str, Any]) -> None:
    """A version entry whose known fields have the wrong type is corrupt (it would break `list` later)."""
    if not isinstance(data.get("version"), str) or not data["version"].strip():
        raise _corrupt(path, f"an entry of `{name}` has no `version` string")
    for key in ("base_model", "path", "source", "installed_at"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _corrupt(path, f"`{key}` of `{name}@{data['version']}` must be a string")
    for key, kind in (("adapters", dict), ("capabilities", str), ("dependencies", dict)):
        value = data.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, kind) for v in value)):
            what = "strings" if kind is str else "objects"
            raise _corrupt(path, f"`{key}` of `{name}@{data['version']}` must be a list of {what}")


def _corrupt(path: Path, detail: str) -> RegistryError:
    return RegistryError(
        f"the registry `{path}` is corrupt: {detail}",
        hint="the file was left unchanged; fix it by hand, or move it aside to start an empty registry",
    )


def read_registry(path: Path | None = None) -> Registry:
    """Load the registry (an empty one when the file does not exist). Raises RegistryError when corrupt."""
    path = path or paths.registry_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Registry(path)
    except OSError as exc:
        raise RegistryError(f"cannot read the registry `{path}`: {exc.strerror or exc}",
                            hint=f"check that `EXPERT_HOME` (`{paths.expert_home()}`) is a folder you can read") from exc
    except UnicodeDecodeError as exc:
        raise _corrupt(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        document = parse_json(text)
    except json.JSONDecodeError as exc:
        raise _corrupt(path, f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except ValueError as exc:
        raise _corrupt(path, f"not readable JSON: {exc}") from exc
    return Registry.from_dict(path, document)


def write_registry(registry: Registry) -> None:
    """Atomically replace the registry file (temp file in the same folder, fsync, rename, fsync folder)."""
    try:
        atomic_write_text(registry.path, json.dumps(registry.to_dict(), indent=2, ensure_ascii=False) + "\n")
    except StorageError as exc:
        raise RegistryError(f"cannot write the registry: {exc.message}",
                            hint="the previous registry was left unchanged; free space or fix permissions and retry") from exc


@contextlib.contextmanager
def registry_lock(timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """The lock every registry change (and every move into the install tree) holds."""
    from filelock import FileLock, Timeout

    lock_path = paths.registry_path().with_name(paths.REGISTRY_FILE + ".lock")
    lock = FileLock(str(lock_path), timeout=timeout)
    try:
        ensure_dir(lock_path.parent)
        lock.acquire()
    except Timeout as exc:
        raise RegistryError(f"the registry is locked by another expert-cli process (`{lock_path}`)",
                            hint="wait for it to finish and try again") from exc
    except (OSError, StorageError) as exc:
        reason = exc.message if isinstance(exc, StorageError) else (exc.strerror or str(exc))
        raise RegistryError(f"cannot lock the registry (`{lock_path}`): {reason}",
                            hint=f"check that `EXPERT_HOME` (`{paths.expert_home()}`) is a writable folder") from exc
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def registry_transaction(timeout: float = LOCK_TIMEOUT_S) -> Iterator[Registry]:
    """Lock, load, yield the registry for changes, and save it atomically when the block succeeds."""
    with registry_lock(timeout):
        registry = read_registry()
        yield registry
        write_registry(registry)
