"""What the interactive chat reads as one prompt: a line, a \"\"\" block, or a pasted block."""

from __future__ import annotations

import io
import os

import pytest

from expert_cli.cli._chat_repl import read_prompt


def test_a_line_is_a_prompt():
    stdin = io.StringIO("first\nsecond\n")
    assert read_prompt(stdin) == "first"
    assert read_prompt(stdin) == "second"
    assert read_prompt(stdin) is None


def test_a_triple_quoted_block_is_one_prompt():
    stdin = io.StringIO('"""\nSchema:\nCREATE TABLE t (id INTEGER);\n\nHow many rows?\n"""\nnext\n')
    assert read_prompt(stdin) == "Schema:\nCREATE TABLE t (id INTEGER);\n\nHow many rows?"
    assert read_prompt(stdin) == "next"


def test_a_block_may_start_and_end_on_the_text_lines():
    stdin = io.StringIO('"""Schema: t(id)\nHow many rows?"""\n')
    assert read_prompt(stdin) == "Schema: t(id)\nHow many rows?"


def test_end_of_input_inside_a_block_keeps_what_was_typed():
    assert read_prompt(io.StringIO('"""\nhalf a question\n')) == "half a question"
    assert read_prompt(io.StringIO('"""\n')) is None


def test_lines_pasted_at_once_on_a_terminal_are_one_prompt():
    """A pseudo-terminal gets three lines in one write, as a paste does; typing one line gets one."""
    import pty

    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "r", closefd=False) as terminal:
            os.write(leader, b"Schema: users(id, age)\nWho is over 30?\nAnswer in SQL.\n")
            assert read_prompt(terminal) == "Schema: users(id, age)\nWho is over 30?\nAnswer in SQL."
            os.write(leader, b"just one line\n")
            assert read_prompt(terminal) == "just one line"
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize("marker", ['"""', '   """'])
def test_an_indented_marker_opens_a_block_too(marker):
    assert read_prompt(io.StringIO(f'{marker}\na\nb\n"""\n')) == "a\nb"
