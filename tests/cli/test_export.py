"""``expert-cli export vllm``: installed experts as PEFT LoRA folders and the `vllm serve` launch command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("peft")

from expert_factory import make_expert


@pytest.fixture
def installed(tiny_model: Path, tmp_path: Path) -> Path:
    """Three installed experts on the tiny model: LoRA, AdaLoRA and IA3 (which vLLM cannot load)."""
    from expert_cli.sdk.packages import install_expert, install_options

    for name, kind in (("expert-sql", "lora"), ("expert-ada", "adalora"), ("expert-json", "ia3")):
        folder = make_expert(tiny_model, tmp_path / name, name, kind, seed=1)
        manifest = json.loads((folder / "manifest.json").read_text())
        if kind == "adalora":  # a ranked method declares its rank
            manifest["base_models"][0]["adapters"][0].update(r=4, alpha=8)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        install_expert(str(folder), install_options(allow_unsigned=True))
    return tmp_path


def test_every_expert_vllm_loads_is_exported_with_the_exact_command(cli, installed: Path, tiny_model: Path):
    out = installed / "fleet"
    result = cli("export", "vllm", out, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(report["experts"]) == ["expert-ada", "expert-sql"]
    assert report["refused"] == {"expert-json": "`expert-json@0.1.0` cannot be served by vLLM: IA3 rescales "
                                                "activations, which no LoRA pair expresses, and vLLM loads "
                                                "LoRA adapters only"}
    modules = [f"{name}={out / 'adapters' / name}" for name in report["experts"]]
    assert report["command"] == ["vllm", "serve", str(tiny_model), "--enable-lora", "--lora-modules", *modules,
                                 "--max-lora-rank", "8", "--max-loras", "2"]
    for name in report["experts"]:
        config = json.loads((out / "adapters" / name / "adapter_config.json").read_text())
        assert config["peft_type"] == "LORA" and (out / "adapters" / name / "adapter_model.safetensors").is_file()


def test_the_script_runs_that_command_with_extra_arguments(cli, installed: Path, tmp_path: Path):
    out = installed / "fleet"
    report = json.loads(cli("export", "vllm", out, "--experts", "sql", "--json").stdout)
    stub = tmp_path / "bin"  # a `vllm` that prints the arguments it was given, to check the script's quoting
    stub.mkdir()
    (stub / "vllm").write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    (stub / "vllm").chmod(0o755)
    moved = tmp_path / "moved fleet"  # the script finds its adapters wherever the folder goes
    out.rename(moved)
    ran = subprocess.run([str(moved / "serve.sh"), "--port", "8000"], capture_output=True, text=True, check=True,
                         env={**os.environ, "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}"})
    expected = [word.replace(str(out), str(moved)) for word in report["command"][1:]]
    assert json.loads(ran.stdout) == [*expected, "--port", "8000"]


def test_a_named_expert_vllm_cannot_load_is_refused_with_the_reason(cli, installed: Path):
    result = cli("export", "vllm", installed / "fleet", "--experts", "sql,json")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: `expert-json@0.1.0` cannot be served by vLLM: IA3 rescales activations")
    assert not (installed / "fleet").exists()


def test_a_folder_in_use_needs_force(cli, installed: Path):
    out = installed / "fleet"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    result = cli("export", "vllm", out)
    assert result.exit_code == 2 and "exists and is not empty" in result.stderr
    assert cli("export", "vllm", out, "--force").exit_code == 0
    assert not (out / "keep.txt").exists() and (out / "serve.sh").is_file()
