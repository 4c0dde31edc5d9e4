"""Trainer callbacks: progress (steps, loss, tokens/s), Ctrl-C -> checkpoint and stop, AdaLoRA rank updates."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from transformers import TrainerCallback

from expert_cli.core.progress import ProgressCallback


class ProgressReporter(TrainerCallback):
    """Calls ``progress("training · loss 1.23 · 456 tok/s", step, max_steps)`` after every optimizer step."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.loss: float | None = None
        self.eval_loss: float | None = None
        self.started = time.perf_counter()
        self.last_step_at = self.started
        self.cpu_started = self.cpu_last_step = time.process_time()
        self.start_tokens = 0
        self.start_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = self.last_step_at = time.perf_counter()
        self.cpu_started = self.cpu_last_step = time.process_time()
        self.start_tokens = state.num_input_tokens_seen
        self.start_step = state.global_step
        self._report(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.loss = float(logs["loss"])
        if "eval_loss" in logs:
            self.eval_loss = float(logs["eval_loss"])

    def on_step_end(self, args, state, control, **kwargs):
        self.last_step_at = time.perf_counter()
        self.cpu_last_step = time.process_time()
        self._report(state)

    def tokens_per_second(self, state) -> float:
        """Training tokens per second of the training loop (evaluation and saving after the last step excluded)."""
        elapsed = self.last_step_at - self.started
        return (state.num_input_tokens_seen - self.start_tokens) / elapsed if elapsed > 0 else 0.0

    def cpu_seconds(self) -> float:
        """CPU time of this process in the training loop: a speed measure that other busy processes barely skew."""
        return self.cpu_last_step - self.cpu_started

    def _report(self, state) -> None:
        if self.progress is None:
            return
        parts = ["training"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.3f}")
        if self.eval_loss is not None:
            parts.append(f"eval {self.eval_loss:.3f}")
        if state.global_step > self.start_step:
            parts.append(f"{self.tokens_per_second(state):,.0f} tok/s")
        self.progress(" · ".join(parts), state.global_step, state.max_steps or None)


class InterruptHandler(TrainerCallback):
    """First Ctrl-C: finish the current step, save a checkpoint, stop. A second Ctrl-C aborts at once."""

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self.requested = False
        self.stopped_at: int | None = None
        self.notify = notify

    def request(self) -> None:
        self.requested = True
        if self.notify is not None:
            self.notify("interrupted: saving a checkpoint after this step (Ctrl-C again to abort at once)")

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control

    @contextlib.contextmanager
    def installed(self) -> Iterator[InterruptHandler]:
        """Route SIGINT here while training (main thread only; elsewhere Ctrl-C keeps its default)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def on_sigint(signum: int, frame: Any) -> None:
            if self.requested:
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self.request()

        signal.signal(signal.SIGINT, on_sigint)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


class AdaLoraAllocator(TrainerCallback):
    """AdaLoRA re-allocates ranks after each optimizer step, before gradients are cleared."""

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        if model is not None:
            base = model.base_model if hasattr(model, "base_model") else model
            if hasattr(base, "update_and_allocate"):
                base.update_and_allocate(state.global_step)


def quiet_libraries() -> None:
    """No library progress bars: the CLI draws the one bar, and stdout stays for data."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def quiet_trainer(trainer: Any) -> Any:
    """Drop the Trainer's own printer (it writes log dicts to stdout) and tqdm bar."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer
