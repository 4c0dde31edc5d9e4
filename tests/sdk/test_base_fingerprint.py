"""An expert packaged for other base weights than the ones here is used, with a warning that says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from package_helpers import BASE, write_expert

from expert_cli.packages.build import build_package
from expert_cli.packages.install import install_expert
from expert_cli.packages.staging import InstallOptions
from expert_cli.sdk.chat_setup import ChatSettings, prepare_chat


def install(tmp_path: Path, adapter: Path, name: str, sha256: str | None) -> None:
    expert = write_expert(tmp_path / name, adapter, name)
    if sha256 is not None:  # what the author (or the original CLI) wrote; `package` fills only an empty one
        data = json.loads((expert / "manifest.json").read_text())
        data["base_models"][0]["sha256"] = sha256
        (expert / "manifest.json").write_text(json.dumps(data))
    install_expert(str(build_package(expert, tmp_path / f"{name}.expert").path), InstallOptions(allow_unsigned=True))


@pytest.mark.usefixtures("expert_home")
def test_only_an_expert_packaged_for_other_weights_gets_a_warning(tiny_adapter: Path, tmp_path: Path):
    pytest.importorskip("torch")
    install(tmp_path, tiny_adapter, "expert-here", None)  # packaged here: this machine's fingerprint
    install(tmp_path, tiny_adapter, "expert-placeholder", "test_hash_0.6b")  # the original's placeholders
    install(tmp_path, tiny_adapter, "expert-elsewhere", "0" * 64)
    setup = prepare_chat(ChatSettings(experts=["expert-here", "expert-placeholder", "expert-elsewhere"],
                                      route=False))
    mismatches = [warning for warning in setup.warnings if "other weights" in warning]
    assert len(mismatches) == 1 and "`expert-elsewhere@0.1.0`" in mismatches[0] and "000000000000" in mismatches[0]
    assert f"`{BASE}`" in mismatches[0]


@pytest.mark.usefixtures("expert_home")
def test_serve_warns_in_its_log_and_a_gateway_needs_no_local_base(tiny_model: Path, tiny_adapter: Path,
                                                                  tmp_path: Path, caplog):
    pytest.importorskip("torch")
    import shutil

    from expert_cli.sdk.gateway import GatewayState
    from expert_cli.sdk.serving import ServeSettings, ServingState

    base = tmp_path / "base"  # the tiny model with a checksum list, as imported models have
    shutil.copytree(tiny_model, base)
    (base / "checksums.json").write_text(json.dumps({"algorithm": "sha256", "files": {"model.safetensors": "1" * 64}}))
    expert = write_expert(tmp_path / "expert-elsewhere", tiny_adapter, "expert-elsewhere", models=(str(base),))
    data = json.loads((expert / "manifest.json").read_text())
    data["base_models"][0]["sha256"] = "0" * 64
    (expert / "manifest.json").write_text(json.dumps(data))
    install_expert(str(build_package(expert, tmp_path / "elsewhere.expert").path), InstallOptions(allow_unsigned=True))
    state = ServingState(ServeSettings(experts=["expert-elsewhere"]))
    with caplog.at_level("WARNING", logger="expert_cli.serve"):
        state.start()
    try:
        assert state.error is None and state.ready.is_set()
        assert any("`expert-elsewhere@0.1.0` was packaged for other weights" in r.getMessage() for r in caplog.records)
    finally:
        state.close(5)
    # A gateway forwards to a model elsewhere: experts of a base this machine does not hold still route.
    remote = write_expert(tmp_path / "expert-remote", tiny_adapter, "expert-remote", models=("Org/not-in-any-cache",))
    install_expert(str(build_package(remote, tmp_path / "remote.expert").path), InstallOptions(allow_unsigned=True))
    gateway = GatewayState(ServeSettings(experts=["expert-remote"]))
    gateway.start()
    assert gateway.error is None and gateway.router is not None
