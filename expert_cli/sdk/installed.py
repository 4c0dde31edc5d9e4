"""Installed experts as the rest of the SDK asks for them: by spec, or the latest version of every one."""

from __future__ import annotations

from collections.abc import Sequence

from expert_cli.core.errors import NotInstalledError, UsageError
from expert_cli.core.specs import parse_expert_spec
from expert_cli.packages.registry import InstalledExpert, read_registry

NOTHING_INSTALLED_HINT = "install one with `expert-cli install <file.expert | folder | git-url>`"


def split_expert_list(text: str) -> list[str]:
    """``"sql, neo4j@0.2.0"`` -> ``["sql", "neo4j@0.2.0"]`` (empty items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def installed_experts(specs: Sequence[str] | None = None) -> list[InstalledExpert]:
    """The installed experts named by ``specs`` (``sql``, ``expert-sql@0.3.0``; each at most once), or the
    latest installed version of every expert when ``specs`` is None (possibly none)."""
    registry = read_registry()
    if specs is None:
        return [entry for entry in (registry.find(name) for name in registry.names()) if entry is not None]
    if not specs:
        raise UsageError("`--experts` names no expert", hint="pass names such as `--experts sql,neo4j`, or `--all`")
    entries: list[InstalledExpert] = []
    for text in specs:
        spec = parse_expert_spec(text)
        entry = registry.get(spec.name, spec.version)
        if any(other.name == entry.name for other in entries):
            raise UsageError(f"expert `{entry.name}` is named more than once",
                             hint="name each expert once (one version of it)")
        entries.append(entry)
    return entries


def require_installed(specs: Sequence[str] | None, purpose: str, hint: str = NOTHING_INSTALLED_HINT,
                      ) -> list[InstalledExpert]:
    """:func:`installed_experts`, with an error naming ``purpose`` when nothing is installed."""
    entries = installed_experts(specs)
    if not entries:
        raise NotInstalledError(f"no experts are installed, so there is nothing to {purpose}", hint=hint)
    return entries
