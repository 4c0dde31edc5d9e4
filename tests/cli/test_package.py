"""`expert-cli package`: the file, its sidecar, --json, --model, --include-tests, errors."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from package_helpers import BASE, sha256, write_expert


def test_package_json_names_the_file_and_its_hash(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter, with_tests=True)
    result = cli("package", expert, "-o", tmp_path / "dist", "--include-tests", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    package = Path(document["path"])
    assert package == tmp_path / "dist" / "expert-demo-tiny-qwen3.v0.1.0.expert"
    assert document["sha256"] == sha256(package) and document["routing_exemplars"] == 50
    assert Path(document["sidecar"]).read_text() == f"{sha256(package)}  {package.name}\n"
    with tarfile.open(package) as tar:
        assert "tests/test_cases.json" in tar.getnames()


def test_package_prints_a_summary_on_stderr_only(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter)
    result = cli("package", expert, "-o", tmp_path / "x.expert")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.startswith("packaged expert-demo@0.1.0 for builtin:tiny-qwen3")
    assert (tmp_path / "x.expert").is_file() and (tmp_path / "x.expert.sha256").is_file()


def test_two_models_without_model_is_a_usage_error(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter, models=[BASE, "Qwen/Qwen3-0.6B"])
    result = cli("package", expert, "-o", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: `expert-demo` lists 2 base models")
    assert "--model" in result.stderr
    ok = cli("package", expert, "-o", tmp_path, "--model", "tiny-qwen3", "--json")
    assert json.loads(ok.stdout)["base_model"] == BASE


def test_untrained_expert_is_an_error_with_a_hint(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter)
    (expert / "weights" / "tiny-qwen3" / "adapter" / "adapter_config.json").unlink()
    result = cli("package", expert, "-o", tmp_path)
    assert result.exit_code == 1 and result.stdout == ""
    assert "error: no trained adapter" in result.stderr and "hint: train it first" in result.stderr
    assert list(tmp_path.glob("*.expert")) == []


def test_output_below_a_file_is_an_error_and_writes_nothing(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "expert", tiny_adapter)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    result = cli("package", expert, "-o", blocker / "dist" / "x.expert")
    assert result.exit_code == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == (f"error: cannot create the folder `{blocker / 'dist'}`: "
                                             "a file stands where a folder should be")
    assert result.stderr.splitlines()[1].startswith("hint: check the path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "expert"]


def test_a_failed_write_leaves_no_temp_file(cli, tiny_adapter: Path, tmp_path: Path, monkeypatch) -> None:
    from expert_cli.packages import build as packaging

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    expert = write_expert(tmp_path / "expert", tiny_adapter)
    monkeypatch.setattr(packaging, "write_archive", disk_full)
    result = cli("package", expert, "-o", tmp_path / "dist")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot write `{tmp_path / 'dist' / 'expert-demo-tiny-qwen3.v0.1.0.expert'}`"
                                    ": No space left on device")
    assert list((tmp_path / "dist").iterdir()) == []


def test_the_package_and_its_sidecar_get_ordinary_file_modes(cli, tiny_adapter: Path, tmp_path: Path) -> None:
    import os
    import stat

    expert = write_expert(tmp_path / "expert", tiny_adapter)
    old_mask = os.umask(0o022)
    try:
        assert cli("package", expert, "-o", tmp_path / "x.expert").exit_code == 0
    finally:
        os.umask(old_mask)
    for name in ("x.expert", "x.expert.sha256"):  # mkstemp's 0600 made them unreadable to anyone else
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
