"""``expert-cli serve`` as a real subprocess on 127.0.0.1, driven by the official ``openai`` client and httpx."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("torch")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from expert_factory import make_expert
from server_helpers import Server, running_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
GREEDY = {"temperature": 0, "max_tokens": 8}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 150}},
          "required": ["name", "age"]}


@pytest.fixture(scope="module")
def home(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EXPERT_HOME with three tiny experts installed (two LoRA, one IA3), routed by their keywords."""
    from expert_cli.sdk.packages import install_expert, install_options

    root = tmp_path_factory.mktemp("server")
    home = root / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERT_HOME", str(home))
        for name, kind, seed, words in (("expert-sql", "lora", 1, ["sql", "table"]),
                                        ("expert-neo4j", "lora", 2, ["cypher", "graph"]),
                                        ("expert-json", "ia3", 3, ["json", "object"])):
            folder = make_expert(tiny_model, root / name, name, kind, seed)
            manifest = json.loads((folder / "manifest.json").read_text())
            manifest["routing"] = {"keywords": words, "priority": 0.7}
            (folder / "manifest.json").write_text(json.dumps(manifest))
            install_expert(str(folder), install_options(allow_unsigned=True))
        make_expert(tiny_model, root / "expert-late", "expert-late", "lora", 4)
    return home


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Server]:
    with running_server(home, "--all", "--max-batch", "8") as running:
        yield running


def chat(client: openai.OpenAI, model: str, prompt: str, **options):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                          **{**GREEDY, **options})


# -- what answers --------------------------------------------------------------------------------------
def test_models_lists_every_expert_with_its_base_then_the_base_and_auto(server: Server, tiny_model: Path):
    models = {model.id: model for model in server.client().models.list()}
    base = str(tiny_model)
    assert set(models) == {"expert-sql", "expert-neo4j", "expert-json", base, "auto"}
    assert models["expert-sql"].model_extra["parent"] == base
    assert models[base].model_extra["parent"] is None


def test_each_model_form_answers_and_says_which_experts_did(server: Server, tiny_model: Path):
    client = server.client()
    cases = {"sql": {"expert-sql": 1.0}, "expert-neo4j": {"expert-neo4j": 1.0}, str(tiny_model): {},
             "expert-sql+expert-json": {"expert-sql": 0.5, "expert-json": 0.5}}
    for model, experts in cases.items():
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "list the users"}], **GREEDY)
        completion = raw.parse()
        assert completion.model_extra["experts"] == experts, model
        assert raw.headers["x-expert-cli-experts"] == (",".join(f"{k}={v:g}" for k, v in experts.items()) or "none")
        assert completion.usage.completion_tokens >= 1
        assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    weighted = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}],
                                              extra_body={"experts": {"sql": 0.7, "neo4j": 0.3}}, **GREEDY)
    assert weighted.model_extra["experts"] == {"expert-sql": 0.7, "expert-neo4j": 0.3}


def test_auto_routes_like_chat_does(server: Server, home: Path, monkeypatch):
    from expert_cli.sdk.routing import route_prompt

    monkeypatch.setenv("EXPERT_HOME", str(home))
    client = server.client()
    for prompt in ("Write the sql query over the users table", "What is the capital of France?"):
        expected = dict(route_prompt(prompt).decision.weights)  # the same router, in this process
        assert chat(client, "auto", prompt).model_extra["experts"] == pytest.approx(expected), prompt


def test_the_answers_equal_the_sdks_greedy_answers(server: Server, home: Path, monkeypatch):
    from expert_cli.sdk.manager import ExpertManager

    monkeypatch.setenv("EXPERT_HOME", str(home))
    client = server.client()
    with ExpertManager() as manager:
        manager.load_expert("expert-sql")
        expected = manager.generate("expert-sql", "count the orders", **GREEDY).text
    assert chat(client, "sql", "count the orders").choices[0].message.content == expected


def test_completions_endpoint_answers_a_plain_prompt(server: Server):
    completion = server.client().completions.create(model="sql", prompt="list the users", **GREEDY)
    assert completion.choices[0].text and completion.usage.completion_tokens >= 1


