"""Beyond one machine, measured: the gateway's added latency (``serve --upstream``), training tokens/s with
1 vs 2 processes (``train --processes``) and serving throughput with 1 vs 2 Ray replicas (``serve --ray``),
each against a same-run baseline. Writes ``bench-results/scale.json``.

    flock /tmp/heavy.lock .venv/bin/python scripts/bench_scale.py [--requests 200] [--skip-train] [--skip-ray]

Gateway: a real ``expert-cli serve`` with two LoRA experts on ``builtin:tiny-qwen3`` and a real
``expert-cli serve --upstream`` in front of it, both on 127.0.0.1; the same one-token greedy chat request is
sent alternately to the upstream directly (the baseline) and through the gateway, over kept-alive
connections, by name and by ``model=auto`` (routing included), whole and streamed. The added latency is the
median of the paired differences. Training: ``expert-cli train --json`` on the demo base, one process then two
(the same global batch), the training loop's tokens/s as the trainer counts them, and the whole command's time.
Ray: 8 concurrent clients against the single-process server (baseline), then 1 and 2 Ray replicas.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE = "builtin:tiny-qwen3"
PROMPTS = {"expert-sql": "write the sql query over the users table", "auto": "write the sql query over the users table"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--requests", type=int, default=200, help="pairs of requests per case")
    parser.add_argument("--train-rows", type=int, default=256)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-gateway", action="store_true")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--ray-requests", type=int, default=48, help="requests per Ray configuration")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    return parser.parse_args()


def install_experts(home: Path, work: Path) -> None:
    """Two LoRA experts on the demo base, routed by their keywords."""
    sys.path.insert(0, str(REPO / "tests"))
    from expert_factory import make_expert

    from expert_cli.models.resolve import resolve_base_model
    from expert_cli.sdk.packages import install_expert, install_options

    os.environ["EXPERT_HOME"] = str(home)
    base = resolve_base_model(BASE)
    for name, seed, words in (("expert-sql", 1, ["sql", "table"]), ("expert-neo4j", 2, ["cypher", "graph"])):
        folder = make_expert(base, work / name, name, "lora", seed)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["base_models"][0]["name"] = BASE
        manifest["routing"] = {"keywords": words, "priority": 0.7}
        (folder / "manifest.json").write_text(json.dumps(manifest))
        install_expert(str(folder), install_options(allow_unsigned=True))


@contextmanager
def server(home: Path, *args: str, env: dict[str, str] | None = None):
    import httpx

    env = {**os.environ, "EXPERT_HOME": str(home), "HF_HUB_OFFLINE": "1", "EXPERT_NO_PROGRESS": "1", "NO_COLOR": "1",
           **(env or {})}
    process = subprocess.Popen([sys.executable, "-m", "expert_cli", "serve", "--port", "0", *args], cwd=REPO,
                               env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(iter(process.stderr.readline, "")), daemon=True).start()
    try:
        for _ in range(900):
            url = next((line.split()[-1] for line in log if line.startswith("serving on ")), None)
            if url and httpx.get(f"{url}/health", timeout=5).status_code == 200:
                break
            if process.poll() is not None:
                raise RuntimeError("".join(log))
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start: " + "".join(log))
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()


def timed(client, url: str, model: str, stream: bool) -> float:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPTS.get(model, PROMPTS["auto"])}],
            "max_tokens": 1, "temperature": 0, "stream": stream}
    started = time.perf_counter()
    if stream:
        with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            for _ in response.iter_lines():
                pass
    else:
        response = client.post(f"{url}/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return (time.perf_counter() - started) * 1000


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered), 2), "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2)}


def bench_gateway(requests: int) -> dict:
    import httpx

    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        install_experts(home, Path(scratch))
        with server(home, "--all") as (upstream, _), \
                server(home, "--all", "--upstream", f"{upstream}/v1") as (gateway, gateway_pid):
            figures = {}
            with httpx.Client(timeout=60) as client:
                for model, stream in (("expert-sql", False), ("auto", False), ("expert-sql", True)):
                    for _ in range(10):  # warm both paths
                        timed(client, upstream, model, stream), timed(client, gateway, model, stream)
                    direct, through = [], []
                    cpu_before = cpu_ms(gateway_pid)
                    for index in range(requests):
                        first, second = (upstream, gateway) if index % 2 else (gateway, upstream)
                        a, b = timed(client, first, model, stream), timed(client, second, model, stream)
                        d, g = (a, b) if first == upstream else (b, a)
                        direct.append(d)
                        through.append(g)
                    gateway_cpu = (cpu_ms(gateway_pid) - cpu_before) / requests
                    added = [g - d for d, g in zip(direct, through)]
                    figures[f"{model}{'_stream' if stream else ''}"] = {
                        "direct": ms(direct), "through_gateway": ms(through),
                        "added_median_ms": round(statistics.median(added), 2),
                        "gateway_cpu_ms_per_request": round(gateway_cpu, 2), "requests": requests}
    worst = max(case["gateway_cpu_ms_per_request"] for case in figures.values())
    return {**figures, "goal_added_under_ms": 5, "goal_met_by_gateway_cpu": worst < 5,
            "load_average": os.getloadavg()}


def cpu_ms(pid: int) -> float:
    """The process's user + system CPU time so far, in ms (robust to other busy processes, unlike wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def bench_ray(requests: int) -> dict:
    """Throughput under 8 concurrent clients (32 tokens each, two experts): the single-process server (the
    baseline; also with one OpenMP thread, as Ray starts each replica with ``num_cpus`` = 1), then ``serve --ray``
    with 1 and 2 model replicas."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def load(url: str) -> dict:
        def one(index: int) -> int:
            body = {"model": ("expert-sql", "expert-neo4j")[index % 2], "max_tokens": 32, "ignore_eos": True,
                    "temperature": 0, "messages": [{"role": "user", "content": f"list the users {index}"}]}
            response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=300)
            assert response.status_code == 200, response.text
            return response.json()["usage"]["completion_tokens"]

        for index in range(8):
            one(index)  # warm: every replica has seen both experts
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            tokens = sum(pool.map(one, range(requests)))
        seconds = time.perf_counter() - started
        return {"requests_per_second": round(requests / seconds, 2), "tokens_per_second": round(tokens / seconds, 1),
                "seconds": round(seconds, 2), "requests": requests}

    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        install_experts(home, Path(scratch))
        with server(home, "--all") as (url, _):
            figures["single_process"] = load(url)
        with server(home, "--all", env={"OMP_NUM_THREADS": "1"}) as (url, _):  # as Ray runs each replica
            figures["single_process_1_thread"] = load(url)
        for replicas in (1, 2):
            with server(home, "--all", "--ray", "--replicas", str(replicas)) as (url, _):
                figures[f"ray_{replicas}_replica{'s' if replicas > 1 else ''}"] = load(url)
    one, two = figures["ray_1_replica"], figures["ray_2_replicas"]
    return {**figures, "speedup_2_vs_1": round(two["tokens_per_second"] / one["tokens_per_second"], 2),
            "load_average": os.getloadavg()}


def bench_training(rows: int) -> dict:
    words = ["users", "orders", "name", "age", "count", "price", "product", "city", "email", "status"]
    rng = random.Random(0)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for processes in (1, 2):
            folder = Path(scratch) / f"expert-{processes}"
            (folder / "data").mkdir(parents=True)
            lines = []
            for _ in range(rows):
                table, column = rng.sample(words, 2)
                lines.append(json.dumps({"messages": [
                    {"role": "user", "content": f"show {column} from {table} " + " ".join(rng.sample(words, 5))},
                    {"role": "assistant", "content": f"SELECT {column} FROM {table};"}]}))
            (folder / "data" / "train.jsonl").write_text("\n".join(lines) + "\n")
            manifest = {"name": "expert-bench", "version": "0.1.0", "schema_version": "2.0",
                        "description": "bench", "capabilities": ["database:sql"],
                        "base_models": [{"name": BASE, "adapters": [
                            {"type": "lora", "target_modules": ["q_proj", "v_proj"], "r": 8, "alpha": 16}]}],
                        "training": {"dataset": {"path": "data/train.jsonl"},
                                     "config": {"method": "sft", "batch_size": 8, "epochs": 1, "logging_steps": 5}}}
            (folder / "manifest.json").write_text(json.dumps(manifest))
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "expert_cli", "train", str(folder), "--json",
                                   "--device", "cpu", "--processes", str(processes)], capture_output=True, text=True, check=False,
                                  env={**os.environ, "EXPERT_HOME": str(Path(scratch) / "home"),
                                       "HF_HUB_OFFLINE": "1"}, cwd=REPO)
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-2000:])
            summary = json.loads(done.stdout)
            results[f"{processes}_process{'es' if processes > 1 else ''}"] = {
                "tokens_per_second": summary["tokens_per_second"], "train_seconds": summary["train_seconds"],
                "command_seconds": round(time.perf_counter() - started, 1), "steps": summary["steps"],
                "train_loss": summary["train_loss"]}
    one, two = results["1_process"], results["2_processes"]
    return {**results, "speedup": round(two["tokens_per_second"] / one["tokens_per_second"], 2), "rows": rows}


def main() -> None:
    args = parse_args()
    figures: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                 "python": platform.python_version()}, "base_model": BASE}
    if not args.skip_gateway:
        figures["gateway"] = bench_gateway(args.requests)
    if not args.skip_train:
        figures["training"] = bench_training(args.train_rows)
    if not args.skip_ray:
        figures["ray"] = bench_ray(args.ray_requests)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "scale.json"  # sections skipped this run keep their last figures
    kept = json.loads(path.read_text()) if path.is_file() else {}
    figures = {**kept, **figures}
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
