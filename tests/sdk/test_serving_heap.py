"""A server's startup heap is kept out of the garbage collector's full scans (they stalled every stream)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest


@pytest.mark.usefixtures("expert_home")
def test_serving_freezes_what_startup_left_and_gives_it_back_on_close(tiny_model: Path):
    pytest.importorskip("torch")
    from expert_cli.sdk.serving import ServeSettings, ServingState

    gc.unfreeze()
    state = ServingState(ServeSettings(base_model=str(tiny_model)))
    state.start()
    try:
        assert state.error is None and state.ready.is_set()
        frozen = gc.get_freeze_count()
        gc.collect()
        # A full collection now walks what came after startup, not the model, tokenizer and libraries.
        assert frozen > 50_000 and len(gc.get_objects(generation=2)) < frozen / 10
    finally:
        state.close(5)
    assert gc.get_freeze_count() == 0
