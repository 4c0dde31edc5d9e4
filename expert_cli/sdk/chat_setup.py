"""What a chat runs on: the chosen installed experts, their shared base model, and a router among them.

Pure Python at import (no torch): every check here runs before any model is loaded, so a wrong expert name,
experts on different base models, or a base model missing offline fails at once with an ``error:`` line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ExpertError, UsageError
from expert_cli.core.hashing import SHA256_HEX
from expert_cli.packages.registry import InstalledExpert
from expert_cli.sdk.installed import installed_experts, require_installed


@dataclass
class ChatSettings:
    """How to chat. ``experts``: specs as typed (``sql``, ``neo4j@0.2.0``); None with ``base_model`` alone
    chats with the bare base; None otherwise uses every installed expert (latest versions).

    ``base_model``: with no experts, the base model to chat with; with experts, where to read their (shared)
    base model from (a folder or id of that same model). ``overrides``: decoding settings that win over the
    manifests (``max_tokens``, ``temperature``, ``top_p``, ``top_k``; None values are ignored).
    ``json_schema``: every answer is a JSON document this JSON Schema accepts (it replaces the experts'
    grammars, and constrains the bare base too). ``progress``: False turns off the model loaders' progress bars.
    """

    experts: list[str] | None = None
    base_model: str | None = None
    device: str | None = None
    route: bool = True
    grammar: bool = True
    json_schema: dict[str, Any] | None = None
    show_reasoning: bool = False
    progress: bool = True
    allow_untrusted: bool = False  # use experts whose publisher key is no longer trusted
    overrides: dict[str, Any] = field(default_factory=dict)

    def given_overrides(self) -> dict[str, Any]:
        return {key: value for key, value in self.overrides.items() if value is not None}


@dataclass
class ChatSetup:
    """The experts (in the order given, or by name), the base model's name and folder, the router."""

    experts: list[InstalledExpert]
    base_model: str
    base_path: Path
    router: Any = None  # an expert_cli.routing.router.Router, or None (no experts, or routing off)
    warnings: list[str] = field(default_factory=list)


def prepare_chat(settings: ChatSettings) -> ChatSetup:
    """Check the settings and find everything the chat needs, without loading any model."""
    from expert_cli.sdk.extras import require_extra

    require_extra("chat")
    from expert_cli.models.resolve import resolve_base_model
    from expert_cli.runtime.sampling import resolve_decoding

    resolve_decoding(None, settings.given_overrides())  # bad values are usage errors before anything loads
    warnings: list[str] = []
    experts = choose_experts(settings.experts, settings.base_model, allow_untrusted=settings.allow_untrusted,
                             warnings=warnings)
    base_model = shared_base_model(experts, settings.base_model) if experts else settings.base_model
    setup = ChatSetup(experts, base_model, resolve_base_model(base_model), warnings=warnings)
    setup.warnings += base_mismatch_warnings(experts, setup.base_path)
    if experts and settings.route:
        setup.router, routing_warnings = build_router(experts)
        setup.warnings += routing_warnings
    return setup


def choose_experts(specs: Sequence[str] | None, base_model: str | None, *, allow_untrusted: bool = False,
                   warnings: list[str] | None = None) -> list[InstalledExpert]:
    """The installed experts named by ``specs``; all usable installed ones (latest versions) when ``specs`` is
    None, unless a bare ``base_model`` is asked for (untrusted ones: see :func:`installed_experts`)."""
    if specs is None and base_model is not None:
        return []
    if specs is None:
        return require_installed(None, "chat with",
                                 hint="install one with `expert-cli install <file.expert | folder | git-url>`, "
                                      "or chat with a bare base model: `--base-model Qwen/Qwen3-0.6B`",
                                 allow_untrusted=allow_untrusted, warnings=warnings)
    return installed_experts(specs, allow_untrusted=allow_untrusted)


def shared_base_model(experts: Sequence[InstalledExpert], given: str | None = None) -> str:
    """The one base model every expert was installed for (``given``, a ``--base-model``, wins when set);
    a clear error when they differ."""
    recorded = list(dict.fromkeys(entry.base_model for entry in experts if entry.base_model))
    if len(recorded) > 1:
        listed = ", ".join(f"`{entry.spec}` (`{entry.base_model}`)" for entry in experts)
        raise UsageError(f"the experts are trained on different base models and cannot share one chat: {listed}",
                         hint="choose experts of one base model with `--experts a,b`")
    if given:
        return given
    missing = next((entry for entry in experts if not entry.base_model), None)
    if missing is not None:
        raise UsageError(f"the registry records no base model for `{missing.spec}`",
                         hint="reinstall it with `expert-cli install <source> --force`, or pass `--base-model`")
    return recorded[0]


def base_mismatch_warnings(experts: Sequence[InstalledExpert], base_path: Path) -> list[str]:
    """One warning per expert packaged for other weights than the base at ``base_path``: its manifest's base
    ``sha256`` (the fingerprint ``package`` records) differs from this base's. Nothing to compare (a base
    without ``checksums.json``, a manifest without a fingerprint) is no warning."""
    from expert_cli.manifest.model import load_manifest
    from expert_cli.models.resolve import base_fingerprint

    here = base_fingerprint(base_path)
    if here is None:
        return []
    warnings = []
    for entry in experts:
        try:
            specs = load_manifest(Path(entry.path)).base_models
        except ExpertError:
            continue  # an unreadable manifest fails loudly when the expert loads
        recorded = next((spec.sha256 for spec in specs if spec.name == entry.base_model), None)
        if recorded and SHA256_HEX.match(recorded) and recorded != here:
            warnings.append(f"`{entry.spec}` was packaged for other weights of `{entry.base_model}` "
                            f"(fingerprint {recorded[:12]}..., this machine's is {here[:12]}...): its answers may "
                            "be worse than its author measured; `expert-cli model list` shows what is here")
    return warnings


def build_router(experts: Sequence[InstalledExpert]) -> tuple[Any, list[str]]:
    """A router among ``experts``, from their manifests and ``routing_exemplars.json``; and read warnings."""
    from expert_cli.sdk.routing import installed_router

    return installed_router(experts)
