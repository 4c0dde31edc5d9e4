"""Where training runs: the runtime's device resolver (models/device.py) with training's own rules."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from expert_cli.core.errors import TrainingError, UsageError
from expert_cli.models.device import Placement
from expert_cli.training.model import choose_device


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> list:
    """Two bf16-capable GPUs, faked; returns the indices set_device was called with."""
    chosen: list = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: chosen.append(torch.device(device).index))
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return chosen


def test_without_a_gpu_training_runs_on_the_cpu_in_fp32_and_never_on_mps(no_gpu, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert choose_device("auto") == choose_device(None) == choose_device("CPU") == Placement("cpu", "float32")
    with pytest.raises(UsageError, match="unknown device `mps`") as refused:
        choose_device("mps")
    assert refused.value.hint == "use `auto`, `cpu`, `cuda` or `cuda:N`"
    with pytest.raises(UsageError, match="unknown device `TPU`"):
        choose_device("TPU")
    with pytest.raises(TrainingError, match="`cuda` was requested but CUDA is not available"):
        choose_device("cuda")


def test_a_gpu_becomes_the_current_device_in_bf16(two_gpus):
    assert choose_device("auto") == Placement("cuda:0", "bfloat16") and choose_device("auto").on_cuda
    assert choose_device("cuda:1") == Placement("cuda:1", "bfloat16")
    assert two_gpus == [0, 0, 1]
    with pytest.raises(TrainingError, match="`cuda:2` does not exist"):
        choose_device("cuda:2")


def test_a_data_parallel_process_trains_on_its_local_rank_gpu(two_gpus, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert choose_device("cuda").device == choose_device("auto").device == "cuda:1"
    assert choose_device("cuda:0").device == "cuda:0"  # an explicit index wins
    assert two_gpus == [1, 1, 0]


def test_training_imports_print_no_library_chatter_offline():
    """bitsandbytes, imported by peft, asks the hub for a CPU kernel on AVX512-BF16 machines (as this project's
    CI has) and logs two warnings offline; the training package silences them. Elsewhere this passes trivially."""
    code = "import expert_cli.training.callbacks, peft, bitsandbytes"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert "kernels-community" not in done.stderr and "Failed to load" not in done.stderr
