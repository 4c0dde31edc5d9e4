"""Benchmark `expert-cli serve` (continuous batching across experts) against the server users write today.

    .venv/bin/python scripts/bench_serve.py [--model demo|qwen3-shape] [--layers 4] [--experts 4]
                                            [--clients 1,4,16] [--requests 96] [--max-tokens 32]
                                            [--spread 16] [--ramp 0.5] [--rss-requests 2000]
                                            [--no-baseline] [--out serve]

Both servers run as subprocesses on 127.0.0.1 over the same base and the same random LoRA adapters (r=16 on
every projection), with the same greedy requests spread round-robin over the experts, output lengths
32 +- 16 tokens (`--spread`; each length forced with `ignore_eos` / `min_new_tokens`). Every client sends
its next request when its last one ends (a closed loop, as vLLM's `--max-concurrency`), the clients
starting over `--ramp` seconds. With `--spread 0 --ramp 0` every round of requests arrives at once (a burst:
the last of 16 prompts waits for all 16 prefills):

- ours: `expert-cli serve --all`, streaming; time to first token is the first content chunk;
- baseline: a Starlette + uvicorn server around one PEFT `PeftModel` holding every adapter, which takes a
  lock, calls `set_adapter(name)` and `generate` per request (S-LoRA's "PEFT" baseline; the FastAPI version
  users write differs only in routing sugar); time to first token is the whole latency (no streaming);
- one at a time: our server with one client, the same request list;
- `transformers serve --continuous-batching` (its paged-attention scheduler): it serves whole models, not
  adapters, so each expert is merged into a copy of the base (PEFT's `merge_and_unload`, the same weights the
  adapter adds) and named by its folder; it runs one model process per copy. Time to first token is its
  first chunk with text (answer or reasoning). `--no-transformers` skips it.

Writes `bench-results/serve.json` and `.md`. Figures depend on the machine: run it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPTS = ["List the users older than 30.", "Count the orders per customer.", "Which ships are tankers?",
           "Name the three largest cities.", "What is the capital of France?", "Sort the products by price."]


# -- setup ----------------------------------------------------------------------------------------------
def base_folder(args: argparse.Namespace, root: Path) -> Path:
    if args.model == "demo":
        from expert_cli.models.resolve import resolve_base_model

        return resolve_base_model("builtin:tiny-qwen3")
    from bench_runtime import build_base  # the Qwen3-0.6B-shaped random model bench_runtime uses

    folder = root / "qwen3-shape"
    build_base(folder, args.layers)
    return folder


def make_expert(base: Path, folder: Path, name: str, seed: int) -> Path:
    """A random r=16 LoRA on every projection, saved by PEFT, with a manifest around it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=TARGETS,
                                                  init_lora_weights=False))
    for parameter in peft_model.parameters():
        if parameter.requires_grad:
            parameter.data.mul_(0.2)  # random but gentle: answers stay text-like
    peft_model.save_pretrained(folder)
    manifest = {"name": name, "version": "0.1.0", "schema_version": "2.0", "description": f"bench {name}",
                "base_models": [{"name": str(base), "prompt_template": "qwen3",
                                 "adapters": [{"type": "lora", "target_modules": TARGETS, "r": 16, "alpha": 32}]}],
                "capabilities": ["bench"], "training": {"decoding": {"temperature": 0}}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def merged_copies(base: Path, folders: list[Path], root: Path) -> list[str]:
    """Each expert merged into a full copy of the base, with the base's tokenizer: what `transformers serve`
    (whole models, one per name) needs to answer for the expert. Returns the folders, the names it serves."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    copies = []
    for folder in folders:
        target = root / "merged" / folder.name
        with torch.no_grad():
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), folder).merge_and_unload()
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
        copies.append(str(target))
    return copies


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def transformers_serve(env: dict[str, str]) -> tuple[Process, str]:
    """`transformers serve` with continuous batching on 127.0.0.1; its KV cache capped at 64 pages of 256 tokens
    per model (the default sizes it to 90% of free memory, ~12 GB here for each model's process)."""
    port = free_port()
    executable = Path(sys.executable).with_name("transformers")
    process = Process([str(executable), "serve", "--continuous-batching", "--cb-num-blocks", "64", "--host",
                       "127.0.0.1", "--port", str(port), "--device", "cpu", "--model-timeout", "-1",
                       "--log-level", "warning"], env)
    return process, f"http://127.0.0.1:{port}"


def install_all(folders: list[Path], home: Path) -> None:
    os.environ["EXPERT_HOME"] = str(home)
    from expert_cli.sdk.packages import install_expert, install_options

    for folder in folders:
        install_expert(str(folder), install_options(allow_unsigned=True))


# -- servers ----------------------------------------------------------------------------------------------
class Process:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(iter(self.process.stderr.readline, "")),
                         daemon=True).start()

    def url(self, timeout: float = 600, known: str | None = None) -> str:
        """The server's address once /health answers: ``known``, else the one its ``serving on URL`` line gave."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            url = known or next((line.split()[-1] for line in self.lines if line.startswith("serving on ")), None)
            if url:
                try:
                    if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                        return url
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise SystemExit("a server did not start:\n" + "".join(self.lines[-20:]))

    def rss(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as handle:
            return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmRSS"))

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the server process and the processes it started (all threads)."""
        total = 0
        for pid in self._tree():
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:  # it ended meanwhile
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def _tree(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as handle:
                        parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
                except OSError:
                    continue
        tree = [self.process.pid]
        for pid in tree:
            tree += [child for child, parent in parents.items() if parent == pid]
        return tree

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def peft_server(base: str, adapters: list[str]) -> None:
    """The baseline: one PeftModel, a lock, set_adapter + generate per request."""
    import socket

    import torch
    import uvicorn
    from peft import PeftModel
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(os.cpu_count() or 1)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapters[0],
                                      adapter_name=Path(adapters[0]).name)
    for path in adapters[1:]:
        model.load_adapter(path, adapter_name=Path(path).name)
    model.eval()
    lock = threading.Lock()

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        text = tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, return_tensors="pt")
        with lock, torch.inference_mode():
            model.set_adapter(body["model"])
            out = model.generate(**ids, max_new_tokens=body["max_tokens"], min_new_tokens=body["max_tokens"],
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        new = out[0, ids["input_ids"].shape[1]:]
        return {"choices": [{"message": {"content": tokenizer.decode(new, skip_special_tokens=True)}}],
                "usage": {"completion_tokens": int(new.shape[0])}}

    async def chat(request: Any) -> Any:
        import asyncio

        return JSONResponse(await asyncio.to_thread(answer, await request.json()))

    async def health(request: Any) -> Any:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/health", health)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(f"serving on http://127.0.0.1:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


# -- load -------------------------------------------------------------------------------------------------
# One asyncio process speaks HTTP/1.1 over plain sockets: on a 2-core machine the load generator shares the
# CPU with the server, and a client that costs more than the server measures itself (16 threads of httpx
# streams took 2.7x the server's CPU time). Each request opens its own connection, as `httpx.post` did.
def exact_length(server: str, tokens: int) -> dict[str, Any]:
    """The request field that makes ``server`` write exactly ``tokens`` tokens (the PEFT server always does)."""
    if server == "transformers":  # it refuses fields it does not know, takes generation settings as JSON, and its
        return {"generation_config": json.dumps({"eos_token_id": -1})}  # batching ignores min_new_tokens
    return {"ignore_eos": True} if server == "ours" else {}  # ours: vLLM's name


async def one_request(url: str, model: str, prompt: str, max_tokens: int, stream: bool,
                      server: str = "ours") -> dict[str, float]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    document = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                "temperature": 0, **exact_length(server, max_tokens)}
    if stream:
        document |= {"stream": True, "stream_options": {"include_usage": True}}
    body = json.dumps(document).encode()
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: "
                     f"application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        status = int((await reader.readline()).split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        first, tokens, pending = None, 0, b""
        async for data in _body(reader, headers):
            if not stream:
                pending += data
                continue
            pending += data
            *events, pending = pending.split(b"\n\n")
            for event in events:
                if not event.startswith(b"data: ") or event == b"data: [DONE]":
                    continue
                chunk = json.loads(event[6:])
                deltas = [c.get("delta") or {} for c in chunk.get("choices", ())]
                if first is None and any(d.get("content") or d.get("reasoning_content") for d in deltas):
                    first = time.perf_counter() - started
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
    finally:
        writer.close()
    if status != 200:
        raise SystemExit(f"the server answered {status}: {pending[:300]!r}")
    latency = time.perf_counter() - started
    if not stream:
        tokens = json.loads(pending)["usage"]["completion_tokens"]
    return {"ttft": first if first is not None else latency, "latency": latency, "tokens": tokens}


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> AsyncIterator[bytes]:
    """The response body as it arrives: chunked transfer encoding undone, else up to Content-Length."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while size := int((await reader.readline()).split(b";")[0], 16):
            yield (await reader.readexactly(size + 2))[:-2]
        return
    length = int(headers.get("content-length", "-1"))
    yield await (reader.readexactly(length) if length >= 0 else reader.read())


def load(url: str, experts: list[str], clients: int, requests: int, max_tokens: int, stream: bool,
         server: Process | None = None, spread: int = 0, ramp: float = 0.0, kind: str = "ours") -> dict[str, float]:
    """``requests`` requests from ``clients`` concurrent clients, each sending its next request when its last
    one ends; request ``i`` asks expert ``i % len(experts)`` for a length in ``max_tokens +- spread`` (the
    same list whatever the server). Client ``k`` starts ``k * ramp / clients`` seconds after the first."""
    jobs = [(experts[i % len(experts)], PROMPTS[i % len(PROMPTS)], max_tokens + (i * 7) % (2 * spread + 1) - spread)
            for i in range(requests)]

    async def run_all() -> list[dict[str, float]]:
        queue = list(reversed(jobs))
        results: list[dict[str, float]] = []

        async def client(k: int) -> None:
            await asyncio.sleep(k * ramp / clients)
            while queue:
                model, prompt, length = queue.pop()
                results.append(await one_request(url, model, prompt, length, stream, kind))

        await asyncio.gather(*(client(k) for k in range(clients)))
        return results

    server_cpu, client_cpu = server.cpu_seconds() if server else 0.0, time.process_time()
    started = time.perf_counter()
    results = asyncio.run(run_all())
    wall = time.perf_counter() - started
    server_cpu = server.cpu_seconds() - server_cpu if server else 0.0
    client_cpu = time.process_time() - client_cpu
    ttft = sorted(r["ttft"] for r in results)
    latency = sorted(r["latency"] for r in results)
    return {"clients": clients, "requests": requests, "wall_s": round(wall, 3),
            "tokens": sum(r["tokens"] for r in results),  # the same work for every server, if each honours lengths
            "tokens_per_s": round(sum(r["tokens"] for r in results) / wall, 2),
            "ttft_p50_s": round(statistics.median(ttft), 4), "ttft_p99_s": round(percentile(ttft, 0.99), 4),
            "latency_p50_s": round(statistics.median(latency), 4),
            "latency_p99_s": round(percentile(latency, 0.99), 4),
            # where the two cores went: the server process, and this load generator (its HTTP clients)
            "server_cpu_s": round(server_cpu, 2), "client_cpu_s": round(client_cpu, 2)}


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def rss_run(server: Process, url: str, experts: list[str], count: int) -> dict[str, Any]:
    load(url, experts, 8, 100, 2, stream=True)  # warm up: every expert loaded, buffers allocated
    before = server.rss()
    load(url, experts, 8, count, 2, stream=True)
    after = server.rss()
    return {"requests": count, "rss_before_mb": round(before / 2**20, 1), "rss_after_mb": round(after / 2**20, 1),
            "growth_pct": round(100 * (after - before) / before, 2)}


# -- report -----------------------------------------------------------------------------------------------
def markdown(report: dict[str, Any]) -> str:
    title = (f"# bench_serve ({report['model']}, {report['experts']} experts, {report['max_tokens']} +- "
             f"{report['spread']} tokens each)")
    header = "| server | clients | tokens/s | TTFT p50 | TTFT p99 | latency p50 | latency p99 | server CPU s | client CPU s |"
    lines = [title, "", header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("ours", "peft", "transformers"):
        for row in report.get(name, ()):
            lines.append(f"| {name} | {row['clients']} | {row['tokens_per_s']} | {row['ttft_p50_s']} | "
                         f"{row['ttft_p99_s']} | {row['latency_p50_s']} | {row['latency_p99_s']} | "
                         f"{row['server_cpu_s']} | {row['client_cpu_s']} |")
    lines += ["", "Ratios: " + json.dumps(report["ratios"])]
    if report.get("rss"):
        lines.append("RSS: " + json.dumps(report["rss"]))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("demo", "qwen3-shape"), default="demo")
    parser.add_argument("--layers", type=int, default=4, help="qwen3-shape: how many of its 28 layers")
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--spread", type=int, default=16,
                        help="output lengths vary in max-tokens +- spread (0: all equal, so the 16 clients' requests "
                             "end on the same step and arrive again together)")
    parser.add_argument("--ramp", type=float, default=0.5,
                        help="seconds over which the clients start (0: all at once, a burst)")
    parser.add_argument("--rss-requests", type=int, default=2000, help="0 skips the memory run")
    parser.add_argument("--no-baseline", action="store_true",
                        help="only our server (a quick A/B of its settings); the PEFT server is not run")
    parser.add_argument("--no-transformers", action="store_true", help="skip `transformers serve`")
    parser.add_argument("--out", default="serve", help="bench-results/<out>.json and .md (default: serve)")
    parser.add_argument("--peft-server", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peft_server:
        peft_server(args.peft_server[0], args.peft_server[1:])
        return
    clients = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        root = Path(scratch)
        base = base_folder(args, root)
        names = [f"expert-b{i}" for i in range(args.experts)]
        folders = [make_expert(base, root / name, name, seed) for seed, name in enumerate(names)]
        install_all(folders, root / "home")
        env = {"EXPERT_HOME": str(root / "home"), "HF_HUB_OFFLINE": "1", "EXPERT_NO_PROGRESS": "1"}
        report: dict[str, Any] = {"model": args.model, "experts": args.experts, "max_tokens": args.max_tokens,
                                  "spread": args.spread, "ramp_s": args.ramp, "requests": args.requests,
                                  "cpus": os.cpu_count()}
        ours = Process([sys.executable, "-m", "expert_cli", "serve", "--all", "--port", "0", "--max-batch", "16",
                        "--max-queue", "512"], env)
        try:
            url = ours.url()
            load(url, names, 4, 8, 4, stream=True)  # warm-up
            report["ours"] = [load(url, names, c, args.requests, args.max_tokens, stream=True, server=ours,
                                   spread=args.spread, ramp=args.ramp)
                              for c in clients]
            report["rss"] = rss_run(ours, url, names, args.rss_requests) if args.rss_requests else None
        finally:
            ours.stop()
        report["peft"] = []
        if not args.no_baseline:
            peft = Process([sys.executable, __file__, "--peft-server", str(base), *map(str, folders)], env)
            try:
                url = peft.url()
                load(url, names, 1, 4, 4, stream=False, kind="peft")  # warm-up
                report["peft"] = [load(url, names, c, args.requests, args.max_tokens, stream=False, server=peft,
                                        spread=args.spread, ramp=args.ramp, kind="peft")
                                  for c in clients]
            finally:
                peft.stop()
        report["transformers"] = []
        if not args.no_baseline and not args.no_transformers:
            copies = merged_copies(base, folders, root)
            server, known = transformers_serve(env)
            try:
                url = server.url(known=known)
                load(url, copies, 1, len(copies), 4, stream=True, kind="transformers")  # each copy's process starts
                report["transformers"] = [load(url, copies, c, args.requests, args.max_tokens, stream=True,
                                               server=server, spread=args.spread, ramp=args.ramp,
                                               kind="transformers")
                                          for c in clients]
            finally:
                server.stop()
    top, one = report["ours"][-1], report["ours"][0]
    report["ratios"] = {
        f"ours_{top['clients']}_vs_one_at_a_time": round(top["tokens_per_s"] / one["tokens_per_s"], 2),
        "ttft_p99_vs_one_client": round(top["ttft_p99_s"] / one["ttft_p99_s"], 2),
    }
    if report["peft"]:
        report["ratios"][f"ours_{top['clients']}_vs_peft_{top['clients']}"] = round(
            top["tokens_per_s"] / report["peft"][-1]["tokens_per_s"], 2)
    if report["transformers"]:
        report["ratios"][f"ours_{top['clients']}_vs_transformers_{top['clients']}"] = round(
            top["tokens_per_s"] / report["transformers"][-1]["tokens_per_s"], 2)
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / f"{args.out}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / f"{args.out}.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


if __name__ == "__main__":
    main()
