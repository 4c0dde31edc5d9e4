#!/usr/bin/env python
"""Score the reference experts against their bare base model on held-out prompts, and check the router.

For every expert folder in --experts-dir: load its trained adapter (``weights/<slug>/adapter/``, or the
installed expert with --installed), answer the held-out ``data/test.jsonl`` prompts greedily with the
manifest's grammar, answer them again with the bare base, score both with ``expert_cli.scoring.metrics`` (SQL
executed in sqlite, Cypher in ladybug or by structure, JSON equality) and ask the router, among the same
experts, which one each prompt goes to. The work is in ``expert_cli.sdk.evaluation``.

    .venv/bin/python scripts/eval_experts.py                     # a table on stdout, progress on stderr
    .venv/bin/python scripts/eval_experts.py --json --limit 40   # {"experts": {...}, "wall_s": ...}
    .venv/bin/python scripts/eval_experts.py --installed         # the experts installed in $EXPERT_HOME
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ExpertError
from expert_cli.manifest.model import Manifest, load_manifest
from expert_cli.sdk.evaluation import Evaluation, evaluate_expert, load_eval_cases
from expert_cli.sdk.routing import reference_router

REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--experts-dir", type=Path, default=REPO_ROOT / "experts", help="folder of expert folders")
    parser.add_argument("--expert", action="append", default=[], help="only this expert (repeatable)")
    parser.add_argument("--base-model", default="builtin:tiny-qwen3", help="which of the manifests' base models")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test prompts of each expert")
    parser.add_argument("--installed", action="store_true", help="evaluate the installed experts, not weights/")
    parser.add_argument("--no-base", action="store_true", help="skip the bare-base comparison")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts decoded together (default 16)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--cases-out", type=Path, default=None, help="also write every answer and score here")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return parser.parse_args(argv)


def reference_manifests(experts_dir: Path, only: list[str]) -> list[Manifest]:
    folders = sorted(p for p in experts_dir.iterdir() if (p / "manifest.json").is_file())
    manifests = [load_manifest(folder) for folder in folders]
    if only:
        wanted = {name if name.startswith("expert-") else f"expert-{name}" for name in only}
        manifests = [m for m in manifests if m.name in wanted]
    if not manifests:
        raise ExpertError(f"no expert folders with a `manifest.json` in `{experts_dir}`"
                          + (f" named {', '.join(only)}" if only else ""))
    return manifests


def progress_printer(quiet: bool) -> Any:
    if quiet or os.environ.get("EXPERT_NO_PROGRESS", "") not in ("", "0"):
        return None
    state = {"task": None}

    def show(task: str, done: float, total: float | None) -> None:
        if task.endswith("scoring") and done != total:
            return
        end = "\n" if done == total else ""
        if sys.stderr.isatty():
            print(f"\r  {task} {int(done)}/{int(total or 0)}", end=end, file=sys.stderr, flush=True)
        elif done == total or state["task"] != task:
            print(f"  {task} {int(done)}/{int(total or 0)}", file=sys.stderr, flush=True)
        state["task"] = task

    return show


def evaluate_all(args: argparse.Namespace) -> tuple[list[Evaluation], float]:
    started = time.perf_counter()
    manifests = reference_manifests(args.experts_dir, args.expert)
    router = reference_router(manifests, installed=args.installed)
    progress = progress_printer(args.quiet)
    evaluations = []
    for manifest in manifests:
        cases = load_eval_cases(manifest, limit=args.limit)
        source = manifest.name if args.installed else manifest.root
        evaluations.append(evaluate_expert(source, cases, base_model=args.base_model, compare_base=not args.no_base,
                                           router=router, device=args.device, batch_size=args.batch_size,
                                           progress=progress))
    return evaluations, time.perf_counter() - started


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def render_table(evaluations: list[Evaluation], wall: float) -> str:
    header = ("EXPERT", "METRIC", "N", "EXPERT", "BASE", "HELD-OUT SCHEMA", "HELD-OUT TEMPLATE", "ROUTER", "TIME")
    rows = [header]
    for ev in evaluations:
        rows.append((ev.name, ev.metric, str(ev.n), percent(ev.expert_score), percent(ev.base_score),
                     percent(ev.held_out_score("schema")), percent(ev.held_out_score("template")),
                     percent(ev.router_accuracy), f"{ev.wall_seconds:.0f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.append(f"base model: {evaluations[0].base_model}; total {wall:.0f}s. ROUTER = share of the expert's "
                 "prompts routed to it first.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from expert_cli.models.loading import disable_loading_progress

        disable_loading_progress()  # this script draws its own progress; no "Loading weights" bar per expert
    except ImportError:  # no torch/transformers: evaluate_all says what to install
        pass
    try:
        evaluations, wall = evaluate_all(args)
    except ExpertError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code or 1
    if args.cases_out:
        document = {ev.name: ev.to_dict(cases=True) for ev in evaluations}
        args.cases_out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.json:
        summary = {ev.name: ev.summary() for ev in evaluations}
        print(json.dumps({"experts": summary, "wall_s": round(wall, 2)}, indent=2))
    else:
        print(render_table(evaluations, wall))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
