"""The interactive side of ``expert-cli chat``: read a line, answer it (streamed) or run a slash command.

Answers go to stdout; the prompt marker, command output and notices go to stderr, so a transcript of
stdout holds the answers only. Ctrl-C during an answer stops that answer; Ctrl-D or ``/exit`` ends.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from expert_cli.cli._app import print_error
from expert_cli.cli._chat_output import describe_composition, print_answer, write_debug
from expert_cli.cli.route import render_decision
from expert_cli.core.errors import ExpertError

if TYPE_CHECKING:
    from expert_cli.sdk.conversation import ChatSession

PROMPT_MARK = ">>> "
CONTINUE_MARK = "... "
BLOCK = '"""'
PASTE_WAIT_S = 0.05
HELP = """commands:
  /experts          show this chat's experts and who answers
  /experts a,b      force these experts on every prompt (composed, equal weights)
  /experts none     force the bare base model
  /experts auto     route every prompt again (all experts with --no-route)
  /route            show the last routing decision and why
  /reset            forget the conversation so far
  /help             this list
  /exit             leave (also /quit or Ctrl-D)
a prompt of several lines: start and end it with \"\"\" (or paste it: pasted lines are one prompt)"""


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def run_repl(session: ChatSession, first_prompt: str | None, *, stream: bool, debug: bool) -> None:
    """Read prompts until ``/exit`` or end of input; a failing turn reports its error and the chat goes on."""
    _enable_line_editing()
    names = ", ".join(entry.spec for entry in session.experts) or "no experts"
    say(f"chat with {names} on `{session.setup.base_model}` ({session.mode}); /help lists the commands")
    pending = [first_prompt] if first_prompt and first_prompt.strip() else []
    while True:
        line = pending.pop() if pending else read_prompt()
        if line is None:
            return
        line = line.strip()
        if not line:
            continue
        try:
            if line.startswith("/"):
                if not run_command(session, line):
                    return
            else:
                answer(session, line, stream=stream, debug=debug)
        except ExpertError as exc:
            print_error(exc.message, exc.hint)


def read_prompt(stdin: Any = None) -> str | None:
    """One prompt: a line; a block between lines that start and end with ``\"\"\"``; or, on a terminal, a
    pasted block (lines that arrive at once are one prompt). None at end of input."""
    stdin = stdin or sys.stdin
    line = read_line(stdin)
    if line is None:
        return None
    if line.lstrip().startswith(BLOCK):
        return read_block(stdin, line.lstrip()[len(BLOCK):])
    lines = [line.rstrip("\n")]
    while _isatty(stdin) and _more_waiting(stdin):
        more = stdin.readline()
        if not more:
            break
        lines.append(more.rstrip("\n"))
    return "\n".join(lines)


def read_block(stdin: Any, first: str) -> str | None:
    """Lines up to the one that ends with ``\"\"\"`` (``first`` is what followed the opening marker)."""
    lines: list[str] = []
    text = first.rstrip("\n")
    while True:
        if text.rstrip().endswith(BLOCK):
            lines.append(text.rstrip()[: -len(BLOCK)])
            return "\n".join(lines).strip("\n")
        lines.append(text)
        more = read_line(stdin, CONTINUE_MARK)
        if more is None:  # end of input inside a block: what was typed is the prompt
            return "\n".join(lines).strip("\n") or None
        text = more.rstrip("\n")


def _isatty(stdin: Any) -> bool:
    return hasattr(stdin, "isatty") and stdin.isatty()


def _more_waiting(stdin: Any) -> bool:
    """Whether more input is already there (a paste), without waiting for the user."""
    import select

    try:
        return bool(select.select([stdin], [], [], PASTE_WAIT_S)[0])
    except (OSError, ValueError):
        return False


def read_line(stdin: Any = None, mark: str = PROMPT_MARK) -> str | None:
    """One line from stdin (the marker on stderr); None at end of input or on Ctrl-C at the prompt."""
    stdin = stdin or sys.stdin
    sys.stderr.write(mark)
    sys.stderr.flush()
    try:
        if stdin is sys.stdin and _isatty(stdin):
            return input()  # through readline: line editing and history
        line = stdin.readline()
    except (KeyboardInterrupt, EOFError):
        say("")
        return None
    return line if line else None


def answer(session: ChatSession, text: str, *, stream: bool, debug: bool) -> None:
    reply = print_answer(session, text, stream=stream, stop_on_interrupt=True)
    if debug:
        write_debug(reply)


def run_command(session: ChatSession, line: str) -> bool:
    """Run one slash command; False when the chat should end."""
    command, _, argument = line.partition(" ")
    command, argument = command.lower(), argument.strip()
    if command in ("/exit", "/quit"):
        return False
    if command == "/help":
        say(HELP)
    elif command == "/reset":
        session.reset()
        say("history cleared")
    elif command == "/route":
        show_route(session)
    elif command == "/experts":
        if argument:
            force(session, argument)
        show_experts(session)
    else:
        print_error(f"unknown command `{command}`", hint="`/help` lists the commands")
    return True


def force(session: ChatSession, argument: str) -> None:
    from expert_cli.sdk.installed import split_expert_list

    word = argument.lower()
    if word == "auto":
        session.force_experts(None)
    elif word == "none":
        session.force_experts([])
    else:
        session.force_experts(split_expert_list(argument))


def show_experts(session: ChatSession) -> None:
    if not session.experts:
        say(f"no experts: the base model `{session.setup.base_model}` answers every prompt")
        return
    modes = {"routed": "routed per prompt", "all": "all composed on every prompt (--no-route)",
             "forced": "forced: " + (", ".join(session.forced or []) or "none, the base model answers")}
    last = session.last.weights if session.last else {}
    lines = [f"experts ({modes[session.mode]}):"]
    for entry in session.experts:
        used = f"  weight {last[entry.name]:g} in the last answer" if entry.name in last else ""
        lines.append(f"  {entry.spec}{used}")
    say("\n".join(lines))


def show_route(session: ChatSession) -> None:
    reply = session.last
    if reply is None:
        say("no prompt answered yet")
    elif reply.decision is not None:
        say(render_decision(reply.decision))
    else:
        reasons = {"forced": "forced with /experts", "all": "routing is off (--no-route)", "base": "no experts"}
        say(f"{describe_composition(reply)}; not routed: {reasons.get(reply.mode, reply.mode)}")


def _enable_line_editing() -> None:
    """Arrow keys and history at the prompt, when reading from a terminal."""
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401
        except ImportError:  # not available on every platform
            pass
