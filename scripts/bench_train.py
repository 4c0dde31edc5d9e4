#!/usr/bin/env python
"""Training speed: `expert-cli train` against a plain hand-written TRL SFT script, same model, data and steps.

Each configuration runs in its own process (so thread settings cannot leak), the configurations are
interleaved ``--repeats`` times and the median is kept, because this machine is shared. Reported per run:
training-loop tokens/s by the wall clock and by this process's CPU time (robust to other busy processes),
and the whole command's wall time. Writes ``bench-results/bench_train-<time>.json``.

    .venv/bin/python scripts/bench_train.py                       # ours vs TRL, plus packing
    .venv/bin/python scripts/bench_train.py --sweep               # also which TRL setting costs what
    .venv/bin/python scripts/bench_train.py --base-model /path/to/model --steps 40
    .venv/bin/python scripts/bench_train.py --data experts/expert-sql/data/train.jsonl   # real rows

Configurations: ``ours`` (expert-cli train, defaults), ``ours_packing`` (same, ``packing: true``),
``ours_grouped`` (same, ``group_by_length: true``: batches of similar lengths, little padding), ``trl`` (SFTTrainer with TRL's defaults, ``use_cpu=True`` as TRL demands on a CPU-only machine) and, with
``--sweep``, ``trl_1_thread``, ``trl_no_checkpointing`` and ``trl_fp32``, each changing one setting.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORDS = ["users", "orders", "name", "age", "count", "customer", "price", "product", "total", "city", "email", "country", "status", "created", "amount", "quantity", "title", "year", "rating"]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SWEEP = {"trl_1_thread": {"threads": 1}, "trl_no_checkpointing": {"gradient_checkpointing": False},
         "trl_fp32": {"bf16": False}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--base-model", default="builtin:tiny-qwen3", help="model name or folder")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--data", type=Path, help="train on the first --rows rows of this JSONL (any format "
                                                   "expert-cli reads; chat rows for the TRL baseline too)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="also time TRL with one setting changed at a time")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument("--worker", choices=["trl"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="{}", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_rows(count: int, seed: int = 0) -> list[dict[str, str]]:
    """Text-to-SQL-like prompt/completion pairs in ChatML, lengths varied like real data."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        table, column, other = rng.sample(WORDS, 3)
        schema = ", ".join(f"{w} TEXT" for w in rng.sample(WORDS, rng.randint(2, 8)))
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20)))
        prompt = (f"<|im_start|>system\nDialect: sql\nSchema:\nCREATE TABLE {table} ({schema});<|im_end|>\n"
                  f"<|im_start|>user\nshow {column} by {other}: {question}<|im_end|>\n<|im_start|>assistant\n")
        answer = f"SELECT {column}, COUNT(*) FROM {table} WHERE {other} > {rng.randint(1, 99)} GROUP BY {column};"
        rows.append({"prompt": prompt, "completion": answer})
    return rows


def training_rows(args: argparse.Namespace) -> list[dict]:
    """The rows every configuration trains on: ``--data``'s first ``--rows``, else synthetic ones."""
    if args.data is None:
        return make_rows(args.rows)
    with args.data.open(encoding="utf-8") as handle:
        return [json.loads(line) for line, _ in zip(handle, range(args.rows))]


def prepare(workdir: Path, args: argparse.Namespace, name: str = "expert", **config: bool) -> Path:
    """An expert folder whose manifest trains LoRA r8 on every linear layer, no evaluation split; ``config``
    adds training settings (``packing``, ``group_by_length``)."""
    expert = workdir / name
    (expert / "data").mkdir(parents=True, exist_ok=True)
    rows = training_rows(args)
    (expert / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (expert / "data" / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in make_rows(8, 1)),
                                                 encoding="utf-8")
    manifest = {
        "name": "expert-bench", "version": "0.0.1", "schema_version": "2.0", "description": "benchmark",
        "capabilities": ["database:sql"], "constraints": {"load_order": 0, "incompatible_with": [], "requires": []},
        "base_models": [{"name": args.base_model, "adapters": [
            {"type": "lora", "target_modules": TARGETS, "r": 8, "alpha": 16, "dropout": 0.05}]}],
        "training": {"dataset": {"path": "data/train.jsonl", "validation_path": "data/valid.jsonl"},
                     "config": {"method": "sft", "learning_rate": 1e-3, "batch_size": args.batch_size,
                                "epochs": 1, "max_seq_length": 512, "save_strategy": "no",
                                "load_best_model_at_end": False, **config}},
    }
    (expert / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return expert


def run_ours(expert: Path, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "expert_cli", "train", str(expert), "--max-steps", str(args.steps),
                           "--json", "-q"], capture_output=True, text=True, cwd=REPO, env=_env(), check=False)
    if done.returncode != 0:
        raise SystemExit(f"expert-cli train failed:\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    return {"tokens": summary["tokens"], "train_seconds": summary["train_seconds"],
            "tokens_per_second": summary["tokens_per_second"],
            "cpu_tokens_per_second": summary["tokens"] / max(summary["train_cpu_seconds"], 1e-9),
            "process_seconds": round(time.perf_counter() - started, 2)}


