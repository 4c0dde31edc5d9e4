"""The error family and the CLI's one error boundary that renders it (`error:`/`hint:` on stderr, the exit code)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from expert_cli.cli._app import new_group
from expert_cli.core import errors
from expert_cli.core.errors import (
    ExitCode,
    ExpertError,
    ManifestError,
    MissingDependencyError,
    RegistryError,
    SpecError,
    UsageError,
    require,
)


def app_raising(exc: BaseException) -> typer.Typer:
    """A command group built as the real one is, whose one command prints a line and raises ``exc``."""
    app = new_group("test", "A group with the project's error boundary.")

    @app.command("boom")
    def boom() -> None:
        typer.echo("partial output")
        raise exc

    @app.command("calm")
    def calm() -> None:
        typer.echo("fine")

    return app


def invoke(exc: BaseException):
    return CliRunner().invoke(app_raising(exc), ["boom"])


def test_every_command_of_the_group_runs_inside_the_boundary():
    app = app_raising(ManifestError("manifest `m.json` is invalid"))
    assert CliRunner().invoke(app, ["calm"]).exit_code == 0
    assert CliRunner().invoke(app, ["boom"]).stderr.startswith("error: manifest `m.json` is invalid")


def test_error_and_hint_go_to_stderr_with_the_exit_code():
    result = invoke(ManifestError("manifest `m.json` is invalid", hint="run `expert-cli validate m.json`"))
    assert result.exit_code == ExitCode.FAILURE
    assert result.stderr == "error: manifest `m.json` is invalid\nhint: run `expert-cli validate m.json`\n"
    assert result.stdout == "partial output\n"


def test_no_hint_line_without_a_hint():
    result = invoke(RegistryError("the registry is locked"))
    assert result.stderr == "error: the registry is locked\n"


@pytest.mark.parametrize(
    ("exc", "code"),
    [(UsageError("bad flags"), ExitCode.USAGE), (SpecError("bad spec"), ExitCode.USAGE),
     (ExpertError("custom", exit_code=3), 3), (ManifestError("m"), ExitCode.FAILURE)],
)
def test_exit_code_comes_from_the_error(exc: ExpertError, code: int):
    assert invoke(exc).exit_code == code


def test_no_traceback_unless_expert_debug(monkeypatch: pytest.MonkeyPatch):
    assert "Traceback" not in invoke(ManifestError("quiet")).stderr
    monkeypatch.setenv("EXPERT_DEBUG", "1")
    result = invoke(ManifestError("loud"))
    assert "Traceback" in result.stderr and "ManifestError: loud" in result.stderr
    assert result.stderr.rstrip().endswith("error: loud")
    assert result.exit_code == ExitCode.FAILURE


def test_expert_debug_zero_means_off(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EXPERT_DEBUG", "0")
    assert "Traceback" not in invoke(ManifestError("quiet")).stderr


def test_other_exceptions_are_bugs_and_keep_their_traceback():
    result = invoke(ValueError("a bug"))
    assert isinstance(result.exception, ValueError)
    assert "error:" not in result.stderr


def test_keyboard_interrupt_exits_130():
    result = invoke(KeyboardInterrupt())
    assert result.exit_code == ExitCode.INTERRUPTED == 130
    assert result.stderr == "error: interrupted\n"


def test_missing_dependency_names_the_extra():
    with pytest.raises(MissingDependencyError) as caught:
        require("expert_cli_no_such_module", "train")
    assert caught.value.message == "`expert_cli_no_such_module` is not installed; this command needs the `train` extra"
    assert caught.value.hint == "pip install 'expert-cli[train]'"
    assert require("json", "train").dumps([]) == "[]"


def test_every_error_class_is_an_expert_error():
    classes = [obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, Exception)]
    assert len(classes) > 10
    assert all(issubclass(cls, ExpertError) for cls in classes)
    assert str(ExpertError("message `x`", hint="h")) == "message `x`"
