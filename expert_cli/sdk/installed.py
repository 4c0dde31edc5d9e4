"""Installed experts as the rest of the SDK asks for them: by spec, or the latest version of every one, and
only while they are usable under the trust policy (an expert whose key was revoked is refused when named and
left out, with a warning, when every installed expert is asked for)."""

from __future__ import annotations

from collections.abc import Sequence

from expert_cli.core.errors import NotInstalledError, SignatureError, UsageError
from expert_cli.packages.policy import check_usable
from expert_cli.packages.registry import InstalledExpert, read_registry

NOTHING_INSTALLED_HINT = "install one with `expert-cli install <file.expert | folder | git-url>`"


def split_expert_list(text: str) -> list[str]:
    """``"sql, neo4j@0.2.0"`` -> ``["sql", "neo4j@0.2.0"]`` (empty items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def installed_experts(specs: Sequence[str] | None = None, *, allow_untrusted: bool = False,
                      warnings: list[str] | None = None) -> list[InstalledExpert]:
    """The installed experts named by ``specs`` (``sql``, ``expert-sql@0.3.0``, or a name exactly as
    installed; each at most once), or the latest installed version of every expert when ``specs`` is None
    (possibly none). An untrusted expert (its key was revoked) raises when named; with ``specs`` None it is
    left out and a line is added to ``warnings``. ``allow_untrusted`` lets both through."""
    registry = read_registry()
    if specs is None:
        entries = [entry for entry in (registry.find(name) for name in registry.names()) if entry is not None]
        return [entry for entry in entries if _usable(entry, allow_untrusted, warnings)]
    if not specs:
        raise UsageError("`--experts` names no expert", hint="pass names such as `--experts sql,neo4j`, or `--all`")
    chosen: list[InstalledExpert] = []
    for text in specs:
        spec = registry.resolve(text)
        entry = registry.get(spec.name, spec.version)
        if any(other.name == entry.name for other in chosen):
            raise UsageError(f"expert `{entry.name}` is named more than once",
                             hint="name each expert once (one version of it)")
        check_usable(entry, allow_untrusted)
        chosen.append(entry)
    return chosen


def _usable(entry: InstalledExpert, allow_untrusted: bool, warnings: list[str] | None) -> bool:
    try:
        check_usable(entry, allow_untrusted)
    except SignatureError as exc:
        if warnings is not None:
            warnings.append(f"{exc.message}; left out ({exc.hint})")
        return False
    return True


def require_installed(specs: Sequence[str] | None, purpose: str, hint: str = NOTHING_INSTALLED_HINT, *,
                      allow_untrusted: bool = False, warnings: list[str] | None = None) -> list[InstalledExpert]:
    """:func:`installed_experts`, with an error naming ``purpose`` when nothing usable is installed."""
    entries = installed_experts(specs, allow_untrusted=allow_untrusted, warnings=warnings)
    if not entries:
        raise NotInstalledError(f"no experts are installed, so there is nothing to {purpose}", hint=hint)
    return entries
