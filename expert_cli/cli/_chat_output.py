"""What ``chat`` writes, one-shot and interactive alike: the answer on stdout (streamed or whole), and with
``--debug`` the routing decision, composition and timing on stderr."""

from __future__ import annotations

import sys
from typing import Any

from expert_cli.cli.route import render_decision


def print_answer(session: Any, text: str, *, stream: bool, stop_on_interrupt: bool = False) -> Any:
    """Answer ``text`` and write it to stdout; returns the reply. Streaming, Ctrl-C stops the answer: with
    ``stop_on_interrupt`` the partial answer stands (interactive), otherwise the interrupt goes on up."""
    if not stream:
        reply = session.ask(text)
        sys.stdout.write(reply.answer + "\n")
        sys.stdout.flush()
        return reply
    chat_stream = session.stream(text)
    try:
        for piece in chat_stream:
            sys.stdout.write(piece)
            sys.stdout.flush()
    except KeyboardInterrupt:
        if not stop_on_interrupt:
            raise
        sys.stderr.write("\n[stopped]\n")
    finally:
        reply = chat_stream.close()
        sys.stdout.write("\n")
        sys.stdout.flush()
    return reply


def describe_composition(reply: Any) -> str:
    if not reply.experts:
        return f"experts: none, the base model `{reply.base_model}` answers"
    parts = [f"{name}@{reply.versions.get(name, '?')} (weight {weight:g})" for name, weight in reply.weights.items()]
    return f"experts ({reply.mode}): " + ", ".join(parts)


def write_debug(reply: Any) -> None:
    """The routing decision with its reasons, the composition and the timing, on stderr."""
    lines = []
    if reply.decision is not None:
        lines += [f"route: {line}" for line in render_decision(reply.decision).splitlines()]
    lines.append(describe_composition(reply))
    timing = reply.timing
    speed = reply.tokens / timing["generation_s"] if timing.get("generation_s") else 0.0
    lines.append(f"timing: route {timing.get('route_ms', 0):.3f} ms, load {timing.get('load_s', 0):.3f} s, "
                 f"generation {timing.get('generation_s', 0):.3f} s, total {reply.latency_s:.3f} s")
    lines.append(f"tokens: {reply.prompt_tokens} prompt, {reply.tokens} answer ({speed:.1f}/s), "
                 f"finish {reply.finish_reason}" + (f", {reply.history_dropped} old exchanges dropped"
                                                     if reply.history_dropped else ""))
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
