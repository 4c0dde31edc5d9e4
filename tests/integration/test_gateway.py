"""``expert-cli serve --upstream URL`` (a real subprocess) in front of a real ``expert-cli serve``, both on
127.0.0.1, driven by the official ``openai`` client and httpx."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from expert_factory import make_expert
from server_helpers import Server, running_server

pytestmark = pytest.mark.slow

GREEDY = {"temperature": 0, "max_tokens": 8}
KEY = "upstream-secret"


@pytest.fixture(scope="module")
def home(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from expert_cli.sdk.packages import install_expert, install_options

    root = tmp_path_factory.mktemp("gateway")
    home = root / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERT_HOME", str(home))
        for name, seed, words in (("expert-sql", 1, ["sql", "table"]), ("expert-neo4j", 2, ["cypher", "graph"])):
            folder = make_expert(tiny_model, root / name, name, "lora", seed)
            manifest = json.loads((folder / "manifest.json").read_text())
            manifest["routing"] = {"keywords": words, "priority": 0.7}
            (folder / "manifest.json").write_text(json.dumps(manifest))
            install_expert(str(folder), install_options(allow_unsigned=True))
    return home


@pytest.fixture(scope="module")
def upstream(home: Path) -> Iterator[Server]:
    with running_server(home, "--all", "--max-tokens-cap", "32", "--api-key", KEY) as running:
        yield running


@pytest.fixture(scope="module")
def gateway(home: Path, upstream: Server) -> Iterator[Server]:
    with running_server(home, "--all", "--upstream", f"{upstream.url}/v1",
                        env={"EXPERT_UPSTREAM_API_KEY": KEY}) as running:
        yield running


def ask(client: openai.OpenAI, model: str, prompt: str, **options):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], **{**GREEDY, **options})


def test_every_model_form_gets_the_upstreams_own_answer_and_experts(gateway: Server, upstream: Server,
                                                                    tiny_model: Path):
    direct, through = upstream.client(KEY), gateway.client()
    cases = [("expert-sql", "list the users", {"expert-sql": 1.0}),
             ("neo4j", "list the users", {"expert-neo4j": 1.0}),
             ("auto", "write the sql query over the users table", {"expert-sql": 1.0}),
             (str(tiny_model), "list the users", {}),
             ("expert-sql+expert-neo4j", "list the users", {"expert-sql": 0.5, "expert-neo4j": 0.5})]
    for model, prompt, experts in cases:
        raw = ask(through, model, prompt)
        answer, expected = raw.parse(), ask(direct, model, prompt).parse()
        assert answer.choices[0].message.content == expected.choices[0].message.content, model
        assert answer.model_extra["experts"] == experts == expected.model_extra["experts"], model
        assert raw.headers["x-expert-cli-experts"] == (",".join(f"{k}={v:g}" for k, v in experts.items()) or "none")
        assert answer.model == model
        assert answer.usage.completion_tokens == expected.usage.completion_tokens
    weighted = through.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}],
                                               extra_body={"experts": {"sql": 0.7, "neo4j": 0.3}}, **GREEDY)
    assert weighted.model_extra["experts"] == {"expert-sql": 0.7, "expert-neo4j": 0.3}


def test_auto_routes_with_the_local_router(gateway: Server, home: Path, monkeypatch):
    from expert_cli.sdk.routing import route_prompt

    monkeypatch.setenv("EXPERT_HOME", str(home))
    for prompt in ("match the graph nodes with cypher", "What is the capital of France?"):
        expected = dict(route_prompt(prompt).decision.weights)
        assert ask(gateway.client(), "auto", prompt).parse().model_extra["experts"] == pytest.approx(expected)


def test_a_stream_is_relayed_with_the_experts_and_usage(gateway: Server):
    client = gateway.client()
    whole = ask(client, "expert-sql", "list the users").parse().choices[0].message.content
    chunks = list(client.chat.completions.create(
        model="expert-sql", messages=[{"role": "user", "content": "list the users"}], stream=True,
        stream_options={"include_usage": True}, **GREEDY))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == whole
    assert chunks[0].model_extra["experts"] == {"expert-sql": 1.0}
    finishing = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0].model_extra["experts"] == {"expert-sql": 1.0}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1
    assert all(chunk.model == "expert-sql" for chunk in chunks)
    with httpx.stream("POST", f"{gateway.url}/v1/completions", timeout=30, json={
            "model": "auto", "prompt": "sql table", "stream": True, **GREEDY}) as response:
        assert response.headers["x-expert-cli-experts"] == "expert-sql=1"
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)


def test_upstream_errors_pass_through_in_openais_shape(gateway: Server):
    client = gateway.client()
    with pytest.raises(openai.BadRequestError) as caught:  # the gateway allows 4096, the upstream 32
        ask(client, "expert-sql", "hi", max_tokens=100)
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == "max_tokens" and "32" in caught.value.body["message"]
    response = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=30, json={
        "model": "expert-sql", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100, "stream": True})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_value"
    with pytest.raises(openai.NotFoundError) as missing:  # resolved here, as the local server does
        ask(client, "expert-nope", "hi")
    assert missing.value.body["code"] == "model_not_found"


def test_requests_are_counted_by_expert(gateway: Server):
    before = gateway.metric("expert_cli_requests_total", 'experts="expert-neo4j",outcome="ok"')
    ask(gateway.client(), "expert-neo4j", "hi")
    assert gateway.metric("expert_cli_requests_total", 'experts="expert-neo4j",outcome="ok"') == before + 1


def test_an_upstream_that_is_down_is_a_502_naming_it(home: Path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    with running_server(home, "--all", "--upstream", dead) as down:
        for stream in (False, True):
            response = httpx.post(f"{down.url}/v1/chat/completions", timeout=30, json={
                "model": "expert-sql", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
            assert response.status_code == 502
            error = response.json()["error"]
            assert error["code"] == "upstream_unreachable" and dead in error["message"]
        assert httpx.get(f"{down.url}/health", timeout=10).status_code == 200  # the gateway itself is up
