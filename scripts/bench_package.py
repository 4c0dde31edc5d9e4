#!/usr/bin/env python3
"""Distribution benchmark: package, sign, verify and install a ~40 MB LoRA adapter.

    .venv/bin/python scripts/bench_package.py [--out bench-results] [--repeat 3]

The adapter has the shapes of a rank-16 LoRA on every linear layer of Qwen3-0.6B (28 layers; q, k, v, o,
gate, up, down): 10.1 M float32 parameters, 40.4 MB, filled with small random values the way trained weights
look (nearly incompressible). The expert folder around it has a manifest, a 2,000-row training set, a
grammar and a licence. Every step runs in a temporary ``EXPERT_HOME``; each timing is the median of
``--repeat`` runs. Writes ``package.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAYERS, HIDDEN, INTERMEDIATE, Q_OUT, KV_OUT, RANK = 28, 1024, 3072, 2048, 1024, 16
MODULES = {"q_proj": (HIDDEN, Q_OUT), "k_proj": (HIDDEN, KV_OUT), "v_proj": (HIDDEN, KV_OUT),
           "o_proj": (Q_OUT, HIDDEN), "gate_proj": (HIDDEN, INTERMEDIATE), "up_proj": (HIDDEN, INTERMEDIATE),
           "down_proj": (INTERMEDIATE, HIDDEN)}


def write_adapter(folder: Path) -> int:
    """A PEFT-shaped LoRA adapter (adapter_config.json + adapter_model.safetensors); returns the weights' size."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {}
    for layer in range(LAYERS):
        for module, (fan_in, fan_out) in MODULES.items():
            group = "self_attn" if module in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            prefix = f"base_model.model.model.layers.{layer}.{group}.{module}"
            tensors[f"{prefix}.lora_A.weight"] = (rng.standard_normal((RANK, fan_in)) * 0.02).astype(np.float32)
            tensors[f"{prefix}.lora_B.weight"] = (rng.standard_normal((fan_out, RANK)) * 0.002).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": RANK, "lora_alpha": 32, "lora_dropout": 0.05, "bias": "none",
              "target_modules": sorted(MODULES), "base_model_name_or_path": "Qwen/Qwen3-0.6B",
              "task_type": "CAUSAL_LM", "inference_mode": True}
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return (folder / "adapter_model.safetensors").stat().st_size


def write_expert(root: Path) -> Path:
    expert = root / "expert-bench"
    manifest = {
        "name": "expert-bench", "version": "1.0.0", "schema_version": "2.0", "description": "benchmark expert",
        "base_models": [{"name": "Qwen/Qwen3-0.6B", "adapters": [
            {"type": "lora", "target_modules": sorted(MODULES), "r": RANK, "alpha": 32, "dropout": 0.05}]}],
        "capabilities": ["bench"],
        "training": {"dataset": {"path": "datasets/train.jsonl"},
                     "config": {"method": "sft", "adapter_type": "lora", "rank": RANK, "alpha": 32,
                                "epochs": 1, "learning_rate": 0.0002}},
    }
    (expert / "datasets").mkdir(parents=True)
    (expert / "manifest.json").write_text(json.dumps(manifest, indent=2))
    rows = (json.dumps({"messages": [{"role": "user", "content": f"list the rows of table t{i}"},
                                     {"role": "assistant", "content": f"SELECT * FROM t{i};"}]}) for i in range(2000))
    (expert / "datasets" / "train.jsonl").write_text("\n".join(rows) + "\n")
    (expert / "grammar.gbnf").write_text('root ::= "SELECT" [^;]* ";"\n')
    (expert / "LICENSE").write_text("MIT\n")
    write_adapter(expert / "weights" / "qwen3-0-6b" / "adapter")
    return expert


def timed(step: Callable[[], Any], repeat: int, before: Callable[[], None] | None = None
          ) -> tuple[dict[str, float], Any]:
    """Median wall and CPU seconds of ``step`` over ``repeat`` runs (``before`` runs untimed first), and its
    last result. CPU time is what the step itself used, so it stays meaningful on a busy machine."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        if before:
            before()
        wall, cpu = time.perf_counter(), time.process_time()
        result = step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_s": round(statistics.median(walls), 3), "cpu_s": round(statistics.median(cpus), 3)}, result


def run(repeat: int) -> dict[str, Any]:
    from expert_cli.packages.build import build_package
    from expert_cli.packages.install import install_expert, uninstall_expert
    from expert_cli.packages.signer import sign_package
    from expert_cli.packages.signing import generate_keypair
    from expert_cli.packages.staging import InstallOptions
    from expert_cli.packages.trust import add_trusted_key
    from expert_cli.packages.verify import verify_target

    with tempfile.TemporaryDirectory(prefix="bench-package-") as scratch:
        root = Path(scratch)
        os.environ["EXPERT_HOME"] = str(root / "home")
        expert = write_expert(root)
        weights = (expert / "weights" / "qwen3-0-6b" / "adapter" / "adapter_model.safetensors").stat().st_size
        package_s, built = timed(lambda: build_package(expert, root / "dist"), repeat)
        unsigned = Path(shutil.copyfile(built.path, root / "unsigned.expert"))
        pair = generate_keypair()
        add_trusted_key(pair.public_key)
        sign_s, _ = timed(lambda: sign_package(built.path, pair.private_key), repeat)
        verify_s, _ = timed(lambda: verify_target(str(built.path)), repeat)
        clean = lambda: uninstall_expert("expert-bench") if (root / "home" / "experts" / "expert-bench").exists() else None
        install_s, result = timed(lambda: install_expert(str(built.path)), repeat, before=clean)
        force_s, _ = timed(lambda: install_expert(str(built.path), InstallOptions(force=True)), repeat)
        unsigned_s, _ = timed(lambda: install_expert(str(unsigned), InstallOptions(allow_unsigned=True)),
                              repeat, before=clean)
        return {
            "adapter_bytes": weights,
            "package_bytes": built.size_bytes,
            "package_ratio": round(built.size_bytes / weights, 4),
            "package_files": len(built.files) + 1,
            "routing_exemplars": built.exemplars,
            "package": package_s,
            "sign": sign_s,
            "verify": verify_s,
            "install_signed": install_s,
            "install_force_reinstall": force_s,
            "install_unsigned_allowed": unsigned_s,
            "install_trust": result.trust,
            "repeat": repeat,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures = run(args.repeat)
    figures["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform(), "load_avg_1m": os.getloadavg()[0]}
    figures["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "package.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
