"""Benchmark the expert runtime against stock PEFT on a random-weight model of Qwen3-0.6B's exact shape.

    .venv/bin/python scripts/bench_runtime.py [--device cpu|cuda] [--new-tokens 8] [--experts 10]

No download: the config values of Qwen/Qwen3-0.6B are written below by hand, the weights are random, the
tokenizer is a word-level one that can decode every id. Adapters are r=16 LoRA on all seven projections,
written in PEFT's format. Both sides run in the same process, one after the other (PEFT first), each on a
fresh copy of the base loaded from the same folder. Writes ``bench-results/runtime-<device>.json`` and
``.md``. Measures: cold load of one adapter, switch between resident experts, greedy decode tokens/s with
no expert / one / two composed, a mixed batch of 8 prompts over 4 experts vs the same 8 one at a time, and
memory with 1 and 10 experts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

QWEN3_0_6B = {
    "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "hidden_act": "silu",
    "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "attention_bias": False,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "bos_token_id": 151643, "eos_token_id": 151645, "pad_token_id": 151643,
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RANK = 16


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        import os

        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def build_base(folder: Path, layers: int) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    config = Qwen3Config(**{**QWEN3_0_6B, "num_hidden_layers": layers})
    Qwen3ForCausalLM(config).save_pretrained(folder)
    vocab = {f"t{i}": i for i in range(config.vocab_size)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="t151645", pad_token="t151643")
    fast.save_pretrained(folder)


def write_adapter(folder: Path, seed: int, layers: int) -> None:
    import torch
    from peft import LoraConfig
    from safetensors.torch import save_file

    shapes = {"q_proj": (1024, 2048), "k_proj": (1024, 1024), "v_proj": (1024, 1024), "o_proj": (2048, 1024),
              "gate_proj": (1024, 3072), "up_proj": (1024, 3072), "down_proj": (3072, 1024)}
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(layers):
        for name, (fan_in, fan_out) in shapes.items():
            block = "self_attn" if name in TARGETS[:4] else "mlp"
            key = f"base_model.model.model.layers.{layer}.{block}.{name}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(RANK, fan_in, generator=generator) / fan_in ** 0.5
            tensors[f"{key}.lora_B.weight"] = torch.randn(fan_out, RANK, generator=generator) * 0.01
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    LoraConfig(r=RANK, lora_alpha=2 * RANK, target_modules=TARGETS).save_pretrained(folder)


def import_like_peft_side() -> None:
    """Import the same libraries on both sides before the memory baseline, so RSS growth compares."""
    import peft  # noqa: F401
    import safetensors.torch  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3ForCausalLM  # noqa: F401


def touch_weights(model: Any, device: str) -> None:
    """One forward pass, so every weight is resident before memory is measured."""
    import torch

    with torch.inference_mode():
        model(torch.tensor([[1, 2, 3, 4]], device=device))


def prompts(count: int, length: int) -> list[list[int]]:
    import torch

    generator = torch.Generator().manual_seed(1)
    return [torch.randint(1000, 100000, (length,), generator=generator).tolist() for _ in range(count)]


# -- stock PEFT ------------------------------------------------------------------------------------
def bench_peft(base_dir: Path, adapters: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from peft import PeftModel
    from peft.utils.hotswap import hotswap_adapter
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import_like_peft_side()
    out: dict[str, Any] = {}
    rss0 = rss_bytes()
    started = time.perf_counter()
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=args.dtype).to(args.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)  # noqa: F841 - loaded as an application would
    out["base_load_s"] = time.perf_counter() - started
    touch_weights(base, args.device)
    out["rss_base"] = rss_bytes() - rss0
    started = time.perf_counter()
    model = PeftModel.from_pretrained(base, adapters[0], adapter_name="e0").eval()
    out["first_attach_s"] = time.perf_counter() - started
    out["rss_1_expert"] = rss_bytes() - rss0
    loads = [timed(lambda i=i: model.load_adapter(adapters[i], adapter_name=f"e{i}")) for i in range(1, len(adapters))]
    out["cold_load_s"] = statistics.median(loads)
    out["rss_10_experts"] = rss_bytes() - rss0
    out["switch_ms"] = 1e3 * statistics.median(timed(lambda i=i: model.set_adapter(f"e{i % len(adapters)}"))
                                               for i in range(50))
    out["hotswap_s"] = timed(lambda: hotswap_adapter(model, str(adapters[1]), adapter_name="e0",
                                                     torch_device=args.device))
    ids = prompts(8, args.prompt_len)

    def generate(batch: list[list[int]], **extra: Any) -> float:
        tensor = torch.tensor(batch, device=args.device)
        with torch.inference_mode():
            return timed(lambda: model.generate(input_ids=tensor, attention_mask=torch.ones_like(tensor),
                                                max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                                do_sample=False, **extra))

    generate(ids[:1])  # warm-up
    best = lambda: min(generate(ids[:1]) for _ in range(args.repeats))
    with model.disable_adapter():
        out["decode_none_tps"] = args.new_tokens / best()
    model.set_adapter("e0")
    out["decode_one_tps"] = args.new_tokens / best()
    model.base_model.set_adapter(["e0", "e1"])
    out["decode_two_tps"] = args.new_tokens / best()
    names = [f"e{i % 4}" for i in range(8)]
    out["mixed_batch_s"] = generate(ids, adapter_names=names)
    sequential = 0.0
    for prompt, name in zip(ids, names):
        model.set_adapter(name)
        sequential += generate([prompt])
    out["sequential_s"] = sequential
    return out


# -- this runtime ----------------------------------------------------------------------------------
def bench_ours(base_dir: Path, adapters: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    from expert_cli.runtime.decoder import BatchDecoder, RowRequest
    from expert_cli.runtime.pool import BasePool
    from expert_cli.runtime.sampling import resolve_decoding

    import_like_peft_side()

    out: dict[str, Any] = {}
    rss0 = rss_bytes()
    pool = BasePool()
    out["base_load_s"] = timed(lambda: pool.get(base_dir, args.device, args.dtype_name))
    base = pool.get(base_dir, args.device, args.dtype_name)
    touch_weights(base.model, args.device)
    out["rss_base"] = rss_bytes() - rss0
    out["first_attach_s"] = base.attach("e0", adapters[0]).load_seconds
    out["rss_1_expert"] = rss_bytes() - rss0
    out["cold_load_s"] = statistics.median(base.attach(f"e{i}", adapters[i]).load_seconds
                                           for i in range(1, len(adapters)))
    out["rss_10_experts"] = rss_bytes() - rss0
    out["tensor_bytes_base"] = base.base_nbytes
    out["tensor_bytes_adapters"] = base.adapters_nbytes()

    def switch(i: int) -> None:  # what a decode does to change experts: build the plan, put it in place
        with base.using_plan(base.rows_plan([((f"e{i % len(adapters)}", 1.0),)])):
            pass

    out["switch_ms"] = 1e3 * statistics.median(timed(lambda i=i: switch(i)) for i in range(50))
    params = resolve_decoding(None, {"temperature": 0, "max_tokens": args.new_tokens})
    ids = prompts(8, args.prompt_len)

    def generate(rows: list[tuple[list[int], tuple]]) -> tuple[float, int]:
        decoder = BatchDecoder(base, [RowRequest(p, c, params) for p, c in rows])
        seconds = timed(decoder.run)
        return seconds, max(len(g) for g in decoder.generated)

    generate([(ids[0], ())])  # warm-up
    for label, composition in (("none", ()), ("one", (("e0", 1.0),)), ("two", (("e0", 1.0), ("e1", 1.0)))):
        seconds, tokens = min(generate([(ids[0], composition)]) for _ in range(args.repeats))
        out[f"decode_{label}_tps"] = tokens / seconds
    rows = [(prompt, ((f"e{i % 4}", 1.0),)) for i, prompt in enumerate(ids)]
    out["mixed_batch_s"] = generate(rows)[0]
    out["sequential_s"] = sum(generate([row])[0] for row in rows)
    return out


# -- report ----------------------------------------------------------------------------------------
def summarise(peft: dict[str, Any], ours: dict[str, Any], adapter_bytes: int, experts: int) -> dict[str, Any]:
    base_and_adapters = ours["tensor_bytes_base"] + experts * adapter_bytes
    return {
        "cold_load_speedup_vs_peft": peft["cold_load_s"] / ours["cold_load_s"],
        "switch_ms": ours["switch_ms"],
        "decode_overhead_one_expert": 1 - ours["decode_one_tps"] / ours["decode_none_tps"],
        "decode_overhead_two_experts": 1 - ours["decode_two_tps"] / ours["decode_none_tps"],
        "mixed_batch_speedup_vs_sequential": ours["sequential_s"] / ours["mixed_batch_s"],
        "memory_10_experts_vs_budget": (ours["tensor_bytes_base"] + ours["tensor_bytes_adapters"]) / base_and_adapters,
        "rss_10_experts_vs_budget": ours["rss_10_experts"] / base_and_adapters,
        "rss_adapters_vs_budget": (ours["rss_10_experts"] - ours["rss_base"]) / (experts * adapter_bytes),
    }


GOALS = [
    ("cold_load_speedup_vs_peft", ">= 5x", lambda v: v >= 5, "{:.1f}x"),
    ("switch_ms", "<= 1 ms", lambda v: v <= 1, "{:.4f} ms"),
    ("decode_overhead_one_expert", "<= 5%", lambda v: v <= 0.05, "{:.1%}"),
    ("mixed_batch_speedup_vs_sequential", ">= 3x", lambda v: v >= 3, "{:.2f}x"),
    ("memory_10_experts_vs_budget", "<= 1.05", lambda v: v <= 1.05, "{:.3f}"),
    ("rss_10_experts_vs_budget", "<= 1.05", lambda v: v <= 1.05, "{:.3f}"),
]
ROWS = [
    ("cold load of one adapter (s)", "cold_load_s", "{:.4f}"),
    ("first attach incl. wrapping (s)", "first_attach_s", "{:.4f}"),
    ("switch between resident experts (ms)", "switch_ms", "{:.4f}"),
    ("decode tok/s, no expert", "decode_none_tps", "{:.2f}"),
    ("decode tok/s, one expert", "decode_one_tps", "{:.2f}"),
    ("decode tok/s, two composed", "decode_two_tps", "{:.2f}"),
    ("mixed batch 8 prompts / 4 experts (s)", "mixed_batch_s", "{:.2f}"),
    ("same 8 one at a time (s)", "sequential_s", "{:.2f}"),
    ("RSS growth, base alone (MiB)", "rss_base", "mib"),
    ("RSS growth, base + 1 expert (MiB)", "rss_1_expert", "mib"),
    ("RSS growth, base + all experts (MiB)", "rss_10_experts", "mib"),
]


def markdown(report: dict[str, Any]) -> str:
    fmt = lambda f, v: "-" if v is None else (f"{v / 2**20:.0f}" if f == "mib" else f.format(v))
    lines = [f"# Runtime benchmark ({report['device']}, {report['dtype']})", "",
             (f"Qwen3-0.6B shape, {report['layers']} layers, random weights; r={RANK} LoRA on all projections; "
              f"{report['new_tokens']} new tokens, prompt {report['prompt_len']} tokens, "
              f"{report['torch_threads']} torch thread(s); decode: best of {report['repeats']}."), "",
             "| measure | stock PEFT | expert-cli runtime |", "|---|---:|---:|"]
    for label, key, f in ROWS:
        lines.append(f"| {label} | {fmt(f, report['peft'].get(key))} | {fmt(f, report['ours'].get(key))} |")
    lines += ["", "| goal | target | measured | met |", "|---|---|---:|---|"]
    for key, target, check, f in GOALS:
        value = report["summary"][key]
        lines.append(f"| {key} | {target} | {f.format(value)} | {'yes' if check(value) else 'NO'} |")
    return "\n".join(lines) + "\n"


def run_side(side: str, root: Path, argv: list[str]) -> dict[str, Any]:
    """Each side runs in its own process, so resident memory is measured from a clean start."""
    result = root / f"{side}.json"
    subprocess.run([sys.executable, __file__, *argv, "--side", side, "--workdir", str(root)], check=True)
    return json.loads(result.read_text(encoding="utf-8"))


def run_one_side(args: argparse.Namespace) -> None:
    root = args.workdir
    adapters = sorted(root.glob("adapter-*"), key=lambda p: int(p.name.split("-")[1]))
    bench = bench_peft if args.side == "peft" else bench_ours
    (root / f"{args.side}.json").write_text(json.dumps(bench(root / "base", adapters, args)), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--prompt-len", type=int, default=16)
    parser.add_argument("--experts", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2, help="decode runs per setting; the fastest counts")
    parser.add_argument("--layers", type=int, default=QWEN3_0_6B["num_hidden_layers"])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--side", choices=("peft", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.experts < 4:
        parser.error("--experts must be at least 4 (the mixed batch spreads 8 prompts over 4 experts)")
    argv = sys.argv[1:]
    import torch

    from expert_cli.models.device import resolve_placement

    placement = resolve_placement(args.device)
    args.device, args.dtype_name, args.dtype = placement.device, placement.dtype, getattr(torch, placement.dtype)
    if args.side:
        return run_one_side(args)
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as scratch:
        root = Path(scratch)
        build_base(root / "base", args.layers)
        adapters = [root / f"adapter-{i}" for i in range(args.experts)]
        for seed, folder in enumerate(adapters):
            write_adapter(folder, seed, args.layers)
        adapter_bytes = RANK * sum(a + b for a, b in [(1024, 2048), (1024, 1024), (1024, 1024), (2048, 1024),
                                                      (1024, 3072), (1024, 3072), (3072, 1024)])
        adapter_bytes *= args.layers * torch.tensor([], dtype=args.dtype).element_size()
        peft, ours = (run_side(side, root, argv) for side in ("peft", "ours"))
    report = {"device": args.device, "dtype": args.dtype_name, "layers": args.layers, "new_tokens": args.new_tokens,
              "prompt_len": args.prompt_len, "experts": args.experts, "repeats": args.repeats, "adapter_bytes": adapter_bytes,
              "torch_threads": torch.get_num_threads(), "peft": peft, "ours": ours,
              "summary": summarise(peft, ours, adapter_bytes, args.experts)}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"runtime-{args.device.replace(':', '')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


if __name__ == "__main__":
    main()
