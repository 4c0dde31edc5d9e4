"""One thread owns the model: requests queue up, join the running batch at the next step, stream out as they go.

    scheduler = Scheduler(manager, max_batch=16, max_queue=64)
    job = scheduler.submit({"expert-sql": 1.0}, Request("Users older than 30"), on_event=print)
    result = job.wait()                                 # or consume the events as they come

Every job is prepared (template, grammar, experts loaded) on the scheduler's thread, so loading and
evicting adapters never races a running row; experts used by running rows are pinned against eviction,
and a job whose experts would push a running one out waits until that row ends. A full queue refuses new
jobs (:class:`OverloadedError`): memory stays bounded. Events are ``("delta", text)`` pieces whose
concatenation is the cleaned answer, then ``("done", Result)`` or ``("error", ExpertError)``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from expert_cli.core.errors import ExpertError, InferenceError
from expert_cli.runtime.results import Result
from expert_cli.sdk.manager import ExpertManager, Names, composition
from expert_cli.sdk.requests import Request

EventSink = Callable[[str, Any], None]


class OverloadedError(ExpertError):
    """The queue is full; try again shortly."""


@dataclass(eq=False)
class Job:
    """One request on its way through the scheduler."""

    names: Names
    request: Request
    on_event: EventSink | None = None
    submitted: float = field(default_factory=time.perf_counter)
    result: Result | None = None
    error: ExpertError | None = None
    first_token_s: float | None = None
    experts: list[str] = field(default_factory=list)
    _done: threading.Event = field(default_factory=threading.Event)
    _cleaner: Any = None
    _row: Any = None
    _prepared: Any = None
    _cancelled: bool = False

    def cancel(self) -> None:
        """Stop generating (a client went away); the row leaves the batch at the next step."""
        self._cancelled = True
        if self._row is not None:
            self._row.cancelled = True

    def wait(self, timeout: float | None = None) -> Result:
        """Block until the job ends; its Result, or its error raised."""
        if not self._done.wait(timeout):
            raise InferenceError("the request did not finish in time")
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]

    def _emit(self, kind: str, payload: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, payload)


@dataclass
class SchedulerStats:
    """What the scheduler is doing now; the server exports these as metrics."""

    queued: int = 0
    running: int = 0
    steps: int = 0
    completed: int = 0


class Scheduler:
    """Continuous batching over an :class:`~expert_cli.sdk.manager.ExpertManager`; see the module docstring."""

    def __init__(self, manager: ExpertManager, *, max_batch: int = 16, max_queue: int = 64,
                 on_finish: Callable[[Job], None] | None = None) -> None:
        if max_batch < 1 or max_queue < 1:
            raise InferenceError("`max_batch` and `max_queue` must be at least 1")
        self.manager = manager
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.on_finish = on_finish
        self.stats = SchedulerStats()
        self._queue: collections.deque[Job] = collections.deque()
        self._calls: collections.deque[tuple[Callable[[], Any], Any]] = collections.deque()
        self._batches: dict[int, Any] = {}  # id(base) -> ContinuousBatch
        self._jobs: dict[int, Job] = {}  # id(LiveRow) -> Job
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="expert-cli-scheduler", daemon=True)
        self._thread.start()

    # -- the public side (any thread) -------------------------------------------------------------
    def submit(self, names: Names, request: Request, on_event: EventSink | None = None) -> Job:
        """Queue a request; raises :class:`OverloadedError` when the queue is full or shutting down."""
        job = Job(names, request, on_event)
        with self._wake:
            if self._stopping:
                raise OverloadedError("the server is shutting down", hint="retry on another instance")
            if len(self._queue) >= self.max_queue:
                raise OverloadedError(f"the queue is full ({self.max_queue} requests waiting)",
                                      hint="retry in a moment")
            self._queue.append(job)
            self.stats.queued = len(self._queue)
            self._wake.notify()
        return job

    def call(self, function: Callable[[], Any], timeout: float = 300.0) -> Any:
        """Run ``function`` on the scheduler's thread between two steps (load/unload experts); its result."""
        box: dict[str, Any] = {}
        done = threading.Event()
        with self._wake:
            self._calls.append((function, (box, done)))
            self._wake.notify()
        if not done.wait(timeout):
            raise InferenceError("the scheduler did not answer in time")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def pinned(self) -> set[str]:
        """Experts that running rows use."""
        return {name for job in self._jobs.values() for name in job.experts}

    def close(self, drain_seconds: float = 30.0) -> None:
        """Stop taking jobs, let running rows finish (up to ``drain_seconds``), cancel the rest, stop."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        deadline = time.monotonic() + drain_seconds
        while (self._jobs or self._queue) and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._wake:
            for job in list(self._queue) + list(self._jobs.values()):
                job.cancel()
            self._wake.notify()
        self._thread.join(timeout=5)

    # -- the scheduler's thread -------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not (self._queue or self._calls or self._jobs or self._stopping):
                    self._wake.wait()
                if self._stopping and not (self._queue or self._jobs or self._calls):
                    return
            self._run_calls()
            self._admit()
            self._step()
            time.sleep(0)  # let the event loop run between steps (a small model's step holds the GIL)

    def _run_calls(self) -> None:
        while self._calls:
            function, (box, done) = self._calls.popleft()
            try:
                box["value"] = function()
            except ExpertError as exc:
                box["error"] = exc
            finally:
                done.set()

    def _admit(self) -> None:
        running = len(self._jobs)
        admitted: dict[int, list[Job]] = {}
        skipped: list[Job] = []
        while self._queue and running < self.max_batch:
            with self._wake:
                job = self._queue.popleft()
                self.stats.queued = len(self._queue)
            if job._cancelled:
                self._fail(job, InferenceError("the request was cancelled before it started"))
                continue
            if not self._fits(job):
                skipped.append(job)
                continue
            if self._prepare(job):
                admitted.setdefault(id(job._prepared.base), []).append(job)
                running += 1
        with self._wake:
            self._queue.extendleft(reversed(skipped))
        for jobs in admitted.values():
            self._join(jobs)

    def _fits(self, job: Job) -> bool:
        """Whether the job's experts can be loaded without evicting an expert a running row uses."""
        limit = self.manager.max_loaded_experts
        if limit is None:
            return True
        try:
            wanted = {name for name, _ in composition(job.names)}
        except ExpertError:
            return True  # the error surfaces when the job is prepared
        return len(self.pinned() | wanted) <= limit

    def _prepare(self, job: Job) -> bool:
        from expert_cli.prompts.cleaning import StreamCleaner

        self.manager.pinned = self.pinned()
        try:
            job._prepared = self.manager.prepare(job.names, job.request)
        except ExpertError as exc:
            self._fail(job, exc)
            return False
        job.experts = [name for name, _ in composition(job.names)]
        params = job._prepared.row.params
        job._cleaner = StreamCleaner(params.stop, show_reasoning=job._prepared.row.show_reasoning)
        return True

    def _join(self, jobs: list[Job]) -> None:
        from expert_cli.runtime.continuous import ContinuousBatch

        base = jobs[0]._prepared.base
        batch = self._batches.get(id(base))
        if batch is None:
            batch = self._batches[id(base)] = ContinuousBatch(base)
        if len(batch) and not batch.joinable:  # a cache that cannot be joined: these wait for the batch to end
            with self._wake:
                self._queue.extendleft(reversed(jobs))
            return
        try:
            rows = batch.admit([job._prepared.row for job in jobs])
        except ExpertError as exc:
            for job in jobs:
                self._fail(job, exc)
            return
        for job, row in zip(jobs, rows):
            job._row, self._jobs[id(row)] = row, job
            if job._cancelled:
                row.cancelled = True
        self._deliver(batch)

    def _step(self) -> None:
        for key, batch in list(self._batches.items()):
            if not len(batch):
                del self._batches[key]
                continue
            try:
                batch.step()
            except ExpertError as exc:
                for row in list(batch.rows):
                    self._fail(self._jobs.pop(id(row)), exc)
                del self._batches[key]
                continue
            self.stats.steps += 1
            self._deliver(batch)
        self.stats.running = len(self._jobs)

    def _deliver(self, batch: Any) -> None:
        """Send each row's new text; complete the rows that finished."""
        for row in batch.rows:
            job = self._jobs[id(row)]
            if job.first_token_s is None and row.generated:
                job.first_token_s = time.perf_counter() - job.submitted
            if row.finish is None:
                piece = job._cleaner.feed(row.raw_text)
                if piece:
                    job._emit("delta", piece)
        for row in batch.take_finished():
            self._complete(self._jobs.pop(id(row)), row)

    def _complete(self, job: Job, row: Any) -> None:
        from expert_cli.runtime.generate import to_result

        piece = job._cleaner.finish(row.raw_text)
        if piece:
            job._emit("delta", piece)
        output = row.output()
        output.seconds = time.perf_counter() - job.submitted
        job.result = to_result(output, job._prepared.row, job._prepared.members, job._prepared.base)
        self.stats.completed += 1
        job._emit("done", job.result)
        job._done.set()
        if self.on_finish is not None:
            self.on_finish(job)

    def _fail(self, job: Job, error: ExpertError) -> None:
        job.error = error
        job._emit("error", error)
        job._done.set()
        if self.on_finish is not None:
            self.on_finish(job)
