"""The Typer application, the error boundary and output helpers shared by every command.

Typer and rich live in ``expert_cli.cli`` and nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from expert_cli.core.errors import ExitCode, ExpertError

if TYPE_CHECKING:  # rich is imported when a console is first needed: it costs ~20 ms at start-up
    from rich.console import Console


# click's UsageError, reached through typer's public `BadParameter` (typer bundles click privately).
_ClickUsageError: type[Exception] = typer.BadParameter.__base__  # type: ignore[assignment]
_PASS_THROUGH = ("NoArgsIsHelpError",)  # a bare group (`expert-cli trust`) prints its help, as before


INVOKED_KEY = "expert_cli.invoked"  # ctx.meta (shared by every context of a run): the command being parsed


class CommandLineUsageError(_ClickUsageError):  # type: ignore[misc, valid-type]
    """A usage error shown the project's way: ``error: ...`` and ``hint: run `<command> --help```, exit 2."""

    def __init__(self, message: str, ctx: Any = None, command: str = "expert-cli") -> None:
        super().__init__(message, ctx=ctx)
        self.command = ctx.command_path if ctx is not None else command

    def show(self, file: IO[Any] | None = None) -> None:
        print_error(self.message, f"run `{self.command} --help`")


def plain_message(text: str) -> str:
    """click's ``Missing argument 'source'.`` -> ``missing argument `source```."""
    text = re.sub(r"'([^'\s]+)'", r"`\1`", text.strip()).rstrip(".")
    return text[:1].lower() + text[1:]


@contextlib.contextmanager
def plain_usage_errors(ctx: Any = None) -> Iterator[None]:
    """Turn click's usage errors raised inside the block into :class:`CommandLineUsageError`."""
    try:
        yield
    except CommandLineUsageError:
        raise
    except _ClickUsageError as exc:
        if type(exc).__name__ in _PASS_THROUGH:
            raise
        command = ctx.meta.get(INVOKED_KEY, ctx.command_path) if ctx is not None else "expert-cli"
        raise CommandLineUsageError(plain_message(exc.format_message()), exc.ctx, command) from None


class CommandGroup(TyperGroup):
    """Plain help whose command list shows each command's whole first sentence, wrapped, never cut at `...`;
    usage errors (unknown command or option, missing argument, bad value) as ``error:``/``hint:`` lines."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with plain_usage_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        """The one error boundary: every command (and sub-command) of the group runs inside it."""
        with plain_usage_errors(ctx), rendered_errors():
            return super().invoke(ctx)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[INVOKED_KEY] = f"{ctx.command_path} {name}"  # names the command in errors without a context
        return name, command, rest

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def new_group(name: str, help_text: str) -> typer.Typer:
    """A command group with plain help, the project's usage errors and the error boundary."""
    return typer.Typer(
        cls=CommandGroup,
        name=name,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        # Plain help and usage errors: typer's rich formatter imports rich.markdown, pygments and
        # rich.traceback, about 40 ms of every `--help`; the plain text says the same.
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

PIPE_WIDTH = 4096  # stdout tables when stdout is not a terminal: never folded


def err_console() -> Console:
    """A console on stderr for messages and progress; honours ``NO_COLOR``."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, no_color=bool(os.environ.get("NO_COLOR")), soft_wrap=True)


def out_console() -> Console:
    """A console on stdout, for tables only (data goes to stdout).

    When stdout is not a terminal (a pipe, a file) rich would fold tables at 80 columns; a wide console keeps
    every row on one line, so ``expert-cli list | grep sql`` works.
    """
    from rich.console import Console

    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(highlight=False, no_color=bool(os.environ.get("NO_COLOR")), soft_wrap=True, width=width)


def debug_enabled() -> bool:
    return os.environ.get("EXPERT_DEBUG", "") not in ("", "0", "false")


@contextlib.contextmanager
def rendered_errors() -> Iterator[None]:
    """:class:`ExpertError` as ``error:``/``hint:`` lines on stderr and its exit code; Ctrl-C exits 130.

    Anything else is a bug and keeps its traceback. ``EXPERT_DEBUG=1`` shows the traceback of every error.
    """
    try:
        yield
    except ExpertError as exc:
        if debug_enabled():
            import traceback

            traceback.print_exc()
        print_error(exc.message, exc.hint)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print_error("interrupted")
        raise typer.Exit(ExitCode.INTERRUPTED) from None


def print_error(message: str, hint: str | None = None) -> None:
    sys.stderr.write(f"error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")
    sys.stderr.flush()


def print_warning(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def print_json(document: Any) -> None:
    """One JSON document on stdout: stable keys, no colour."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def print_success(headline: str, details: dict[str, Any] | None = None) -> None:
    """Success is one line plus indented ``key: value`` lines, on stderr (stdout is for data)."""
    lines = [headline]
    for key, value in (details or {}).items():
        lines.append(f"  {key}: {value}")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
