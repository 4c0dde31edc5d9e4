"""The folder ``expert-cli export vllm`` writes, served by real vLLM through its own launch script.

Needs CUDA and vLLM: skipped without them, never faked. The experts are on the tiny model (float32)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")

from expert_factory import make_expert

pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
              pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vLLM")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_vllm_serves_every_exported_expert_by_name(cli, tiny_model: Path, tmp_path: Path):
    from expert_cli.sdk.packages import install_expert, install_options

    for name, kind, seed in (("expert-sql", "lora", 1), ("expert-ada", "adalora", 2)):
        folder = make_expert(tiny_model, tmp_path / name, name, kind, seed)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["base_models"][0]["adapters"][0].update(r=4, alpha=8)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        install_expert(str(folder), install_options(allow_unsigned=True))
    out = tmp_path / "fleet"
    assert cli("export", "vllm", out).exit_code == 0
    port = free_port()
    log = (tmp_path / "vllm.log").open("w")
    process = subprocess.Popen([str(out / "serve.sh"), "--host", "127.0.0.1", "--port", str(port), "--dtype",
                                "float32", "--enforce-eager", "--gpu-memory-utilization", "0.2"],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):  # bounded: vLLM compiles and profiles on start
            if process.poll() is not None:
                raise AssertionError((tmp_path / "vllm.log").read_text()[-4000:])
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        models = {model.id: model for model in client.models.list()}
        assert {"expert-sql", "expert-ada"} <= set(models)
        assert models["expert-sql"].model_extra["parent"] == str(tiny_model)
        answers = {}
        for model in ("expert-sql", "expert-ada", str(tiny_model)):
            completion = client.completions.create(model=model, prompt="list the users", max_tokens=6,
                                                   temperature=0, logprobs=1)
            answers[model] = completion.choices[0].logprobs.token_logprobs
        assert answers["expert-sql"] != answers[str(tiny_model)] != answers["expert-ada"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()
