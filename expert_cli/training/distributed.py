"""Data-parallel training: ``expert-cli train --processes N`` on one machine, and the rank rules that also hold
under ``accelerate launch`` / ``torchrun`` across machines.

Each process trains one replica of the adapter on its shard of every global batch; gradients are averaged
through ``torch.distributed`` (gloo on the CPU, NCCL on GPUs: the Trainer's accelerate state picks it from
``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``). The manifest's batch stays the *global* batch: each
process takes ``batch_size / N`` rows a step (or, when that does not divide, ``gradient_accumulation_steps /
N``), so N processes take the optimizer steps one process would, on the same rows. Rank 0 alone clears and
writes checkpoints, the adapter folder and the summary.

:func:`train_in_processes` is the launcher: it starts N workers of this module on 127.0.0.1, relays rank 0's
progress and notes (JSON lines on its stdout), and stops every worker when one fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ExpertError, TrainingError
from expert_cli.core.progress import ProgressCallback, report
from expert_cli.training.ranks import is_main_process

MARK = "@expert-cli-train "
MAX_PROCESSES = 64


# -- the launcher ------------------------------------------------------------------------------------
def train_in_processes(request: Any, processes: int, progress: ProgressCallback | None = None,
                       warn: Callable[[str], None] | None = None) -> Any:
    """Train ``request`` (a :class:`~expert_cli.training.trainer.TrainRequest`) in ``processes`` local
    processes; the result is rank 0's."""
    from expert_cli.training.trainer import TrainResult

    if not 2 <= processes <= MAX_PROCESSES:
        raise TrainingError(f"`--processes` must be from 1 to {MAX_PROCESSES}, not `{processes}`")
    report(progress, f"starting {processes} training processes", 0, None)
    with tempfile.TemporaryDirectory(prefix="expert-train-") as scratch:
        workers = _start_workers(request, processes, Path(scratch))
        try:
            document = _relay(workers, progress, warn)
        finally:
            _stop(workers)
    data = dict(document)
    for name in ("adapter_dir", "checkpoints_dir"):
        data[name] = Path(data[name])
    known = {f.name for f in fields(TrainResult)}
    return TrainResult(**{key: value for key, value in data.items() if key in known})


def _start_workers(request: Any, processes: int, scratch: Path) -> list[tuple[subprocess.Popen, Path]]:
    encoded = json.dumps({key: str(value) if isinstance(value, Path) else value
                          for key, value in asdict(request).items()})
    threads = str(max(1, (os.cpu_count() or 1) // processes))
    base = {**os.environ, "WORLD_SIZE": str(processes), "LOCAL_WORLD_SIZE": str(processes),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "EXPERT_NO_PROGRESS": "1"}
    base.setdefault("OMP_NUM_THREADS", threads)
    workers = []
    for rank in range(processes):
        log = scratch / f"rank{rank}.log"
        env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank)}
        with log.open("wb") as handle:
            process = subprocess.Popen([sys.executable, "-m", "expert_cli.training.distributed", encoded], env=env,
                                       stdout=subprocess.PIPE if rank == 0 else subprocess.DEVNULL, stderr=handle)
        workers.append((process, log))
    return workers


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _relay(workers: list[tuple[subprocess.Popen, Path]], progress: ProgressCallback | None,
           warn: Callable[[str], None] | None) -> dict[str, Any]:
    """Rank 0's events until its result; a worker that fails stops the run with its last stderr lines."""
    import threading

    main, _ = workers[0]
    events: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: events.extend(
        json.loads(line[len(MARK):]) for line in iter(main.stdout.readline, b"")  # type: ignore[union-attr]
        for line in [line.decode("utf-8", "replace")] if line.startswith(MARK)), daemon=True)
    reader.start()
    seen, result = 0, None
    while result is None:
        while seen < len(events):
            event, seen = events[seen], seen + 1
            if "progress" in event:
                report(progress, *event["progress"])
            elif "warn" in event and warn is not None:
                warn(event["warn"])
            elif "error" in event:
                raise TrainingError(event["error"]["message"], hint=event["error"].get("hint"))
            elif "result" in event:
                result = event["result"]
        if result is None:
            _check_alive(workers, reader)
            time.sleep(0.05)
    return result


def _check_alive(workers: list[tuple[subprocess.Popen, Path]], reader: Any) -> None:
    for rank, (process, log) in enumerate(workers):
        code = process.poll()
        if code is not None and (code != 0 or (rank == 0 and not reader.is_alive())):
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-6:]
            raise TrainingError(f"training process {rank} of {len(workers)} exited with code {code}"
                                + (f": {tail[-1]}" if tail else ""),
                                hint="\n".join(tail[:-1]) or "run it again with one process to see the error")


def _stop(workers: list[tuple[subprocess.Popen, Path]]) -> None:
    for process, _ in workers:
        if process.poll() is None:
            process.terminate()
    for process, _ in workers:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


# -- a worker ----------------------------------------------------------------------------------------
def _worker(encoded: str) -> int:
    """One rank: train, and on rank 0 send progress, notes and the result (or the error) to the launcher."""
    from expert_cli.training.trainer import TrainRequest, train_expert

    data = json.loads(encoded)
    for name in ("target", "output", "resume_from"):
        if data.get(name) is not None:
            data[name] = Path(data[name])
    main = is_main_process()

    def send(event: dict[str, Any]) -> None:
        if main:
            sys.stdout.write(MARK + json.dumps(event, default=str) + "\n")
            sys.stdout.flush()

    try:
        result = train_expert(TrainRequest(**data), progress=lambda *args: send({"progress": list(args)}),
                              warn=lambda message: send({"warn": message}))
    except ExpertError as exc:
        send({"error": {"message": exc.message, "hint": exc.hint}})
        return 1
    send({"result": result.to_dict()})
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
