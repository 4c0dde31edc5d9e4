"""Where expert-cli keeps its files. Every function reads the environment when called, never at import."""

from __future__ import annotations

import os
from pathlib import Path

REGISTRY_FILE = "expert-registry.json"


def expert_home() -> Path:
    """``$EXPERT_HOME``, or ``~/.expert`` when unset or empty."""
    value = os.environ.get("EXPERT_HOME", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".expert"


def registry_path() -> Path:
    return expert_home() / REGISTRY_FILE


def experts_dir() -> Path:
    """Installed experts live in ``experts/<name>/<version>/``."""
    return expert_home() / "experts"


def install_dir(name: str, version: str) -> Path:
    return experts_dir() / name / version


def keys_dir() -> Path:
    """Private signing keys (mode 0600) and their ``.pub`` files."""
    return expert_home() / "keys"


def trusted_keys_dir() -> Path:
    """Public keys the user trusts for installs."""
    return expert_home() / "trusted-keys"


def cache_dir() -> Path:
    """Extracted packages, keyed by the SHA-256 of the ``.expert`` file."""
    return expert_home() / "cache"


def models_dir() -> Path:
    """Recorded in the registry for compatibility; base weights stay in the Hugging Face cache."""
    return expert_home() / "models"


def tmp_dir() -> Path:
    """Scratch space on the same filesystem as the install tree, so final moves are atomic renames."""
    return expert_home() / "tmp"
