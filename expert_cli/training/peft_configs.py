"""PEFT configs built exactly from the manifest: LoRA, DoRA, IA³, LoKr, AdaLoRA and prompt tuning.

The adapter entry of the selected base model (``base_models[].adapters[]``) is authoritative; the matching
``training.config`` keys (``rank``, ``alpha``, ``dropout``, ``target_modules``, ``feedforward_modules``) fill
gaps and are reported when they disagree. Unlike the original trainer, the manifest's ``dropout`` and IA³
``feedforward_modules`` are honoured, IA³ needs no rank, and LoKr gets its ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import TrainingError
from expert_cli.manifest.adapter_types import is_ranked
from expert_cli.manifest.model import AdapterSpec, SoftPromptSpec

DEFAULT_DROPOUT = 0.05
PROMPT_INIT = {"text": "TEXT", "random": "RANDOM", "vocab_sample": "SAMPLE_VOCAB"}
SOFT_PROMPT_SUFFIXES = (".pt", ".bin", ".safetensors")  # the trained embeddings tensor


@dataclass(frozen=True)
class AdapterPlan:
    """The adapter to train, after merging the adapter entry with ``training.config``."""

    type: str
    target_modules: list[str]
    feedforward_modules: list[str] = field(default_factory=list)
    r: int | None = None
    alpha: float | None = None
    dropout: float = DEFAULT_DROPOUT
    use_dora: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "target_modules": self.target_modules, "r": self.r, "alpha": self.alpha,
                "dropout": self.dropout, "use_dora": self.use_dora,
                "feedforward_modules": self.feedforward_modules}


def plan_adapter(spec: AdapterSpec, config: dict[str, Any], notes: list[str] | None = None) -> AdapterPlan:
    """Merge the manifest's adapter entry with ``training.config`` (the entry wins; conflicts are noted)."""
    notes = notes if notes is not None else []
    kind = spec.type or str(config.get("adapter_type", "lora")).lower()
    pairs = {"r": (spec.r, config.get("rank")), "alpha": (spec.alpha, config.get("alpha")),
             "dropout": (spec.dropout, config.get("dropout")),
             "target_modules": (spec.target_modules or None, config.get("target_modules")),
             "feedforward_modules": (spec.feedforward_modules or None, config.get("feedforward_modules"))}
    chosen: dict[str, Any] = {}
    for key, (entry_value, config_value) in pairs.items():
        if entry_value is not None and config_value is not None and entry_value != config_value:
            notes.append(f"adapter `{key}` is `{entry_value}` in `base_models[].adapters[]` but `{config_value}` "
                         f"in `training.config`; using `{entry_value}`")
        chosen[key] = entry_value if entry_value is not None else config_value
    if not chosen["target_modules"]:
        raise TrainingError(f"the `{kind}` adapter lists no `target_modules`")
    if is_ranked(kind) and (not chosen["r"] or not chosen["alpha"]):
        raise TrainingError(f"a `{kind}` adapter needs `r` and `alpha` greater than 0")
    return AdapterPlan(
        type=kind,
        target_modules=list(chosen["target_modules"]),
        feedforward_modules=list(chosen["feedforward_modules"] or []),
        r=int(chosen["r"]) if chosen["r"] is not None else None,
        alpha=chosen["alpha"],
        dropout=float(chosen["dropout"]) if chosen["dropout"] is not None else DEFAULT_DROPOUT,
        use_dora=kind == "dora" or spec.use_dora,
    )


def build_peft_config(plan: AdapterPlan, *, total_steps: int | None = None):
    """The PEFT config for ``plan`` (task type causal LM)."""
    import peft

    if plan.type not in BUILDERS:
        raise TrainingError(f"adapter type `{plan.type}` is not supported; use one of {', '.join(BUILDERS)}")
    try:
        return BUILDERS[plan.type](peft, plan, total_steps)
    except ValueError as exc:
        raise TrainingError(f"invalid `{plan.type}` adapter settings: {exc}") from exc


