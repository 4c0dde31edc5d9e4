"""Throughput of ``expert-cli dataset generate`` at concurrency 1 and 8, and the share each gate rejects.

1. Against a real ``expert-cli serve --base-model builtin:tiny-qwen3`` (offline, CPU): requests/s, rows judged/s
   and tokens/s, with the rejection shares (the demo base writes no JSON rows, so nearly all fail to parse).
2. Against a local replaying server (``tests/replay_server.py``) that answers valid, distinct SQL rows after a
   fixed latency (0 s: the pipeline's own ceiling; 0.25 s: a hosted model's pace): rows kept/s.

Run: ``flock /tmp/heavy.lock .venv/bin/python scripts/bench_generate.py [--requests 16]``; prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def run(expert: Path, count: int, url: str, model: str, concurrency: int, **flags) -> dict:
    from expert_cli.sdk.generation import generate_for_expert

    out = expert / "data" / f"bench-{os.urandom(4).hex()}.jsonl"
    result = generate_for_expert(expert, count, base_url=url, model=model, concurrency=concurrency, out=out, **flags)
    document = result.to_dict()
    elapsed = document["elapsed_s"] or 1e-9
    return {"concurrency": concurrency, "requests": document["requests"], "elapsed_s": document["elapsed_s"],
            "requests_per_s": round(document["replies"] / elapsed, 2), "rows_judged_per_s":
            round(document["checked"] / elapsed, 2), "rows_kept_per_s": document["rows_per_s"],
            "tokens_per_s": round(document["tokens"] / elapsed, 1), "rejected_share": document["rejected_share"],
            "rejected": document["rejected"], "first_rejection": next(iter(document["examples"].values()), [{}])[0]}


def against_serve(expert: Path, requests: int, home: Path) -> list[dict]:
    from server_helpers import running_server

    seeds = expert / "short-seeds.jsonl"  # the demo base has a 512-token context: one short seed per prompt
    seeds.write_text(json.dumps({"messages": [{"role": "user", "content": "Count the users."},
                                              {"role": "assistant", "content": "SELECT COUNT(*) FROM users"}]}) + "\n")
    results = []
    with running_server(home, "--base-model", "builtin:tiny-qwen3", "--max-batch", "8") as server:
        model = server.client().models.list().data[0].id
        for concurrency in (1, 8):
            results.append(run(expert, requests, f"{server.url}/v1", model, concurrency, seeds=seeds,
                               max_requests=requests, max_tokens=64))
    return results


def against_replay(expert: Path, rows: int) -> list[dict]:
    from generation_helpers import sql_row
    from replay_server import ok, replay_server, slow

    results = []
    for latency in (0.0, 0.25):
        for concurrency in (1, 8):
            answer = (lambda n, wait=latency: slow(wait, json.dumps(sql_row(n)))) if latency else (
                lambda n: ok(json.dumps(sql_row(n))))
            with replay_server([], answer) as server:
                result = run(expert, rows, server.url, "replay", concurrency)
            results.append({"latency_s": latency, **result})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16, help="requests per concurrency against serve")
    parser.add_argument("--rows", type=int, default=64, help="rows per run against the replaying server")
    args = parser.parse_args()
    from generation_helpers import make_sql_expert

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("EXPERT_HOME", str(Path(tmp) / "home"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        expert = make_sql_expert(Path(tmp) / "expert-sql")
        document = {"serve_tiny_qwen3": against_serve(expert, args.requests, Path(tmp) / "home"),
                    "replay_sql_rows": against_replay(expert, args.rows)}
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
