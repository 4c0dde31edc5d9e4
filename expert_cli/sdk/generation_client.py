"""One chat completion from any OpenAI-compatible endpoint, retried the way a paying user needs.

429, 5xx, timeouts, dropped connections and malformed bodies are retried with exponential backoff (0.5 s,
1 s, 2 s, ... capped at 30 s, with jitter); a ``Retry-After`` header (seconds or an HTTP date) sets the wait
instead. Other 4xx answers (a bad key, an unknown model) are fatal: retrying cannot fix them. Every attempt
counts against the request budget, shared by all threads; a stop event cuts any wait short (Ctrl-C).
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from expert_cli.core.errors import require

MAX_WAIT_S = 30.0
MAX_RETRY_AFTER_S = 120.0
RETRIED_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass
class Reply:
    """What one request came to: the text and tokens, or why it failed (``fatal``: stop the whole run)."""

    index: int
    text: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: Counter = field(default_factory=Counter)  # cause -> retries
    failure: str | None = None
    fatal: bool = False
    budget_exhausted: bool = False


class RequestBudget:
    """The most HTTP attempts one run may make (None: no limit); thread-safe."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.limit is not None and self.used >= self.limit:
                return False
            self.used += 1
            return True


class ChatClient:
    """POSTs ``/chat/completions`` to ``base_url`` through one shared ``httpx.Client``."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout_s: float = 120.0, max_retries: int = 5,
                 budget: RequestBudget | None = None, stop: threading.Event | None = None) -> None:
        httpx = require("httpx", "generate")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._httpx = httpx
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)
        self.max_retries = max_retries
        self.budget = budget or RequestBudget(None)
        self.stop = stop or threading.Event()

    def close(self) -> None:
        self._http.close()

    def complete(self, index: int, body: dict[str, Any]) -> Reply:
        """Send ``body``; retry what can be retried; never raise for HTTP trouble (the reply says)."""
        reply = Reply(index)
        for attempt in range(self.max_retries + 1):
            if self.stop.is_set():
                reply.failure = "stopped"
                return reply
            if not self.budget.take():
                reply.failure, reply.budget_exhausted = "the request budget is spent", True
                return reply
            cause, wait = self._attempt(body, reply)
            if cause is None or reply.fatal:
                return reply
            reply.retries[cause] += 1
            if attempt < self.max_retries:
                self.stop.wait(wait if wait is not None else backoff(attempt))
        reply.failure = f"gave up after {self.max_retries + 1} attempts (last: {reply.failure})"
        return reply

    def _attempt(self, body: dict[str, Any], reply: Reply) -> tuple[str | None, float | None]:
        """One POST: (None, None) on success, else (cause, the server's Retry-After or None)."""
        httpx = self._httpx
        try:
            response = self._http.post("/chat/completions", json=body)
        except httpx.TimeoutException:
            reply.failure = "timed out"
            return "timeout", None
        except httpx.TransportError as exc:
            reply.failure = f"connection failed: {type(exc).__name__}"
            return "connection", None
        if response.status_code != 200:
            reply.failure = f"HTTP {response.status_code}: {_error_message(response)}"
            if response.status_code in RETRIED_STATUSES:
                return str(response.status_code), retry_after(response.headers.get("retry-after"))
            reply.fatal = True
            return "fatal", None
        try:
            reply.text, reply.prompt_tokens, reply.completion_tokens = _parse(response.content)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            reply.failure = f"malformed response body ({type(exc).__name__})"
            return "malformed", None
        reply.failure = None
        return None, None


def _parse(content: bytes) -> tuple[str, int, int]:
    data = json.loads(content)
    message = data["choices"][0]["message"]
    text = message.get("content")
    if not isinstance(text, str):
        raise TypeError("no text content")
    usage = data.get("usage") or {}
    return text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _error_message(response: Any) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return str(message or response.text[:200] or response.reason_phrase).strip()


def backoff(attempt: int) -> float:
    """0.5 s doubled per attempt, capped at 30 s, with up to 25% jitter (so threads do not retry in step)."""
    base = min(MAX_WAIT_S, 0.5 * 2**attempt)
    return base * (1 + random.random() * 0.25)


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), capped at two minutes; None when absent or bad."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S))
