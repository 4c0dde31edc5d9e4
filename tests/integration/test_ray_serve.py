"""``expert-cli serve --ray``: a local Ray cluster on 127.0.0.1 with 2 model replicas serving the installed
experts; the official ``openai`` client gets the single-process server's greedy answers, and requests for one
expert keep landing on the replica that holds it (Ray Serve's multiplexing; the ``x-expert-cli-replica``
header names it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("ray.serve")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from expert_factory import make_expert
from server_helpers import running_server

pytestmark = pytest.mark.slow

GREEDY = {"temperature": 0, "max_tokens": 6}
EXPERTS = (("expert-sql", 1, ["sql", "table"]), ("expert-neo4j", 2, ["cypher", "graph"]),
           ("expert-json", 3, ["json", "object"]), ("expert-css", 4, ["css", "style"]))


@pytest.fixture(scope="module")
def home(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from expert_cli.sdk.packages import install_expert, install_options

    root = tmp_path_factory.mktemp("ray")
    home = root / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERT_HOME", str(home))
        for name, seed, words in EXPERTS:
            folder = make_expert(tiny_model, root / name, name, "lora", seed)
            manifest = json.loads((folder / "manifest.json").read_text())
            manifest["routing"] = {"keywords": words, "priority": 0.7}
            (folder / "manifest.json").write_text(json.dumps(manifest))
            install_expert(str(folder), install_options(allow_unsigned=True))
    return home


def answers(url: str, models: list[str]) -> dict[str, tuple[str, dict, str | None]]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
    found = {}
    for model in models:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "write the sql query over the users table"}],
            **GREEDY)
        completion = raw.parse()
        found[model] = (completion.choices[0].message.content, completion.model_extra["experts"],
                        raw.headers.get("x-expert-cli-replica"))
    return found


def test_two_replicas_answer_as_one_process_does_and_keep_each_expert_on_one_replica(home: Path, tiny_model: Path):
    models = ["expert-sql", "expert-neo4j", "expert-json", "expert-css", "auto", str(tiny_model),
              "expert-sql+expert-json"]
    with running_server(home, "--all") as local:
        expected = answers(local.url, models)
    with running_server(home, "--all", "--ray", "--replicas", "2", "--max-experts-per-replica", "4") as ray:
        first = answers(ray.url, models)
        again = answers(ray.url, models * 2)
        stream = list(openai.OpenAI(base_url=f"{ray.url}/v1", api_key="unused", max_retries=0).chat.completions.create(
            model="expert-neo4j", messages=[{"role": "user", "content": "write the sql query over the users table"}],
            stream=True, **GREEDY))
        missing = httpx.post(f"{ray.url}/v1/chat/completions", timeout=30, json={
            "model": "expert-nope", "messages": [{"role": "user", "content": "hi"}]})
    for model in models:
        assert first[model][:2] == expected[model][:2], model
        assert again[model][:2] == expected[model][:2], model
    replicas = {first[model][2] for model in models}
    assert len(replicas) == 2  # both replicas serve
    for model in models[:4]:  # once an expert has a replica, its requests go there
        assert again[model][2] == first[model][2], model
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == \
        expected["expert-neo4j"][0]
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_a_replica_killed_mid_stream_fails_that_request_cleanly_and_is_replaced(home: Path):
    import os
    import signal
    import time

    long = {"model": "expert-sql", "messages": [{"role": "user", "content": "sql"}], "stream": True,
            "max_tokens": 4000, "ignore_eos": True, "temperature": 0}
    with running_server(home, "--experts", "sql", "--ray", "--replicas", "2") as ray:
        with httpx.stream("POST", f"{ray.url}/v1/chat/completions", json=long, timeout=120) as response:
            assert response.status_code == 200
            pid = int(response.headers["x-expert-cli-replica"].rsplit("pid=", 1)[1])
            lines = response.iter_lines()
            assert next(line for line in lines if line).startswith("data: {")
            os.kill(pid, signal.SIGKILL)
            rest = [line for line in lines if line]
        assert rest[-1] == "data: [DONE]"
        assert json.loads(rest[-2][6:])["error"]["code"] == "replica_failed"
        deadline, answered = time.monotonic() + 180, None
        while answered is None and time.monotonic() < deadline:
            reply = httpx.post(f"{ray.url}/v1/chat/completions", timeout=60, json={**long, "stream": False,
                                                                                     "max_tokens": 4})
            answered = reply if reply.status_code == 200 else time.sleep(1)
        assert answered is not None and answered.json()["experts"] == {"expert-sql": 1.0}
