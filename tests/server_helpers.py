"""A real ``expert-cli serve`` (local or gateway) as a subprocess on 127.0.0.1 for tests: started with
``--port 0``, its URL read from its ``serving on URL`` line, ``/health`` polled, SIGTERM at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai

REPO = Path(__file__).resolve().parents[1]


class Server:
    """A running ``expert-cli serve``: its URL, its process, its stderr so far."""

    def __init__(self, process: subprocess.Popen, url: str, log: list[str]) -> None:
        self.process, self.url, self.log = process, url, log

    def client(self, api_key: str = "unused", **options) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, timeout=60, **options)

    def metric(self, name: str, key: str | None = None) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (key is None or key in line):
                total += float(line.rsplit(" ", 1)[1])
        return total


@contextmanager
def running_server(home: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    environment = {**os.environ, "EXPERT_HOME": str(home), "HF_HUB_OFFLINE": "1", "EXPERT_NO_PROGRESS": "1",
                   "NO_COLOR": "1", **(env or {})}
    process = subprocess.Popen([sys.executable, "-m", "expert_cli", "serve", "--port", "0", *args], cwd=REPO,
                               env=environment, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        url = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            url = next((line.split()[-1] for line in log if line.startswith("serving on ")), None)
            if url and httpx.get(f"{url}/health", timeout=5).status_code == 200:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the server did not become ready: {''.join(log)}")
        yield Server(process, url, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


