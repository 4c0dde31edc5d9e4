"""Writing files safely: folders created with a clear error, files replaced atomically (temp file + rename).

Every write that others read (the registry, packages and their ``.sha256``, keys, trusted keys) goes through
:func:`replacing`: the new content is written to a temp file beside the target and renamed over it only when
complete, so a crash leaves the old file or the new one, never half of one. A failure removes the temp file
and raises :class:`~expert_cli.core.errors.StorageError` naming the target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from expert_cli.core.errors import storage_error


def ensure_dir(folder: Path) -> Path:
    """Create ``folder`` and its parents when missing; a StorageError naming it when that is impossible."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error("create the folder", folder, exc) from exc
    return folder


def check_creatable_dir(folder: Path) -> None:
    """Fail now, creating nothing, when ``folder`` could not be created or written into later."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise storage_error("create the folder", folder, NotADirectoryError(errno.ENOTDIR, "Not a directory"))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise storage_error("create the folder", folder, PermissionError(errno.EACCES, "Permission denied"))


@contextlib.contextmanager
def replacing(target: Path, action: str = "write", mode: int | None = None) -> Iterator[Path]:
    """Yield a temp file beside ``target`` to fill; it replaces ``target`` when the block succeeds.

    ``mode`` defaults to what a plain new file gets (``0o666`` less the umask); private keys pass ``0o600``.
    """
    ensure_dir(target.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise storage_error(action, target, exc) from exc
    tmp = Path(name)
    try:
        os.chmod(tmp, default_file_mode() if mode is None else mode)  # mkstemp makes every file 0600
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise storage_error(action, target, exc) from exc
        raise
    fsync_dir(target.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8), fsynced before the rename."""
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def default_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
