"""``expert-cli dataset generate``: training rows from any OpenAI-compatible endpoint, gated, appended as they come.

At most ``concurrency`` requests are in flight (daemon threads over one ``httpx.Client``); each reply's rows go through
:class:`~expert_cli.sdk.quality_gates.QualityGates` in this thread, and every accepted row is appended to the
output and flushed at once, so Ctrl-C or a kill loses nothing accepted. ``<out>.state.json`` (replaced after
every reply) records the requests made and tokens spent; ``--resume`` counts the rows already in the output,
continues the request numbering (so no prompt is sent twice) and stops at ``count``. New requests stop when the
request or token budget would be passed; requests in flight finish.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import DatasetError, ExpertError, UsageError
from expert_cli.core.files import atomic_write_text
from expert_cli.core.progress import ProgressCallback, report
from expert_cli.manifest.model import Manifest, load_manifest
from expert_cli.sdk.dataset_quality import expert_gates
from expert_cli.sdk.generation_client import ChatClient, Reply, RequestBudget
from expert_cli.sdk.generation_settings import (
    GenerationSettings,
    request_body,
    resolve_settings,
    rows_in_reply,
)
from expert_cli.sdk.quality_gates import GateReport
from expert_cli.training.datasets import read_examples
from expert_cli.training.rows import read_rows, resolve_source

MAX_CONSECUTIVE_FAILURES = 3


class GenerationError(ExpertError):
    """The endpoint refused the run (a bad key, an unknown model) or kept failing."""


@dataclass
class GenerationResult:
    out: str
    count: int
    rows: int  # rows in the output now
    new_rows: int
    complete: bool
    stop_reason: str | None
    requests: int  # HTTP attempts this run
    replies: int
    failed_requests: int
    retries: dict[str, int]
    prompt_tokens: int
    completion_tokens: int
    elapsed_s: float
    gates: GateReport = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "count": self.count, "rows": self.rows, "new_rows": self.new_rows,
                "complete": self.complete, "stop_reason": self.stop_reason, "requests": self.requests,
                "replies": self.replies, "failed_requests": self.failed_requests, "retries": self.retries,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "tokens": self.prompt_tokens + self.completion_tokens, "elapsed_s": round(self.elapsed_s, 3),
                "rows_per_s": round(self.new_rows / self.elapsed_s, 3) if self.elapsed_s else 0.0,
                **self.gates.to_dict()}


class _Run:
    """The state of one run: counters, the open output, the gates."""

    def __init__(self, settings: GenerationSettings, manifest: Manifest, progress: ProgressCallback | None) -> None:
        self.settings, self.progress = settings, progress
        self.state_path = settings.out.with_name(settings.out.name + ".state.json")
        existing = _prepare_output(settings.out, settings.resume)
        self.state = _load_state(self.state_path) if settings.resume else {}
        self.next_index = int(self.state.get("requests", 0))
        self.seeds = _seed_rows(settings)
        references = read_examples(str(settings.seeds)).examples if settings.seeds else []
        if existing:
            references += read_examples(str(settings.out)).examples
        self.gates = expert_gates(manifest, exclude=settings.out, extra_references=references)
        self.report = GateReport()
        self.kept_before = self.kept = existing
        self.replies = self.failed = self.consecutive_failures = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.retries: Counter[str] = Counter()
        self.stop_reason: str | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def may_submit(self, in_flight: int) -> bool:
        settings = self.settings
        if self.stop_reason or self.kept + in_flight * settings.rows_per_request >= settings.count:
            return False
        if settings.max_tokens_total is not None:
            per_reply = self.tokens / self.replies if self.replies else settings.max_tokens
            if self.tokens + (in_flight + 1) * per_reply > settings.max_tokens_total:
                if not in_flight:
                    self.stop_reason = f"token budget ({settings.max_tokens_total}) reached"
                return False
        return True

    def take(self, reply: Reply, handle: Any) -> None:
        self.retries.update(reply.retries)
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        if reply.fatal:
            raise GenerationError(f"the endpoint refused the request: {reply.failure}",
                                  hint="check `--base-url`, `--model` and the API key")
        if reply.text is None:
            self._failed(reply)
        else:
            self.replies += 1
            self.consecutive_failures = 0
            for number, row in enumerate(rows_in_reply(reply.text), 1):
                self._judge(row, f"request {reply.index} row {number}", handle)
        self._save_state()
        report(self.progress, f"generating · kept {self.kept}/{self.settings.count} · rejected "
               f"{len(self.report.rejections)} · duplicates {self._duplicates()} · tokens {self.tokens}",
               self.kept, self.settings.count)

    def _failed(self, reply: Reply) -> None:
        if reply.budget_exhausted:
            self.stop_reason = f"request budget ({self.settings.max_requests}) reached"
            return
        if reply.failure == "stopped":
            return
        self.failed += 1
        self.consecutive_failures += 1
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            self.stop_reason = f"{self.consecutive_failures} requests in a row failed (last: {reply.failure})"

    def _judge(self, row: Any, location: str, handle: Any) -> None:
        if self.kept >= self.settings.count:
            return  # enough rows: a surplus row is neither judged nor written
        _, rejection = self.gates.check(row, location)
        self.report.record(rejection)
        if rejection is None:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()
            self.kept += 1

    def _duplicates(self) -> int:
        return sum(1 for r in self.report.rejections if r.reason in ("duplicate", "near_duplicate"))

    def _save_state(self) -> None:
        previous = self.state.get("tokens", {})
        atomic_write_text(self.state_path, json.dumps({
            "requests": self.next_index, "rows": self.kept,
            "tokens": {"prompt": previous.get("prompt", 0) + self.prompt_tokens,
                       "completion": previous.get("completion", 0) + self.completion_tokens},
            "model": self.settings.model}, indent=2) + "\n")


def generate_for_expert(expert: str | Path, count: int, *, progress: ProgressCallback | None = None,
                        **flags: Any) -> GenerationResult:
    """Load the expert's manifest, resolve the settings (flags, then environment, then manifest) and generate."""
    manifest = load_manifest(expert)
    return generate_dataset(resolve_settings(manifest, count, **flags), manifest, progress)


