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
