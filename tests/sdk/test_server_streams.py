"""How the server turns a request's events into server-sent events (no model, no socket)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from expert_cli.sdk.openai_api import parse_chat
from expert_cli.sdk.server import Routes


class FakeJob:
    """Only what ``Routes.sse`` calls on a job: ``cancel`` when the stream ends."""

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def stream(events: list[tuple[str, object]], **fields) -> tuple[list[bytes], FakeJob]:
    call = parse_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True, **fields}, 64)
    job = FakeJob()

    async def collect() -> list[bytes]:
        queue: asyncio.Queue = asyncio.Queue()
        for event in events:
            queue.put_nowait(event)
        return [piece async for piece in Routes.sse(None, call, job, queue, {"expert-a": 1.0})]

    return asyncio.run(collect()), job


def documents(writes: list[bytes]) -> list[object]:
    lines = b"".join(writes).decode().split("\n\n")
    return [line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]) for line in lines if line]


def result(finish: str = "stop") -> SimpleNamespace:
    return SimpleNamespace(finish_reason=finish, prompt_tokens=3, completion_tokens=4, experts=["expert-a"])


def test_deltas_that_piled_up_go_out_as_one_chunk_and_the_end_as_one_write():
    writes, job = stream([("delta", "SEL"), ("delta", "ECT"), ("delta", " 1"), ("done", result())])
    sent = documents(writes)
    assert [d["choices"][0]["delta"].get("content") for d in sent[:2]] == ["", "SELECT 1"]
    assert sent[2]["choices"][0]["finish_reason"] == "stop" and sent[-1] == "[DONE]"
    assert len(writes) == 3  # the role chunk, one chunk for the three deltas, then finish + [DONE] together
    assert job.cancelled


def test_an_error_after_deltas_still_sends_the_text_then_the_error_then_done():
    from expert_cli.core.errors import InferenceError

    sent = documents(stream([("delta", "a"), ("delta", "b"), ("error", InferenceError("boom"))])[0])
    assert sent[1]["choices"][0]["delta"]["content"] == "ab"
    assert sent[2]["error"]["message"] == "boom" and sent[-1] == "[DONE]"