# -- streaming and batching ------------------------------------------------------------------------------
def test_stream_pieces_add_up_to_the_answer_and_usage_comes_last(server: Server):
    client = server.client()
    whole = chat(client, "sql", "list the users").choices[0].message.content
    chunks = list(client.chat.completions.create(
        model="sql", messages=[{"role": "user", "content": "list the users"}], stream=True,
        stream_options={"include_usage": True}, **GREEDY))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_sse_framing_ends_with_done(server: Server):
    body = {"model": "sql", "messages": [{"role": "user", "content": "hi"}], "stream": True, **GREEDY}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["choices"][0]["delta"]["role"] == "assistant"


def test_sixteen_concurrent_mixed_streams_equal_their_solo_answers(server: Server):
    client = server.client()
    models = ["sql", "neo4j", "json", "sql+json", "auto", "neo4j", "json+neo4j", "sql"] * 2
    prompts = [f"question {i}: list the {'users' if i % 2 else 'orders'} table" for i in range(16)]
    lengths = [4 + (i * 5) % 13 for i in range(16)]
    solo = [chat(client, m, p, max_tokens=n).choices[0].message.content for m, p, n in zip(models, prompts, lengths)]

    def streamed(index: int) -> str:
        stream = client.chat.completions.create(model=models[index], messages=[{"role": "user", "content":
                                                prompts[index]}], stream=True, temperature=0, max_tokens=lengths[index])
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(streamed, range(16)))
    assert together == solo
    assert server.metric("expert_cli_requests_total") >= 32


def test_a_client_that_disconnects_frees_its_row(server: Server):
    before = server.metric("expert_cli_requests_total", 'outcome="cancelled"')
    body = {"model": "sql", "messages": [{"role": "user", "content": "tell a long story"}], "stream": True,
            "temperature": 1.0, "seed": 7, "max_tokens": 480, "ignore_eos": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=60) as response:
        next(response.iter_lines())  # the first event, then hang up
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.metric("expert_cli_requests_total", 'outcome="cancelled"') > before:
            break
        time.sleep(0.05)
    assert server.metric("expert_cli_requests_total", 'outcome="cancelled"') == before + 1
    assert server.metric("expert_cli_running_rows") == 0


def test_json_schema_response_format_gives_parseable_json(server: Server):
    completion = server.client().chat.completions.create(
        model="json", messages=[{"role": "user", "content": "Ada is 36"}], temperature=0, max_tokens=120,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}})
    assert completion.choices[0].finish_reason == "stop"
    document = json.loads(completion.choices[0].message.content)
    assert set(document) == {"name", "age"} and isinstance(document["age"], int)


