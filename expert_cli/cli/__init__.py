"""The ``expert-cli`` command line: thin Typer commands over :mod:`expert_cli.core`.

Each command lives in its own module and registers itself on the shared app when imported here.
Importing this package must stay cheap: no torch, transformers, peft, trl or datasets.
"""

from __future__ import annotations

from expert_cli.cli._app import app

# Importing a command module registers its command; the order here is the order of `--help`.
# isort: off
from expert_cli.cli import chat, list_cmd, route, validate  # noqa: F401
from expert_cli.cli import install, keygen, package, sign, trust, uninstall, update, verify  # noqa: F401
from expert_cli.cli import dataset, train  # noqa: F401
# isort: on

__all__ = ["app", "main"]


def main() -> None:
    app()