def _lora(peft, plan: AdapterPlan, total_steps: int | None):
    return peft.LoraConfig(task_type=peft.TaskType.CAUSAL_LM, r=plan.r, lora_alpha=plan.alpha,
                           lora_dropout=plan.dropout, target_modules=plan.target_modules, bias="none",
                           use_dora=plan.use_dora)


def _ia3(peft, plan: AdapterPlan, total_steps: int | None):
    extra = sorted(set(plan.feedforward_modules) - set(plan.target_modules))
    if extra:
        raise TrainingError(f"IA³ `feedforward_modules` {extra} must also be in `target_modules`")
    return peft.IA3Config(task_type=peft.TaskType.CAUSAL_LM, target_modules=plan.target_modules,
                          feedforward_modules=plan.feedforward_modules)


def _lokr(peft, plan: AdapterPlan, total_steps: int | None):
    return peft.LoKrConfig(task_type=peft.TaskType.CAUSAL_LM, r=plan.r, alpha=plan.alpha,
                           rank_dropout=plan.dropout, target_modules=plan.target_modules)


def _adalora(peft, plan: AdapterPlan, total_steps: int | None):
    if not total_steps:
        raise TrainingError("an `adalora` adapter needs a known number of steps (`max_steps`, or a sized dataset)")
    return peft.AdaLoraConfig(task_type=peft.TaskType.CAUSAL_LM, init_r=plan.r, target_r=max(1, plan.r // 2),
                              lora_alpha=plan.alpha, lora_dropout=plan.dropout, target_modules=plan.target_modules,
                              total_step=total_steps)


# The PEFT config of each adapter type of the manifest (expert_cli.manifest.adapter_types), one line per type.
BUILDERS = {"lora": _lora, "dora": _lora, "ia3": _ia3, "lokr": _lokr, "adalora": _adalora}


def check_soft_prompt(soft_prompt: SoftPromptSpec) -> str:
    """The entry's init method, after checking every setting (before any training starts); TrainingError."""
    method = (soft_prompt.init_method or ("text" if soft_prompt.init_text else "random")).lower()
    if method not in PROMPT_INIT:
        raise TrainingError(f"soft prompt `{soft_prompt.name}`: `init_method` `{method}` is not one of "
                            f"{', '.join(PROMPT_INIT)}")
    if method == "text" and not soft_prompt.init_text:
        raise TrainingError(f"soft prompt `{soft_prompt.name}` uses `init_method` text but has no `init_text`")
    if not 1 <= soft_prompt.tokens <= 512:
        raise TrainingError(f"soft prompt `{soft_prompt.name}` needs `tokens` from 1 to 512")
    if Path(soft_prompt.path).suffix not in SOFT_PROMPT_SUFFIXES:
        raise TrainingError(f"soft prompt `{soft_prompt.name}`: `path` `{soft_prompt.path}` must name a "
                            f"{', '.join(SOFT_PROMPT_SUFFIXES)} file", hint="e.g. `soft_prompts/style.pt`")
    return method


def build_prompt_tuning_config(soft_prompt: SoftPromptSpec, tokenizer_path: str):
    """Prompt tuning for one ``soft_prompts[]`` entry: ``tokens`` virtual tokens, initialised as the manifest says."""
    import peft

    method = check_soft_prompt(soft_prompt)
    kwargs: dict[str, Any] = {}
    if method == "text":
        kwargs = {"prompt_tuning_init_text": soft_prompt.init_text, "tokenizer_name_or_path": tokenizer_path}
    return peft.PromptTuningConfig(task_type=peft.TaskType.CAUSAL_LM, num_virtual_tokens=soft_prompt.tokens,
                                   prompt_tuning_init=getattr(peft.PromptTuningInit, PROMPT_INIT[method]), **kwargs)
