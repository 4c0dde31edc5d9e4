"""One rich progress bar on stderr, fed by core's ``progress(task, completed, total)`` callbacks."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from expert_cli.core.progress import ProgressCallback


def progress_wanted(*, quiet: bool = False, json_output: bool = False) -> bool:
    """Bars are off with ``-q``, ``--json``, a non-terminal stderr, or ``EXPERT_NO_PROGRESS=1``."""
    if quiet or json_output:
        return False
    if os.environ.get("EXPERT_NO_PROGRESS", "") not in ("", "0"):
        return False
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressCallback | None]:
    """Yield a callback that drives a single bar (a new task name replaces the previous one), or None."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from expert_cli.cli._app import err_console

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console(), transient=True) as bar:
        state: dict[str, object] = {"name": None, "id": None}

        def callback(task: str, completed: float, total: float | None) -> None:
            if state["name"] != task:
                if state["id"] is not None:
                    bar.remove_task(state["id"])  # type: ignore[arg-type]
                state["id"] = bar.add_task(task, total=total)
                state["name"] = task
            bar.update(state["id"], completed=completed, total=total)  # type: ignore[arg-type]

        yield callback
