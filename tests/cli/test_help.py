"""`expert-cli --help`: plain text listing every command with its whole first sentence."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_commands_with_their_whole_summary(cli, flag: str):
    result = cli(flag)
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ")
    summary = " ".join(result.stdout.split())
    assert "list List installed experts (every version, newest first)." in summary
    assert "validate Check a manifest or expert and report every problem with its JSON path and line." in summary
    assert not set("╭│╰") & set(result.stdout)  # plain text, no rich panels


def test_unknown_option_is_a_usage_error(cli):
    result = cli("list", "--bogus")
    assert result.exit_code == 2
    assert "--bogus" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(("argv", "message", "command"), [
    (["bogus"], "error: no such command `bogus`", "expert-cli"),
    (["install"], "error: missing argument `source`", "expert-cli install"),
    (["chat", "--max-tokens", "abc"], "error: invalid value for `--max-tokens`", "expert-cli chat"),
    (["train", "--device"], "error: option `--device` requires an argument", "expert-cli train"),
    (["trust", "add"], "error: missing argument `key`", "expert-cli trust add"),
    (["trust", "bogus"], "error: no such command `bogus`", "expert-cli trust"),
    (["validate", "x", "extra"], "error: got unexpected extra argument(s) (extra)", "expert-cli validate"),
])
def test_usage_errors_are_one_error_line_and_a_help_hint(cli, argv: list[str], message: str, command: str):
    result = cli(*argv)
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(message)
    assert lines[1:] == [f"hint: run `{command} --help`"]


def test_a_bare_group_still_prints_its_help(cli):
    result = cli("trust")
    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: ") and "add" in result.stderr


def test_sub_app_help_shows_whole_summaries(cli):
    result = cli("dataset", "--help")
    assert result.exit_code == 0
    assert "where the loss goes, and prompt/answer lengths (characters)." in " ".join(result.stdout.split())
