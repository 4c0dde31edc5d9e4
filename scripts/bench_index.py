#!/usr/bin/env python3
"""Marketplace benchmark: search over an index of 1,000 generated experts, and install by name of a ~40 MB
adapter, each against a baseline measured in the same run.

    flock /tmp/heavy.lock .venv/bin/python scripts/bench_index.py [--out bench-results] [--experts 1000]

Search: a Git index of ``--experts`` experts (three versions each, generated names, descriptions,
capabilities and tags) is added with ``index add``; then
- *warm*: ``search_indexes`` in-process with the entry cache present (what every search after the first does);
- *cold*: both caches (entries, search table) deleted before each query, so the whole tree is read and
  checked again and the caches rebuilt (the first search after a clone, or after the caches are lost);
- *baseline*: a plain linear scan: read every entry file, ``json.loads`` every line, substring-match the
  query (no checks, no ranking);
- *cli*: ``expert-cli search QUERY --json`` as a subprocess (Python start-up included).
Install: the 40 MB adapter of ``bench_package.py`` packaged, signed and published; ``install NAME`` through
the index (resolve, copy, SHA-256 against the entry, the verified install) against ``install FILE`` of the
same package (the verified install alone). Writes ``index.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

QUERIES = ["sql", "cypher graph", "json schema", "rust", "translate english", "expert-kotlin-7", "medical notes",
           "log parsing", "zz-no-match", "python code review"]
WORDS = ["sql", "cypher", "graph", "json", "schema", "rust", "python", "kotlin", "translate", "english", "french",
         "medical", "notes", "legal", "contract", "log", "parsing", "code", "review", "summary", "math", "chemistry",
         "yaml", "regex", "shell", "docker", "terraform", "finance", "poetry", "chess"]
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@localhost"}


def git(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["git", *map(str, args)], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True,
                   capture_output=True)


def generate_index(work: Path, count: int) -> int:
    """A committed index of ``count`` experts with three versions each; returns the number of lines."""
    from expert_cli.packages.index import IndexEntry, entry_path, format_lines

    rng = random.Random(0)
    key = "ed25519:" + "ab" * 32
    work.mkdir(parents=True)
    (work / "config.json").write_text(json.dumps({"name": "bench", "format": 1}) + "\n")
    lines = 0
    for i in range(count):
        words = rng.sample(WORDS, 4)
        name = f"expert-{words[0]}-{i}"
        entries = [IndexEntry(
            name=name, version=f"{major}.{minor}.0", sha256=f"{rng.getrandbits(256):064x}", size_bytes=40_000_000,
            source={"url": f"https://example.com/{name}-{major}.{minor}.0.expert"},
            publisher={"key": key, "fingerprint": "0123456789abcdef"},
            base_models=[{"name": "Qwen/Qwen3-0.6B", "sha256": None}],
            description=f"{' '.join(words)} expert number {i} for {words[1]} and {words[2]} tasks",
            capabilities=[f"language:{words[0]}", f"task:{words[1]}"], tags=[words[2], words[3]],
            adapter={"type": "lora", "size_bytes": 40_000_000}, yanked=minor == 2 and i % 7 == 0,
            published_at="2026-01-01T00:00:00Z") for major, minor in ((0, 1), (1, 0), (1, 2))]
        path = work / entry_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(format_lines(entries))
        lines += len(entries)
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "generated", cwd=work)
    return lines


def linear_scan(root: Path, query: str) -> list[str]:
    """The baseline: every entry file read and parsed, a substring match on name and description."""
    found = set()
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts and path.name != "config.json":
            for line in path.read_text().splitlines():
                data = json.loads(line)
                if query in data["name"] or query in data["description"]:
                    found.add(data["name"])
    return sorted(found)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 2),
            "runs": len(ordered)}


def time_each(step: Any, items: list[Any], before: Any = None, rounds: int = 1) -> list[float]:
    samples = []
    for _ in range(rounds):
        for item in items:
            if before:
                before()
            started = time.perf_counter()
            step(item)
            samples.append(time.perf_counter() - started)
    return samples


def bench_search(root: Path, count: int) -> dict[str, Any]:
    from expert_cli.packages.index_search import search_indexes, search_table_path
    from expert_cli.packages.index_sources import add_index, cache_path

    lines = generate_index(root / "bench-index", count)
    started = time.perf_counter()
    add_index("bench", str(root / "bench-index"))
    add_s = time.perf_counter() - started
    clone = Path(os.environ["EXPERT_HOME"]) / "indexes" / "bench"
    search_indexes("warm-up")
    warm = time_each(lambda q: search_indexes(q), QUERIES, rounds=5)
    def drop_caches() -> None:
        cache_path("bench").unlink(missing_ok=True)
        search_table_path("bench").unlink(missing_ok=True)

    cold = time_each(lambda q: search_indexes(q), QUERIES, before=drop_caches)
    baseline = time_each(lambda q: linear_scan(clone, q), QUERIES)
    cli = time_each(lambda q: subprocess.run([str(ROOT / ".venv" / "bin" / "expert-cli"), "search", q, "--json"],
                                             check=True, capture_output=True), QUERIES[:5])
    top = search_indexes("sql")[0]
    return {"experts": count, "lines": lines, "index_add_s": round(add_s, 3), "warm": percentiles(warm),
            "cold": percentiles(cold), "baseline_linear_scan": percentiles(baseline), "cli_subprocess": percentiles(cli),
            "warm_speedup_vs_baseline": round(statistics.median(baseline) / statistics.median(warm), 1),
            "top_hit_for_sql": f"{top.name}@{top.version}", "goal_warm_under_ms": 100,
            "goal_met": statistics.median(warm) < 0.1}


def bench_install(root: Path, repeat: int) -> dict[str, Any]:
    from bench_package import write_expert

    from expert_cli.packages.build import build_package
    from expert_cli.packages.index_install import install_from_index
    from expert_cli.packages.index_sources import add_index
    from expert_cli.packages.install import install_expert, uninstall_expert
    from expert_cli.packages.publish import publish_package
    from expert_cli.packages.signer import sign_package
    from expert_cli.packages.signing import generate_keypair
    from expert_cli.packages.staging import InstallOptions
    from expert_cli.packages.trust import add_trusted_key

    package = build_package(write_expert(root / "src"), root / "dist").path
    pair = generate_keypair(root / "publisher.pem")
    sign_package(package, pair.private_key)
    work = root / "install-index"
    work.mkdir()
    (work / "config.json").write_text(json.dumps({"name": "bench", "format": 1}) + "\n")
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "index", cwd=work)
    publish_package(package, work)
    add_index("local", str(work))
    add_trusted_key(pair.public_key)
    options = InstallOptions(model="Qwen/Qwen3-0.6B")
    by_name, by_file = [], []
    for _ in range(repeat):
        for samples, step in ((by_name, lambda: install_from_index("bench", options)),
                              (by_file, lambda: install_expert(str(package), options))):
            started = time.perf_counter()
            step()
            samples.append(time.perf_counter() - started)
            uninstall_expert("expert-bench")
    weights = root / "src" / "expert-bench" / "weights" / "qwen3-0-6b" / "adapter" / "adapter_model.safetensors"
    return {"adapter_bytes": weights.stat().st_size, "package_bytes": package.stat().st_size,
            "install_by_name_s": round(statistics.median(by_name), 3),
            "baseline_install_file_s": round(statistics.median(by_file), 3),
            "index_overhead_s": round(statistics.median(by_name) - statistics.median(by_file), 3), "repeat": repeat}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--experts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-index-") as scratch:
        root = Path(scratch)
        os.environ["EXPERT_HOME"] = str(root / "home")
        os.environ["EXPERT_NO_PROGRESS"] = "1"
        figures = {"search": bench_search(root, args.experts), "install": bench_install(root, args.repeat)}
        shutil.rmtree(root / "home", ignore_errors=True)
    figures["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform(), "load_avg_1m": os.getloadavg()[0]}
    figures["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "index.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
