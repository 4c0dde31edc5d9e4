"""One error family for the whole project.

Every layer raises these; the CLI's one boundary (the command group's ``invoke``, in ``expert_cli.cli._app``)
renders them as ``error: ...`` / ``hint: ...`` on stderr and exits with ``exit_code``. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The process exit codes, one table: 0 ok, 1 a known failure, 2 bad usage, 130 interrupted (Ctrl-C)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    INTERRUPTED = 130


class ExpertError(Exception):
    """Base class: a one-sentence ``message``, an optional ``hint`` naming the next step, an ``exit_code``."""

    exit_code: int = ExitCode.FAILURE

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(ExpertError):
    """Bad flags or arguments: exit code 2."""

    exit_code = ExitCode.USAGE


class ManifestError(ExpertError):
    """A manifest cannot be read or breaks a rule."""


class ManifestValidationError(ManifestError):
    """A manifest breaks one or more rules; ``problems`` lists each with its JSON path and line."""

    def __init__(self, message: str, problems: list, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.problems = problems


class SpecError(UsageError):
    """An expert spec (``name[@version]``) that cannot be parsed."""


class RegistryError(ExpertError):
    """The registry file is unreadable, corrupt or locked."""


class PackageError(ExpertError):
    """A `.expert` package is malformed, tampered with or hostile."""


class SignatureError(PackageError):
    """A signature is missing, invalid or made by an untrusted key."""


class InstallError(ExpertError):
    """An install, uninstall or update cannot be completed."""


class NotInstalledError(ExpertError):
    """An expert named by the user is not in the registry."""


class DatasetError(ExpertError):
    """A dataset file or row is unusable."""


class TrainingError(ExpertError):
    """Training cannot start or failed."""


class ModelNotFoundError(ExpertError):
    """A base model is neither a local folder, a built-in, nor in the Hugging Face cache."""


class InferenceError(ExpertError):
    """Generation failed."""


class CompositionError(InferenceError):
    """Experts that cannot answer together (different base models, or different copies of one)."""


class OutOfMemoryError(InferenceError):
    """The device ran out of memory."""


class GrammarError(InferenceError):
    """A grammar does not compile."""


class ExportError(ExpertError):
    """An expert cannot be written in another engine's format (``expert-cli export``)."""


class StorageError(ExpertError):
    """A file or folder cannot be created or written: permissions, a full disk, a file where a folder should be."""


def storage_error(action: str, path: object, exc: OSError) -> StorageError:
    """``cannot <action> `<path>`: <reason>``, with a hint that points at ``EXPERT_HOME`` when the path is in it."""
    from pathlib import Path

    from expert_cli.core import paths

    reason = exc.strerror or str(exc)
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        reason = "a file stands where a folder should be"
    if isinstance(exc, IsADirectoryError):
        reason = "a folder stands where the file should be"
    named = {str(name) for name in (exc.filename, exc.filename2) if name is not None}
    if named and str(path) not in named:  # the failing file is another one (a source), not a temp file of ours
        reason += f" (`{exc.filename}`)"
    home = paths.expert_home()
    target = Path(str(path)).expanduser().absolute()
    if target == home.absolute() or home.absolute() in target.parents:
        hint = f"check that `EXPERT_HOME` (`{home}`) is a writable folder with free space, or set it to one"
    else:
        hint = "check the path, its permissions and the free space, or choose another location"
    return StorageError(f"cannot {action} `{path}`: {reason}", hint=hint)


class MissingDependencyError(ExpertError):
    """An optional extra is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"`{package}` is not installed; this command needs the `{extra}` extra",
            hint=f"pip install 'expert-cli[{extra}]'",
        )
        self.package = package
        self.extra = extra


def require(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(module, extra) from exc


class ModelImportError(ExpertError):
    """A model file (a GGUF) cannot be read or converted into a model folder."""
