"""The gateway's pure parts: what it forwards to an upstream, and how upstream errors are read."""

from __future__ import annotations

import json

import pytest

from expert_cli.sdk.gateway import GatewaySettings, UpstreamModels, forward_body, relabel, upstream_error
from expert_cli.sdk.openai_api import APIError, parse_chat

URL = "http://gpu-box:8000/v1"
# /v1/models as vLLM lists a base and two --lora-modules, and as expert-cli serve lists the same
VLLM = {"object": "list", "data": [
    {"id": "Qwen/Qwen3-0.6B", "object": "model", "owned_by": "vllm", "root": "Qwen/Qwen3-0.6B", "parent": None},
    {"id": "expert-sql", "object": "model", "owned_by": "vllm", "root": "/x/sql", "parent": "Qwen/Qwen3-0.6B"},
    {"id": "expert-neo4j", "object": "model", "owned_by": "vllm", "root": "/x/neo", "parent": "Qwen/Qwen3-0.6B"}]}
OURS = {"object": "list", "data": [
    {"id": "expert-sql", "owned_by": "expert-cli", "parent": "base-id"},
    {"id": "expert-neo4j", "owned_by": "expert-cli", "parent": "base-id"},
    {"id": "base-id", "owned_by": "expert-cli", "parent": None},
    {"id": "auto", "owned_by": "expert-cli", "parent": "base-id"}]}


def body(model: str, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "temperature": 0, **extra}


def forward(upstream: dict, model: str, weights: dict[str, float], **extra):
    document = body(model, **extra)
    return forward_body(document, parse_chat(document, 64), weights, UpstreamModels.from_body(upstream), URL)


def test_the_upstreams_base_and_whether_it_composes_come_from_its_model_list():
    vllm, ours = UpstreamModels.from_body(VLLM), UpstreamModels.from_body(OURS)
    assert (vllm.base, vllm.composes) == ("Qwen/Qwen3-0.6B", False)
    assert (ours.base, ours.composes) == ("base-id", True)


def test_one_expert_is_forwarded_by_name_and_the_rest_of_the_body_is_kept():
    sent, answered = forward(VLLM, "sql", {"expert-sql": 1.0}, experts={"sql": 1}, seed=7)
    assert sent == {**body("expert-sql"), "seed": 7} and answered == {"expert-sql": 1.0}


def test_the_bare_base_is_forwarded_as_the_upstreams_base_id():
    sent, answered = forward(VLLM, "builtin:tiny", {})
    assert sent["model"] == "Qwen/Qwen3-0.6B" and answered == {}


def test_a_composition_goes_to_an_upstream_that_composes_as_weights():
    weights = {"expert-sql": 0.7, "expert-neo4j": 0.3}
    sent, answered = forward(OURS, "auto", weights)
    assert sent["model"] == "expert-sql" and sent["experts"] == weights and answered == weights


def test_vllm_gets_the_routers_lead_expert_and_refuses_an_asked_composition():
    sent, answered = forward(VLLM, "auto", {"expert-sql": 0.7, "expert-neo4j": 0.3})
    assert sent["model"] == "expert-sql" and "experts" not in sent and answered == {"expert-sql": 1.0}
    with pytest.raises(APIError) as caught:
        forward(VLLM, "sql+neo4j", {"expert-sql": 0.5, "expert-neo4j": 0.5})
    assert (caught.value.status, caught.value.code) == (400, "composition_unsupported")


def test_an_expert_the_upstream_does_not_serve_is_a_404_naming_it():
    with pytest.raises(APIError) as caught:
        forward(VLLM, "json", {"expert-json": 1.0})
    assert caught.value.status == 404 and "`expert-json`" in caught.value.message and URL in caught.value.message


@pytest.mark.parametrize(("content", "message", "code"), [
    (json.dumps({"error": {"message": "bad", "type": "invalid_request_error", "param": "x", "code": "c"}}),
     "bad", "c"),
    (json.dumps({"object": "error", "message": "The model `x` does not exist.", "type": "NotFoundError",
                 "param": None, "code": 404}), "The model `x` does not exist.", 404),  # vLLM's flat form
    ("<html>Bad Gateway</html>", f"the upstream `{URL}` answered 404: <html>Bad Gateway</html>", "upstream_error"),
])
def test_upstream_errors_keep_their_status_in_openais_shape(content, message, code):
    error = upstream_error(404, content.encode(), URL)
    assert error.status == 404 and error.body()["error"]["message"] == message
    assert error.body()["error"]["code"] == code


def test_chunks_are_relabelled_and_carry_the_experts_first_and_last():
    call = parse_chat(body("auto"), 64)
    first = {"model": "expert-sql", "choices": [{"delta": {"role": "assistant", "content": ""}}]}
    middle = {"model": "expert-sql", "choices": [{"delta": {"content": "x"}, "finish_reason": None}]}
    last = {"model": "expert-sql", "choices": [{"delta": {}, "finish_reason": "stop"}]}
    weights = {"expert-sql": 1.0}
    assert relabel(first, call, weights) == {**first, "model": "auto", "experts": weights}
    assert "experts" not in relabel(middle, call, weights) and middle["model"] == "auto"
    assert relabel(last, call, weights)["experts"] == weights


@pytest.mark.parametrize("url", ["gpu-box:8000", "ftp://gpu-box/v1", "http:///v1"])
def test_an_upstream_that_is_not_an_http_url_is_refused(url):
    from expert_cli.core.errors import UsageError

    with pytest.raises(UsageError, match="`--upstream` must be an http"):
        GatewaySettings(url).check()
