"""Choosing what to install from the indexes: ``NAME``, ``NAME@1.2.0``, ``NAME@^1.2``, and the experts it
``requires``.

The newest version in the range wins, among packages that are not yanked (a yanked one is taken only when
asked for by its exact version) and that are built for the base model asked for. A name held by several
indexes is taken from the default index, or from the one ``--index`` names; otherwise it is ambiguous (one
index could shadow another's expert).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from expert_cli.core.errors import InstallError, UsageError
from expert_cli.core.specs import canonical_name
from expert_cli.core.versions import parse_requirement, satisfies, version_key
from expert_cli.manifest.model import model_slug
from expert_cli.packages.index import IndexEntry
from expert_cli.packages.index_sources import IndexSource, get_source, load_entries, read_sources
from expert_cli.packages.registry import Registry

_EXACT = re.compile(r"^(?:==?)?\s*v?([0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?)$")
SEARCH_HINT = "find experts with `expert-cli search <words>`, or add an index with `expert-cli index add NAME URL`"


@dataclass
class Resolved:
    """One package picked from an index, and the range it was asked for with."""

    index: str
    entry: IndexEntry
    requested: str

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "requested": self.requested, **self.entry.to_dict()}


def looks_like_index_spec(text: str) -> bool:
    """``sql``, ``expert-sql@1.2.0``, ``sql@^1.2``: a name (and range), not a path or a URL."""
    raw = text.strip()
    if not raw or any(ch in raw for ch in "/\\:") or raw.endswith((".expert", ".tgz", ".tar.gz")):
        return False
    try:
        parse_requirement(raw)
    except UsageError:
        return False
    return True


def exact_version(spec_range: str) -> str | None:
    match = _EXACT.match(spec_range.strip())
    return match.group(1) if match else None


def sources_for(index: str | None) -> list[IndexSource]:
    if index is not None:
        return [get_source(index)]
    sources = read_sources()
    if not sources:
        raise UsageError("no index is added, so experts cannot be found by name",
                         hint="add one with `expert-cli index add NAME URL` (a Git URL or a local path)")
    return sources


def entries_named(typed: str, index: str | None = None) -> tuple[str, list[IndexEntry]]:
    """The index holding ``typed`` (exactly, else its ``expert-`` form) and its entries for that name."""
    holders: list[tuple[IndexSource, str, list[IndexEntry]]] = []
    for source in sources_for(index):
        entries = load_entries(source)
        for name in dict.fromkeys((typed, canonical_name(typed))):
            found = [e for e in entries if e.name == name]
            if found:
                holders.append((source, name, found))
                break
    if not holders:
        raise InstallError(f"no expert `{typed}` in the {_indexes(index)}", hint=SEARCH_HINT)
    if len(holders) > 1:
        defaults = [h for h in holders if h[0].default]
        if not defaults:
            names = ", ".join(f"`{h[0].name}`" for h in holders)
            raise UsageError(f"`{typed}` is in several indexes ({names}) and none is the default",
                             hint="pick one with `--index NAME`, or set a default with `expert-cli index default NAME`")
        holders = defaults
    return holders[0][0].name, holders[0][2]


def bases_on_hand() -> tuple[str, ...]:
    """The base models this machine already uses: installed experts' bases and the built-in models."""
    from expert_cli.models.resolve import builtin_models
    from expert_cli.packages.registry import read_registry

    bases = [e.base_model for e in read_registry().experts() if e.base_model]
    return tuple(dict.fromkeys(bases + list(builtin_models())))


def fits(entry: IndexEntry, model: str | None) -> bool:
    return model is None or any(model_slug(name) == model_slug(model) for name in entry.base_model_names)


def resolve_spec(text: str, *, index: str | None = None, model: str | None = None,
                 preferred_models: tuple[str, ...] = ()) -> Resolved:
    """The package ``text`` names (see the module doc); errors say why nothing matched. Without ``model``,
    packages for ``preferred_models`` (base models on hand) win when there are any."""
    requirement = parse_requirement(text)
    typed = text.strip().partition("@")[0].strip()
    index_name, entries = entries_named(typed, index)
    entry = pick(entries, requirement.range, model, preferred_models)
    exact = exact_version(requirement.range)  # kept for `update` as cargo does: `1.2.0` means `^1.2.0`
    return Resolved(index_name, entry, f"^{exact}" if exact else requirement.range)


def pick(entries: list[IndexEntry], spec_range: str, model: str | None,
         preferred_models: tuple[str, ...] = ()) -> IndexEntry:
    name, exact = entries[0].name, exact_version(spec_range)
    in_range = [e for e in entries if satisfies(e.version, spec_range)]
    if not in_range:
        versions = ", ".join(sorted({e.version for e in entries}, key=version_key, reverse=True))
        raise InstallError(f"no version of `{name}` matches `{spec_range}` (published: {versions})",
                           hint=f"see every version with `expert-cli info {name}`")
    usable = [e for e in in_range if not e.yanked or (exact is not None and e.version == exact)]
    if not usable:
        raise InstallError(f"every version of `{name}` matching `{spec_range}` is yanked",
                           hint=f"ask for one by its exact version (`{name}@{in_range[0].version}`) if you must")
    built = [e for e in usable if fits(e, model)]
    if not built:
        bases = ", ".join(sorted({b for e in usable for b in e.base_model_names}))
        raise InstallError(f"`{name}@{spec_range}` is published for {bases}, not for `{model}`",
                           hint="install it for one of those base models with `--model`, or ask its publisher")
    preferred = {model_slug(m) for m in preferred_models}
    on_hand = [e for e in built if any(model_slug(b) in preferred for b in e.base_model_names)]
    return max(on_hand if model is None and on_hand else built, key=lambda e: version_key(e.version))


def plan_requirements(root: Resolved, registry: Registry, index: str | None = None) -> list[Resolved]:
    """What must be installed before ``root``: its ``requires`` not satisfied by an installed version,
    resolved through the indexes for the same base model, dependencies first."""
    model = root.entry.base_model_names[0]
    order: list[Resolved] = []
    _visit(root, registry, index, model, order, [root.entry.name])
    return order


def _visit(node: Resolved, registry: Registry, index: str | None, model: str, order: list[Resolved],
           path: list[str]) -> None:
    for text in node.entry.requires:
        requirement = parse_requirement(text)
        if requirement.name in path:
            raise InstallError(f"`{' -> '.join(path + [requirement.name])}` is a cycle of requirements",
                               hint="ask the publisher to break the cycle")
        installed = [e.version for e in registry.experts() if e.name == requirement.name]
        planned = [r.entry.version for r in order if r.entry.name == requirement.name]
        if any(satisfies(v, requirement.range) for v in installed + planned):
            continue
        index_name, entries = entries_named(requirement.name, index or node.index)
        child = Resolved(index_name, pick(entries, requirement.range, model), requirement.range)
        _visit(child, registry, index, model, order, path + [requirement.name])
        order.append(child)


def _indexes(index: str | None) -> str:
    return f"index `{index}`" if index else "added indexes"