def run_trl(workdir: Path, args: argparse.Namespace, variant: dict) -> dict:
    started = time.perf_counter()
    command = [sys.executable, __file__, "--worker", "trl", "--workdir", str(workdir), "--base-model",
               args.base_model, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--rows", str(args.rows), "--variant", json.dumps(variant)]
    if args.data is not None:
        command += ["--data", str(args.data)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=_env(), check=False)
    if done.returncode != 0:
        raise SystemExit(f"TRL baseline failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    return result


def trl_worker(args: argparse.Namespace) -> None:
    """The plain script a user would write: load, LoRA config, SFTTrainer, train. Prints one JSON line."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from expert_cli.models.resolve import resolve_base_model

    variant = json.loads(args.variant)
    if "threads" in variant:
        torch.set_num_threads(variant.pop("threads"))
    path = resolve_base_model(args.base_model)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    config = SFTConfig(output_dir=str(args.workdir / "trl-out"), max_steps=args.steps, learning_rate=1e-3,
                       per_device_train_batch_size=args.batch_size, max_length=512, report_to="none",
                       save_strategy="no", use_cpu=True, include_num_input_tokens_seen="non_padding", **variant)
    clock = _Clock()
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(training_rows(args)),
                         processing_class=tokenizer, callbacks=[clock.callback(TrainerCallback)],
                         peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=TARGETS,
                                                task_type="CAUSAL_LM"))
    trainer.train()
    tokens = trainer.state.num_input_tokens_seen
    print(json.dumps({"tokens": tokens, "train_seconds": round(clock.wall, 2),
                      "tokens_per_second": round(tokens / clock.wall, 1),
                      "cpu_tokens_per_second": round(tokens / clock.cpu, 1)}))


class _Clock:
    """Times the training loop the same way expert-cli does: from train begin to the last step's end."""

    wall = cpu = 0.0

    def callback(self, base: type):
        clock = self

        class Timer(base):  # type: ignore[misc, valid-type]
            def on_train_begin(self, *a, **k):
                clock.t0, clock.c0 = time.perf_counter(), time.process_time()

            def on_step_end(self, *a, **k):
                clock.wall, clock.cpu = time.perf_counter() - clock.t0, time.process_time() - clock.c0

        return Timer()


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", EXPERT_NO_PROGRESS="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def median_of(runs: list[dict]) -> dict:
    keys = ("tokens_per_second", "cpu_tokens_per_second", "train_seconds", "process_seconds")
    return {**{k: round(statistics.median(r[k] for r in runs), 1) for k in keys}, "tokens": runs[0]["tokens"],
            "runs": runs}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        trl_worker(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        workdir = Path(tmp)
        plans = {"ours": lambda: run_ours(expert, args), "trl": lambda: run_trl(workdir, args, {}),
                 "ours_packing": lambda: run_ours(packed, args), "ours_grouped": lambda: run_ours(grouped, args)}
        if args.sweep:
            plans.update({name: (lambda v=v: run_trl(workdir, args, v)) for name, v in SWEEP.items()})
        expert, packed = prepare(workdir, args), prepare(workdir, args, "expert-packing", packing=True)
        grouped = prepare(workdir, args, "expert-grouped", group_by_length=True)
        runs: dict[str, list[dict]] = {name: [] for name in plans}
        for repeat in range(args.repeats):
            for name, plan in plans.items():
                runs[name].append(plan())
                print(f"[{repeat + 1}/{args.repeats}] {name}: {runs[name][-1]['tokens_per_second']:.0f} tok/s "
                      f"(cpu-time {runs[name][-1]['cpu_tokens_per_second']:.0f})", file=sys.stderr)
    results = {name: median_of(r) for name, r in runs.items()}
    report = _report(args, results)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"bench_train-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "results"}, indent=2))
    print(f"written to {target}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace, results: dict[str, dict]) -> dict:
    ours, trl = results["ours"], results["trl"]
    return {
        "base_model": args.base_model, "data": str(args.data or "synthetic"), "steps": args.steps, "batch_size": args.batch_size, "rows": args.rows,
        "repeats": args.repeats, "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
        "tokens_per_second": {name: r["tokens_per_second"] for name, r in results.items()},
        "cpu_time_tokens_per_second": {name: r["cpu_tokens_per_second"] for name, r in results.items()},
        "ratio_ours_vs_trl": round(ours["tokens_per_second"] / trl["tokens_per_second"], 2),
        "ratio_ours_vs_trl_cpu_time": round(ours["cpu_tokens_per_second"] / trl["cpu_tokens_per_second"], 2),
        "packing_speedup": round(results["ours_packing"]["tokens_per_second"] / ours["tokens_per_second"], 2),
        "grouped_speedup": round(results["ours_grouped"]["tokens_per_second"] / ours["tokens_per_second"], 2),
        "seconds_per_step": {name: round(r["train_seconds"] / args.steps, 3) for name, r in results.items()},
        "results": results,
    }


if __name__ == "__main__":
    raise SystemExit(main())
