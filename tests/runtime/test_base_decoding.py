"""The bare base decodes with the sampling settings its own generation_config.json states."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from expert_factory import make_expert

from expert_cli.sdk.manager import ExpertManager
from expert_cli.sdk.requests import Request


def base_with(tiny_model: Path, folder: Path, **generation: object) -> Path:
    """A copy of the tiny model whose generation_config.json holds its token ids and ``generation`` only."""
    shutil.copytree(tiny_model, folder)
    path = folder / "generation_config.json"
    ids = {k: v for k, v in json.loads(path.read_text()).items() if k.endswith("token_id")}
    path.write_text(json.dumps({**ids, **generation}))
    return folder


def params(base: Path, experts: dict[str, Path] | None = None, **overrides: object):
    with ExpertManager(base_model=base) as manager:
        for name, folder in (experts or {}).items():
            manager.load_expert(name, folder)
        return manager.prepare(list(experts) if experts else None, Request("hi", overrides=overrides)).row.params


def test_a_base_that_samples_by_its_config_answers_with_its_settings(tiny_model: Path, tmp_path: Path):
    base = base_with(tiny_model, tmp_path / "sampling", do_sample=True, temperature=0.6, top_p=0.95, top_k=20)
    chosen = params(base)
    assert (chosen.temperature, chosen.top_p, chosen.top_k) == (0.6, 0.95, 20)
    assert params(base, temperature=0).temperature == 0  # a caller's setting still wins


def test_do_sample_false_is_greedy_and_no_statement_keeps_the_defaults(tiny_model: Path, tmp_path: Path):
    assert params(base_with(tiny_model, tmp_path / "greedy", do_sample=False)).greedy
    plain = params(base_with(tiny_model, tmp_path / "plain"))
    assert (plain.temperature, plain.top_p, plain.top_k) == (0.7, 0.9, 50)  # the built-in defaults


def test_an_experts_manifest_decoding_wins_over_the_base(tiny_model: Path, tmp_path: Path):
    base = base_with(tiny_model, tmp_path / "sampling", do_sample=True, temperature=0.6, top_k=20)
    expert = make_expert(base, tmp_path / "expert", "expert-greedy", "lora", 1, decoding={"temperature": 0.0})
    assert params(base, {"expert-greedy": expert}).greedy