# -- errors ------------------------------------------------------------------------------------------
def test_errors_have_openais_shape_and_status(server: Server):
    client = server.client()
    with pytest.raises(openai.NotFoundError) as missing:
        chat(client, "expert-nope", "hi")
    assert missing.value.body["code"] == "model_not_found" and missing.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as hot:
        chat(client, "sql", "hi", temperature=7)
    assert hot.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as long_prompt:
        chat(client, "sql", "word " * 2000)
    assert long_prompt.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as too_many:
        chat(client, "sql", "hi", max_tokens=100_000)
    assert too_many.value.body["param"] == "max_tokens"


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("POST", "/v1/chat/completions", b"{not json", 400, "invalid_json"),
    ("POST", "/v1/chat/completions", b"[1, 2]", 400, "invalid_json"),
    ("POST", "/v1/chat/completions", b'{"model": "sql", "messages": [{"role": "tool", "content": "x"}]}', 400,
     "invalid_value"),
    ("POST", "/v1/chat/completions", b'{"model": "sql", "messages": [{"role": "user", "content": "x"}], "n": 3}',
     400, "invalid_value"),
    ("POST", "/v1/chat/completions", b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json"),
    ("POST", "/v1/chat/completions", b" " * (2 << 20), 413, "body_too_large"),
    ("GET", "/v1/chat/completions", b"", 405, "method_not_allowed"),
    ("GET", "/v1/nothing", b"", 404, "not_found"),
])
def test_bad_requests_get_a_status_and_an_error_object(server: Server, method, path, body, status, code):
    response = httpx.request(method, f"{server.url}{path}", content=body, timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and "type" in error


# -- experts at run time ------------------------------------------------------------------------------
def test_an_expert_installed_while_serving_is_loaded_and_unloaded_without_a_restart(server: Server, home: Path,
                                                                                    monkeypatch):
    from expert_cli.sdk.packages import install_expert, install_options

    monkeypatch.setenv("EXPERT_HOME", str(home))
    late = home.parent / "expert-late"
    install_expert(str(late), install_options(allow_unsigned=True))
    client = server.client()
    with pytest.raises(openai.NotFoundError):
        chat(client, "late", "hi")
    loaded = httpx.post(f"{server.url}/v1/experts/late/load", timeout=60)
    assert loaded.status_code == 200 and "expert-late" in loaded.json()["experts"]
    assert "expert-late" in {m.id for m in client.models.list()}
    assert chat(client, "late", "hi").model_extra["experts"] == {"expert-late": 1.0}
    assert httpx.post(f"{server.url}/v1/experts/late/unload", timeout=60).status_code == 200
    with pytest.raises(openai.NotFoundError):
        chat(client, "late", "hi")
    missing = httpx.post(f"{server.url}/v1/experts/nope/load", timeout=60)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


# -- chat --server ------------------------------------------------------------------------------------
def test_chat_through_the_server_answers_as_the_server_does(server: Server, cli):
    expected = chat(server.client(), "sql", "count the orders").choices[0].message.content
    result = cli("chat", "--server", server.url, "--experts", "sql", "--no-route", "--prompt", "count the orders",
                 "--temperature", "0", "--max-tokens", "8")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected + "\n"


def test_an_interactive_chat_through_the_server_takes_blocks_and_forced_experts(server: Server, cli):
    session = '"""\nSchema: users(id, age)\nWho is over 30?\n"""\n/experts neo4j\nhello\n/exit\n'
    result = cli("chat", "-i", "--server", server.url, "--debug", "--no-stream", "--max-tokens", "4",
                 "--temperature", "0", input=session)
    assert result.exit_code == 0, result.stderr
    compositions = re.findall(r"experts \((?:routed|forced|all)\): .*", result.stderr)  # --debug, per answer
    assert len(compositions) == 2  # two prompts: the three-line block was one
    assert compositions[1] == "experts (forced): expert-neo4j@? (weight 1)"


def test_chat_with_no_server_there_is_one_error_line(cli):
    result = cli("chat", "--server", "http://127.0.0.1:9", "--prompt", "hi")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the server at `http://127.0.0.1:9`")
    local_only = cli("chat", "--server", "http://127.0.0.1:9", "--device", "cpu", "--prompt", "hi")
    assert local_only.exit_code == 2 and "`--device` is for a local chat" in local_only.stderr


# -- a second server: auth, overload, SIGTERM --------------------------------------------------------
def test_auth_overload_and_a_graceful_stop(home: Path):
    with running_server(home, "--experts", "sql", "--max-batch", "1", "--max-queue", "1",
                        env={"EXPERT_API_KEY": "s3cret"}) as server:
        with pytest.raises(openai.AuthenticationError):
            chat(server.client(api_key="wrong"), "sql", "hi")
        assert httpx.get(f"{server.url}/v1/models", timeout=10).status_code == 401
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200  # health needs no key
        client = server.client(api_key="s3cret")
        assert chat(client, "sql", "hi").choices[0].message.content is not None

        body = {"model": "sql", "messages": [{"role": "user", "content": "story"}], "max_tokens": 300,
                "temperature": 1.0, "seed": 3, "ignore_eos": True}
        headers = {"Authorization": "Bearer s3cret"}
        with ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(lambda _: httpx.post(f"{server.url}/v1/chat/completions", json=body,
                                                           headers=headers, timeout=120), range(6)))
        statuses = sorted(r.status_code for r in responses)
        assert 200 in statuses and 503 in statuses, statuses
        refused = next(r for r in responses if r.status_code == 503)
        assert refused.headers["retry-after"] and refused.json()["error"]["code"] == "overloaded"

        finished: list[str] = []

        def long_stream() -> None:
            with httpx.stream("POST", f"{server.url}/v1/chat/completions", json={**body, "stream": True},
                              headers=headers, timeout=120) as response:
                finished.extend(line for line in response.iter_lines() if line)

        worker = threading.Thread(target=long_stream)
        worker.start()
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        worker.join(timeout=60)
        assert finished and finished[-1] == "data: [DONE]"  # the running request finished first
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises it once drained
        assert "Traceback" not in "".join(server.log)


def test_a_public_host_needs_an_api_key(cli):
    result = cli("serve", "--host", "0.0.0.0", "--base-model", "builtin:tiny-qwen3")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: serving on `0.0.0.0` (not this machine only) needs an API key")
