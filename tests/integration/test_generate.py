"""``expert-cli dataset generate`` end to end: against a real ``expert-cli serve`` on the tiny model (whose junk
exercises the rejection path), and a run killed with SIGKILL then resumed to its count."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("sqlglot")
pytest.importorskip("datasketch")

from generation_helpers import make_sql_expert, sql_row, write_rows
from replay_server import replay_server, slow

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_generate_against_expert_cli_serve_on_the_tiny_model(cli, tiny_model: Path, tmp_path: Path):
    pytest.importorskip("torch")
    pytest.importorskip("uvicorn")
    from server_helpers import running_server

    expert = make_sql_expert(tmp_path / "expert-sql", generation={"task": "SQL", "examples_per_prompt": 1})
    seeds = write_rows(tmp_path / "seeds.jsonl", [sql_row(1, question="q?", answer="SELECT 1")])
    seeds.write_text(seeds.read_text().replace("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age "
                                               "INTEGER, city TEXT);", "CREATE TABLE t (a INT);"))
    with running_server(tmp_path / "home", "--base-model", str(tiny_model)) as server:  # a 512-token context
        result = cli("dataset", "generate", expert, "--count", "2", "--base-url", f"{server.url}/v1", "--seeds", seeds,
                     "--model", str(tiny_model), "--concurrency", "2", "--max-requests", "4", "--max-tokens", "24",
                     "--json")
        served = server.metric("expert_cli_requests_total")
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    assert result.exit_code == 1  # the tiny model writes no usable row: the budget stops the run
    assert report["requests"] == report["replies"] == 4 and report["rows"] == 0
    assert report["completion_tokens"] >= 4 and report["prompt_tokens"] > 4 * 100  # the seed and task were sent
    assert report["checked"] >= 4 and report["kept"] == 0 and set(report["rejected"]) <= {"format", "sql"}
    assert served >= 4


def test_a_killed_run_resumes_to_its_count_without_losing_or_repeating_rows(cli, tmp_path: Path):
    expert = make_sql_expert(tmp_path / "expert-sql")
    out = expert / "data" / "generated.jsonl"
    with replay_server([], lambda n: slow(0.3, json.dumps(sql_row(n)))) as server:
        environment = {**os.environ, "EXPERT_NO_PROGRESS": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "expert_cli", "dataset", "generate", str(expert), "--count", "6", "--base-url",
             server.url, "--model", "m", "--concurrency", "1"], cwd=REPO, env=environment,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None:
                if out.exists() and len(out.read_text().splitlines()) >= 2:
                    break
                time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait(timeout=10)
        kept_before = out.read_text().splitlines()
        assert 2 <= len(kept_before) < 6
        requests_before = len(server.records)
        result = cli("dataset", "generate", expert, "--count", "6", "--base-url", server.url, "--model", "m",
                     "--resume", "--json")
    assert result.exit_code == 0, result.stderr
    rows = out.read_text().splitlines()
    assert rows[:len(kept_before)] == kept_before and len(rows) == len(set(rows)) == 6
    assert json.loads(result.stdout)["new_rows"] == 6 - len(kept_before)
    assert len(server.records) - requests_before == 6 - len(kept_before)  # no request repeated for kept rows


def test_ctrl_c_exits_at_once_keeping_every_accepted_row(tmp_path: Path):
    expert = make_sql_expert(tmp_path / "expert-sql")
    out = expert / "data" / "generated.jsonl"
    with replay_server([], lambda n: slow(0.3 if n < 2 else 30, json.dumps(sql_row(n)))) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "expert_cli", "dataset", "generate", str(expert), "--count", "10", "--base-url",
             server.url, "--model", "m", "--concurrency", "4"], cwd=REPO, env={**os.environ, "EXPERT_NO_PROGRESS": "1"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (out.exists() and len(out.read_text().splitlines()) >= 2):
                time.sleep(0.05)
            time.sleep(0.3)  # the other requests are now waiting on a 30 s answer
            interrupted = time.monotonic()
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=20)
            waited = time.monotonic() - interrupted
        finally:
            process.kill()
            process.wait(timeout=10)
    assert code == 130 and waited < 5 and "error: interrupted" in process.stderr.read()
    rows = [json.loads(line) for line in out.read_text().splitlines()]  # in the order the replies came
    assert sorted(rows, key=json.dumps) == sorted([sql_row(0), sql_row(1)], key=json.dumps)
    assert json.loads(out.with_name("generated.jsonl.state.json").read_text())["rows"] == 2
