"""``expert-cli serve`` flags refused before anything starts (the servers themselves: tests/integration)."""

from __future__ import annotations

import pytest

pytest.importorskip("uvicorn")


def test_an_upstream_must_be_an_http_url(cli):
    result = cli("serve", "--upstream", "gpu-box:8000", "--base-model", "builtin:tiny-qwen3")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: `--upstream` must be an http(s) URL such as `http://host:8000/v1`")


def test_model_flags_do_not_apply_to_a_gateway(cli):
    result = cli("serve", "--upstream", "http://127.0.0.1:9/v1", "--device", "cpu")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: `--device` and `--max-loaded` do not apply with `--upstream`")


def test_ray_and_an_upstream_are_exclusive(cli):
    result = cli("serve", "--ray", "--upstream", "http://127.0.0.1:9/v1")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: `--ray` and `--upstream` cannot be used together")


@pytest.mark.parametrize(("value", "message"), [
    ("{min_replicas: 1}", "error: `--autoscaling` is not JSON"),
    ("[1, 4]", "error: `--autoscaling` must be a JSON object"),
])
def test_ray_autoscaling_settings_must_be_a_json_object(cli, value, message):
    pytest.importorskip("ray")
    result = cli("serve", "--ray", "--autoscaling", value, "--base-model", "builtin:tiny-qwen3")
    assert result.exit_code == 2
    assert result.stderr.startswith(message)


def test_ray_autoscaling_settings_reach_ray_serve_as_given():
    from expert_cli.cli.serve import parse_autoscaling

    assert parse_autoscaling('{"min_replicas": 1, "max_replicas": 4}') == {"min_replicas": 1, "max_replicas": 4}
