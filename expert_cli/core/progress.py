"""A tiny progress protocol so core code can report long work without knowing about terminals.

Core functions take ``progress: ProgressCallback | None`` and call it as ``progress(task, completed, total)``;
``total`` is None when unknown. The CLI turns these calls into one rich progress bar on stderr.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, float, float | None], None]


def report(progress: ProgressCallback | None, task: str, completed: float, total: float | None) -> None:
    """Call ``progress`` when one was given; a no-op otherwise."""
    if progress is not None:
        progress(task, completed, total)
