"""The ``expert-cli`` command line: thin Typer commands over :mod:`expert_cli.sdk`.

Each command is a function in its own module; the table below registers them, in the order ``--help``
lists them. Importing this package must stay cheap: no torch, transformers, peft, trl or datasets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from expert_cli.cli import (
    chat,
    dataset,
    dataset_generate,
    export,
    index,
    info,
    install,
    keygen,
    list_cmd,
    model,
    outdated,
    package,
    publish,
    route,
    search,
    serve,
    sign,
    train,
    trust,
    uninstall,
    update,
    validate,
    verify,
    yank,
)
from expert_cli.cli._app import new_group

Command = Callable[..., Any]
Group = tuple[str, tuple[tuple[str, Command], ...]]  # (help, sub-commands)

COMMANDS: tuple[tuple[str, Command | Group], ...] = (
    ("chat", chat.chat_command),
    ("list", list_cmd.list_command),
    ("route", route.route_command),
    ("serve", serve.serve_command),
    ("validate", validate.validate_command),
    ("install", install.install_command),
    ("search", search.search_command),
    ("info", info.info_command),
    ("outdated", outdated.outdated_command),
    ("keygen", keygen.keygen_command),
    ("package", package.package_command),
    ("sign", sign.sign_command),
    ("publish", publish.publish_command),
    ("yank", yank.yank_command),
    ("index", (index.HELP, (("add", index.add_command), ("list", index.list_command),
                            ("update", index.update_command), ("rm", index.rm_command),
                            ("default", index.default_command)))),
    ("trust", (trust.HELP, (("add", trust.add_command), ("list", trust.list_command), ("rm", trust.rm_command),
                            ("pin", trust.pin_command)))),
    ("uninstall", uninstall.uninstall_command),
    ("update", update.update_command),
    ("verify", verify.verify_command),
    ("dataset", (dataset.HELP, (("validate", dataset.validate_command), ("stats", dataset.stats_command),
                                ("generate", dataset_generate.generate_command),
                                ("check", dataset_generate.check_command),
                                ("dedupe", dataset_generate.dedupe_command)))),
    ("train", train.train_command),
    ("export", (export.HELP, (("vllm", export.vllm_command),))),
    ("model", (model.HELP, (("import", model.import_command), ("pull", model.pull_command),
                            ("list", model.list_command), ("rm", model.rm_command)))),
)


def build_app() -> typer.Typer:
    """The ``expert-cli`` application from :data:`COMMANDS`."""
    root = new_group("expert-cli", "Train, package, sign, install and chat with runtime-composable PEFT experts.")
    for name, entry in COMMANDS:
        if callable(entry):
            root.command(name)(entry)
            continue
        help_text, commands = entry
        group = new_group(name, help_text)
        for sub_name, command in commands:
            group.command(sub_name)(command)
        root.add_typer(group, name=name)
    return root


app = build_app()

__all__ = ["COMMANDS", "app", "build_app", "main"]


def main() -> None:
    app()
