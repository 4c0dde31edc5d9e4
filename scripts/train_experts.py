#!/usr/bin/env python
"""Train several experts side by side (what `expert-cli train DIR --base-model BASE` does, once per DIR).

Each expert trains in its own process; a small base trains on one CPU thread (see
``expert_cli.training.model.cpu_threads``), so on a 2-core machine two or three trainings together finish in
far less time than one after another. One status line on stderr shows every expert's step, loss and speed;
a summary follows. Used by ``scripts/quickstart.sh``.

    .venv/bin/python scripts/train_experts.py experts/expert-sql experts/expert-neo4j --base-model builtin:tiny-qwen3
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import sys
import time
from pathlib import Path
from typing import Any

STATUS_EVERY_S = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("experts", nargs="+", type=Path, help="expert folders")
    parser.add_argument("--base-model", default=None, help="base model (name or slug in the manifests)")
    parser.add_argument("--max-steps", type=int, default=None, help="override every manifest's max_steps")
    parser.add_argument("--jobs", type=int, default=None, help="trainings at once (default: all)")
    return parser.parse_args(argv)


def train_one(folder: Path, base_model: str | None, max_steps: int | None, events: Any) -> None:
    """Worker process: train one expert, reporting progress, the result or the error on ``events``."""
    from expert_cli.core.errors import ExpertError
    from expert_cli.training.trainer import TrainRequest, train_expert

    name = folder.name
    last = [0.0]

    def progress(task: str, done: float, total: float | None) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or (total and done >= total):
            last[0] = now
            events.put((name, "progress", (task, done, total)))

    try:
        result = train_expert(TrainRequest(target=folder, base_model=base_model, max_steps=max_steps),
                              progress=progress, warn=lambda message: None)
    except ExpertError as exc:
        events.put((name, "error", f"{exc.message}" + (f" (hint: {exc.hint})" if exc.hint else "")))
        return
    events.put((name, "done", result.to_dict()))


def status_line(states: dict[str, dict[str, Any]], started: float) -> str:
    parts = []
    for name, state in states.items():
        if "result" in state:
            parts.append(f"{name} done")
        elif "progress" in state:
            task, done, total = state["progress"]
            count = f" {int(done)}/{int(total)}" if total else ""
            loss = f" loss {task.split('loss ')[1].split(' ')[0]}" if "loss " in task else ""
            parts.append(f"{name} {task.split(' · ')[0]}{count}{loss}")
        else:
            parts.append(f"{name} {state.get('status', 'waiting')}")
    elapsed = int(time.monotonic() - started)
    return f"[{elapsed // 60}:{elapsed % 60:02d}] " + " | ".join(parts)


def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    pending = list(args.experts)
    jobs = max(1, args.jobs or len(pending))
    states: dict[str, dict[str, Any]] = {folder.name: {} for folder in pending}
    running: dict[str, Any] = {}
    started = last_print = time.monotonic()
    while pending or running:
        while pending and len(running) < jobs:
            folder = pending.pop(0)
            process = context.Process(target=train_one, args=(folder, args.base_model, args.max_steps, events))
            process.start()
            running[folder.name] = process
            states[folder.name].update(status="starting", began=time.monotonic())
        try:
            name, kind, payload = events.get(timeout=1.0)
            states[name][kind if kind != "done" else "result"] = payload
            if kind in ("done", "error"):
                running.pop(name).join()
                states[name]["wall_s"] = time.monotonic() - states[name]["began"]
                print(f"  {name}: {'trained' if kind == 'done' else 'FAILED: ' + payload} in "
                      f"{states[name]['wall_s']:.0f} s", file=sys.stderr, flush=True)
        except queue.Empty:
            for name, process in list(running.items()):
                if not process.is_alive():  # died without a word (killed, out of memory)
                    running.pop(name)
                    states[name]["error"] = f"the training process exited with code {process.exitcode}"
        if time.monotonic() - last_print >= STATUS_EVERY_S:
            last_print = time.monotonic()
            print(status_line(states, started), file=sys.stderr, flush=True)
    return states


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [str(folder) for folder in args.experts if not (folder / "manifest.json").is_file()]
    if missing:
        print(f"error: no `manifest.json` in `{missing[0]}`", file=sys.stderr)
        return 2
    started = time.monotonic()
    states = run(args)
    print(f"trained {len(states)} expert(s) in {time.monotonic() - started:.0f} s:", file=sys.stderr)
    for name, state in states.items():
        result = state.get("result")
        if result is None:
            print(f"  {name}: failed: {state.get('error')}", file=sys.stderr)
            continue
        print(f"  {name}: {result['steps']} steps, train loss {result['train_loss']:.4f}, "
              f"{result['tokens_per_second']:,.0f} tok/s, {state['wall_s']:.0f} s -> {result['adapter_dir']}",
              file=sys.stderr)
    return 0 if all("result" in state for state in states.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