def generate_dataset(settings: GenerationSettings, manifest: Manifest,
                     progress: ProgressCallback | None = None) -> GenerationResult:
    """Generate until the output holds ``settings.count`` rows or a budget stops it; see the module doc."""
    run = _Run(settings, manifest, progress)
    stop = threading.Event()
    budget = RequestBudget(settings.max_requests)
    client = ChatClient(settings.base_url, settings.api_key, timeout_s=settings.timeout_s,
                        max_retries=settings.max_retries, budget=budget, stop=stop)
    replies: queue.Queue[Reply] = queue.Queue()
    in_flight = 0
    started = time.monotonic()
    try:
        with settings.out.open("a", encoding="utf-8") as handle:
            while run.kept < settings.count:
                while in_flight < settings.concurrency and run.may_submit(in_flight):
                    _start(client, run.next_index, request_body(settings, run.seeds, run.next_index), replies)
                    run.next_index += 1
                    in_flight += 1
                if not in_flight:
                    break
                try:
                    reply = replies.get(timeout=0.5)
                except queue.Empty:
                    continue
                in_flight -= 1
                run.take(reply, handle)
    finally:
        stop.set()  # backoff waits end now; requests still in flight die with their daemon threads
        if not in_flight:
            client.close()
    elapsed = time.monotonic() - started
    return GenerationResult(
        out=str(settings.out), count=settings.count, rows=run.kept, new_rows=run.kept - run.kept_before,
        complete=run.kept >= settings.count, stop_reason=run.stop_reason, requests=budget.used,
        replies=run.replies, failed_requests=run.failed, retries=dict(run.retries),
        prompt_tokens=run.prompt_tokens, completion_tokens=run.completion_tokens, elapsed_s=elapsed, gates=run.report)


def _start(client: ChatClient, index: int, body: dict[str, Any], replies: queue.Queue) -> None:
    """One request on a daemon thread (Ctrl-C must not wait for a slow endpoint); its reply goes to ``replies``."""
    thread = threading.Thread(target=lambda: replies.put(client.complete(index, body)), daemon=True,
                              name=f"generate-{index}")
    thread.start()


def _prepare_output(out: Path, resume: bool) -> int:
    """The rows already in ``out`` (0 when new); a torn last line (a kill mid-write) is cut off."""
    if not out.exists() or out.stat().st_size == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
        return 0
    if not resume:
        raise UsageError(f"`{out}` already holds rows", hint="pass `--resume` to continue it, or another `--out`")
    data = out.read_bytes()
    if not data.endswith(b"\n"):
        with out.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
        data = out.read_bytes()
    rows, problems = read_rows(resolve_source(str(out)))
    if problems:
        raise DatasetError(f"`{out}` has unreadable rows: {problems[0]}", hint="fix or remove them, then resume")
    return len(rows)


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _seed_rows(settings: GenerationSettings) -> list[dict[str, Any]]:
    if settings.seeds is None or not settings.seeds.is_file():
        raise UsageError(f"no seed examples (`{settings.seeds}`)" if settings.seeds else "no seed examples",
                         hint="pass `--seeds FILE` or set `training.generation.seeds` (a few rows in the "
                              "expert's format)")
    rows, _ = read_rows(resolve_source(str(settings.seeds)))
    seeds = [row for _, row in rows if isinstance(row, dict)]
    if not seeds:
        raise UsageError(f"`{settings.seeds}` holds no seed rows", hint="add a few rows in the expert's format")
    return seeds
