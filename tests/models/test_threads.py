"""How many intra-op threads a model gets on the CPU (training and serving share the rule)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from expert_cli.models.device import preferred_cpu_threads


@pytest.fixture(autouse=True)
def no_thread_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMP_NUM_THREADS", "EXPERT_X_THREADS"):
        monkeypatch.delenv(name, raising=False)


def test_a_small_model_on_the_cpu_gets_one_thread():
    assert preferred_cpu_threads(torch.nn.Linear(64, 64), False, "EXPERT_X_THREADS") == 1


def test_a_large_model_or_cuda_keeps_torchs_default():
    large = torch.nn.Linear(8000, 7000, device="meta")  # 56 M parameters, no memory
    assert preferred_cpu_threads(large, False, "EXPERT_X_THREADS") is None
    assert preferred_cpu_threads(torch.nn.Linear(64, 64), True, "EXPERT_X_THREADS") is None


def test_the_variable_wins_and_omp_num_threads_is_respected(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EXPERT_X_THREADS", "3")
    assert preferred_cpu_threads(torch.nn.Linear(8000, 7000, device="meta"), False, "EXPERT_X_THREADS") == 3
    monkeypatch.delenv("EXPERT_X_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert preferred_cpu_threads(torch.nn.Linear(64, 64), False, "EXPERT_X_THREADS") is None
