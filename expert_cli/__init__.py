"""expert-cli: runtime-composable PEFT experts on one shared base model.

The SDK surface is imported lazily, so ``import expert_cli`` stays cheap and torch-free:

    from expert_cli import Expert, ExpertManager
    expert = Expert.load("sql")
    print(expert.generate("List all users older than 30", schema="CREATE TABLE users (...)").text)
"""

from __future__ import annotations

from typing import Any

from expert_cli.core.errors import (
    ExpertError,
    GrammarError,
    InferenceError,
    ManifestError,
    OutOfMemoryError,
    PackageError,
    SignatureError,
)

__version__ = "0.1.0"

_SDK_MODULES = {"Expert": "expert_cli.sdk.expert", "ExpertManager": "expert_cli.sdk.manager",
                "Result": "expert_cli.sdk.expert"}

__all__ = [
    "Expert",  # these three (_SDK_MODULES) load lazily: importing expert_cli stays cheap
    "ExpertError",
    "ExpertManager",
    "GrammarError",
    "InferenceError",
    "ManifestError",
    "OutOfMemoryError",
    "PackageError",
    "Result",
    "SignatureError",
]


def __getattr__(name: str) -> Any:
    if name in _SDK_MODULES:
        import importlib

        return getattr(importlib.import_module(_SDK_MODULES[name]), name)
    raise AttributeError(f"module 'expert_cli' has no attribute {name!r}")
