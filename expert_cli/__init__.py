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

_SDK_NAMES = ("Expert", "ExpertManager", "Result")

__all__ = [
    "Expert",  # these three (_SDK_NAMES) load lazily: importing expert_cli stays cheap
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
    if name in _SDK_NAMES:
        from expert_cli.sdk import expert as sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'expert_cli' has no attribute {name!r}")
