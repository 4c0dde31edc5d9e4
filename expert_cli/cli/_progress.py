"""The one rich progress bar on stderr, fed by the ``progress(task, completed, total)`` callbacks below.

A task named ``stage · details`` updates the bar's text while the stage lasts; a new stage (or task) starts a
new bar in its place, so there is never more than one. Warnings printed while a bar runs go above it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from expert_cli.cli._app import err_console, print_warning


def progress_wanted(*, quiet: bool = False, json_output: bool = False) -> bool:
    """Bars are off with ``-q``, ``--json``, a non-terminal stderr, or ``EXPERT_NO_PROGRESS=1``."""
    if quiet or json_output:
        return False
    if os.environ.get("EXPERT_NO_PROGRESS", "") not in ("", "0"):
        return False
    return sys.stderr.isatty()


class ProgressBar:
    """A progress callback driving one bar, and :meth:`warn` for messages that must not break it."""

    def __init__(self, bar: object) -> None:
        self._bar = bar
        self._stage: str | None = None
        self._task: object = None

    def __call__(self, task: str, completed: float, total: float | None) -> None:
        bar = self._bar
        stage = task.split(" · ")[0]
        if stage != self._stage:
            if self._task is not None:
                bar.remove_task(self._task)  # type: ignore[attr-defined]
            self._task, self._stage = bar.add_task(task, total=total), stage  # type: ignore[attr-defined]
        bar.update(self._task, description=task, completed=completed, total=total)  # type: ignore[attr-defined]

    def warn(self, message: str) -> None:
        self._bar.console.print(f"warning: {message}", markup=False, highlight=False)  # type: ignore[attr-defined]


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressBar | None]:
    """Yield a :class:`ProgressBar` (None when ``enabled`` is False: callers pass None on as "no progress")."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console(), transient=True) as bar:
        yield ProgressBar(bar)


def warner(bar: ProgressBar | None):
    """Where warnings go: above the bar when one runs, else as ``warning:`` lines on stderr."""
    return bar.warn if bar is not None else print_warning
