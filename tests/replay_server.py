"""A small local OpenAI-shaped ``/v1/chat/completions`` server that replays a script, for generation tests.

Each request takes the next step of the script (then ``default`` for every later request):

- ``ok(content, prompt_tokens, completion_tokens)``: a normal completion;
- ``status(code, retry_after=None)``: an OpenAI-shaped error with that status (and a ``Retry-After`` header);
- ``slow(seconds, content)``: answers after ``seconds`` (longer than the client's timeout: a timeout);
- ``malformed()``: status 200 with a body that is not JSON;
- ``drop()``: closes the connection without a response.

Every request is recorded with its arrival time, its body and the step it got. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Step:
    kind: str
    content: str = ""
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0
    usage: tuple[int, int] = (10, 20)


def ok(content: str, prompt_tokens: int = 10, completion_tokens: int = 20) -> Step:
    return Step("ok", content, usage=(prompt_tokens, completion_tokens))


def status(code: int, retry_after: str | None = None) -> Step:
    return Step("status", status=code, retry_after=retry_after)


def slow(seconds: float, content: str = "") -> Step:
    return Step("slow", content, seconds=seconds)


def malformed() -> Step:
    return Step("malformed")


def drop() -> Step:
    return Step("drop")


@dataclass
class Record:
    at: float
    body: dict[str, Any]
    step: Step
    headers: dict[str, str]


class ReplayServer:
    def __init__(self, script: list[Step], default: Callable[[int], Step]) -> None:
        self.script, self.default = list(script), default
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self.url = ""

    def next_step(self, body: dict[str, Any], headers: dict[str, str]) -> Step:
        with self._lock:
            step = self.script.pop(0) if self.script else self.default(len(self.records))
            self.records.append(Record(time.monotonic(), body, step, headers))
            return step

    def kinds(self) -> list[str]:
        return [r.step.kind if r.step.kind != "status" else str(r.step.status) for r in self.records]


def _handler(replay: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body leave in one write (two small writes meet delayed ACKs: +40 ms)

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            step = replay.next_step(body, {k.lower(): v for k, v in self.headers.items()})
            if step.kind == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if step.kind == "slow":
                time.sleep(step.seconds)
            if step.kind == "malformed":
                return self._send(200, b'{"choices": [{"message": ', {})
            if step.kind == "status":
                error = {"error": {"message": f"replayed {step.status}", "type": "replay", "code": step.status}}
                headers = {"Retry-After": step.retry_after} if step.retry_after is not None else {}
                return self._send(step.status, json.dumps(error).encode(), headers)
            completion = {"id": "replay", "object": "chat.completion", "model": body.get("model"),
                          "choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": step.content}}],
                          "usage": {"prompt_tokens": step.usage[0], "completion_tokens": step.usage[1],
                                    "total_tokens": sum(step.usage)}}
            self._send(200, json.dumps(completion).encode(), {})

        def _send(self, code: int, payload: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (a timeout): nothing to answer
                self.close_connection = True

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (a timeout, Ctrl-C) is part of the script, not a failure


@contextmanager
def replay_server(script: list[Step], default: Callable[[int], Step]) -> Iterator[ReplayServer]:
    """Serve ``script`` then ``default(n)`` on an ephemeral 127.0.0.1 port; stopped on exit."""
    replay = ReplayServer(script, default)
    server = _Server(("127.0.0.1", 0), _handler(replay))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    replay.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield replay
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
