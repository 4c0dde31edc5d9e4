"""Expert specs as users type them: ``sql``, ``expert-sql``, ``sql@0.3.0`` all name ``expert-sql``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from expert_cli.core.errors import SpecError

PREFIX = "expert-"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # fullmatch: `$` would accept a trailing newline
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]*")


@dataclass(frozen=True)
class ExpertSpec:
    name: str
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


def canonical_name(name: str) -> str:
    """Add the ``expert-`` prefix when it is missing."""
    name = name.strip()
    return name if name.startswith(PREFIX) else PREFIX + name


def parse_expert_spec(text: str) -> ExpertSpec:
    """Parse ``name[@version]`` (whitespace around either part is ignored)."""
    raw = text.strip()
    name, _, version = raw.partition("@")
    name, version = name.strip(), version.strip()
    if not name or not _NAME.fullmatch(name):
        raise SpecError(f"`{text}` is not an expert name; use `name` or `name@version`, e.g. `sql@0.3.0`")
    if "@" in raw and (not version or not _VERSION.fullmatch(version)):
        raise SpecError(f"`{text}` has an empty or malformed version after `@`")
    return ExpertSpec(canonical_name(name), version or None)


def format_spec(name: str, version: str | None) -> str:
    return str(ExpertSpec(name, version))
