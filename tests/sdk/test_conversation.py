"""ChatSession on the bare tiny model: history kept within the context window, streaming, reset."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from expert_cli.core.errors import UsageError
from expert_cli.sdk import requests
from expert_cli.sdk.conversation import ChatSettings, open_chat

TURN = "tell me about the quick brown fox and the lazy dog"


@pytest.fixture
def chat(tiny_model: Path):
    settings = ChatSettings(base_model=str(tiny_model), overrides={"max_tokens": 6, "temperature": 0}, progress=False)
    with open_chat(settings) as session:
        yield session


def test_history_grows_then_oldest_exchanges_are_dropped_to_fit(chat, monkeypatch):
    monkeypatch.setattr(requests, "context_window", lambda base: 130)
    replies = [chat.ask(f"{TURN} {i}") for i in range(4)]
    assert replies[0].history_dropped == 0 and replies[1].prompt_tokens > replies[0].prompt_tokens
    assert all(r.prompt_tokens + r.decoding["max_tokens"] <= 130 for r in replies)
    assert sum(r.history_dropped for r in replies) > 0 and replies[-1].decoding["max_tokens"] == 6
    assert chat.history[-2] == {"role": "user", "content": f"{TURN} 3"}
    assert chat.history[0]["content"] != f"{TURN} 0"  # the first exchange is gone for good
    chat.reset()
    assert chat.history == [] and chat.ask(f"{TURN} 0").prompt_tokens == replies[0].prompt_tokens


def test_max_tokens_shrinks_when_the_prompt_alone_nearly_fills_the_window(chat, monkeypatch):
    prompt_tokens = chat.ask(TURN).prompt_tokens
    chat.reset()
    monkeypatch.setattr(requests, "context_window", lambda base: prompt_tokens + 2)
    reply = chat.ask(TURN)
    assert reply.decoding["max_tokens"] == 2 and reply.tokens <= 2
    chat.reset()
    monkeypatch.setattr(requests, "context_window", lambda base: prompt_tokens - 1)
    with pytest.raises(UsageError, match=f"the prompt is {prompt_tokens} tokens, more than the model's context"):
        chat.ask(TURN)


def test_stream_pieces_make_the_answer_and_join_the_history(chat):
    stream = chat.stream(TURN)
    pieces = list(stream)
    assert stream.reply is not None and "".join(pieces) == stream.reply.answer
    assert stream.reply.mode == "base" and chat.history[-1] == {"role": "assistant", "content": stream.reply.answer}


def test_empty_prompt_and_forcing_in_a_session_without_experts(chat):
    with pytest.raises(UsageError, match="the prompt is empty"):
        chat.ask("  ")
    with pytest.raises(UsageError, match="is not an expert of this chat"):
        chat.force_experts(["sql"])
