"""install / uninstall on real packages: trust policy, tampering, hostile archives, --force, rollback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_archives import HOSTILE, REASONS, SMALL
from package_helpers import extract_plain, flip_byte, repack, tree, write_expert

from expert_cli.core import paths
from expert_cli.core.errors import ExpertError, InstallError, NotInstalledError, PackageError, SignatureError
from expert_cli.core.hashing import write_sidecar
from expert_cli.packages import staging as installer
from expert_cli.packages.build import build_package
from expert_cli.packages.install import install_expert, uninstall_expert
from expert_cli.packages.registry import read_registry
from expert_cli.packages.signer import sign_package
from expert_cli.packages.signing import generate_keypair
from expert_cli.packages.staging import InstallOptions
from expert_cli.packages.trust import add_trusted_key

ALLOW = InstallOptions(allow_unsigned=True)
SIGNED_FILES = ["manifest.json", "LICENSE", "README.md", "adapter_config.json", "adapter_model.safetensors",
                "grammar.gbnf", "routing_exemplars.json"]


@pytest.fixture(scope="module")
def built(tiny_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One unsigned and one signed package of expert-demo 0.1.0, plus the signing key pair."""
    root = tmp_path_factory.mktemp("built")
    expert = write_expert(root / "expert", tiny_adapter)
    unsigned = build_package(expert, root / "unsigned.expert").path
    signed = shutil.copyfile(unsigned, root / "signed.expert")
    pair = generate_keypair(root / "publisher.pem")
    sign_package(signed, pair.private_key)
    return {"expert": expert, "unsigned": unsigned, "signed": signed, "pub": pair.public_key, "key": pair.private_key}


def _copy(built: dict[str, Path], which: str, tmp_path: Path) -> Path:
    return Path(shutil.copyfile(built[which], tmp_path / f"{which}.expert"))


def _state() -> tuple[bytes | None, list[str]]:
    registry = paths.registry_path()
    return (registry.read_bytes() if registry.exists() else None), tree(paths.experts_dir())


def test_signed_and_trusted_package_installs(built: dict[str, Path], tmp_path: Path) -> None:
    add_trusted_key(built["pub"])
    result = install_expert(str(_copy(built, "signed", tmp_path)))
    assert (result.name, result.version, result.trust, result.replaced) == ("expert-demo", "0.1.0", "trusted", False)
    target = paths.install_dir("expert-demo", "0.1.0")
    assert sorted(p.name for p in target.iterdir()) == sorted(SIGNED_FILES)
    entry = read_registry().get("expert-demo")
    assert entry.path == str(target) and entry.base_model == "builtin:tiny-qwen3"
    assert entry.adapters[0]["size_bytes"] == (target / "adapter_model.safetensors").stat().st_size
    assert entry.extra["integrity"]["trust"] == "trusted"
    assert tree(paths.tmp_dir()) == []


def test_unsigned_package_needs_allow_unsigned(built: dict[str, Path], tmp_path: Path) -> None:
    package = _copy(built, "unsigned", tmp_path)
    with pytest.raises(SignatureError) as info:
        install_expert(str(package))
    assert "is not signed" in info.value.message and "--allow-unsigned" in info.value.hint
    assert install_expert(str(package), ALLOW).trust == "unsigned"


def test_untrusted_signature_is_refused_even_with_allow_unsigned(built: dict[str, Path], tmp_path: Path) -> None:
    package = _copy(built, "signed", tmp_path)
    for options in (InstallOptions(), ALLOW):
        with pytest.raises(SignatureError) as info:
            install_expert(str(package), options)
        assert "not in your trusted keys" in info.value.message and "--trust-key" in info.value.hint
    result = install_expert(str(package), InstallOptions(trust_keys=(str(built["pub"]),)))
    assert result.trust == "trusted"


def test_resigned_with_an_untrusted_key_is_refused(built: dict[str, Path], tmp_path: Path) -> None:
    add_trusted_key(built["pub"])
    package = _copy(built, "signed", tmp_path)
    sign_package(package, generate_keypair(tmp_path / "attacker.pem").private_key)
    before = _state()
    with pytest.raises(SignatureError, match="not in your trusted keys"):
        install_expert(str(package))
    assert _state() == before


def _tampered(built: dict[str, Path], tmp_path: Path, member: str) -> Path:
    folder = extract_plain(built["signed"], tmp_path / "x")
    if member == "manifest.json":  # flip a byte inside a string value, so the JSON stays valid
        text = (folder / member).read_bytes()
        flip_byte(folder / member, text.index(b"test expert") + 1)
    else:
        flip_byte(folder / member)
    return repack(folder, tmp_path / "tampered.expert")


@pytest.mark.parametrize("member", SIGNED_FILES)
def test_flipping_one_byte_of_any_file_is_refused(built: dict[str, Path], tmp_path: Path, member: str) -> None:
    add_trusted_key(built["pub"])
    package = _tampered(built, tmp_path, member)
    before = _state()
    with pytest.raises((PackageError, SignatureError)) as info:
        install_expert(str(package))
    expected = "does not match its contents" if member == "manifest.json" else f"`{member}` in"
    assert expected in info.value.message and "do not install it" in info.value.hint
    assert _state() == before and tree(paths.tmp_dir()) == []


@pytest.mark.parametrize("change", ["add-unlisted", "remove-listed", "rehash-files-map", "flip-archive-byte"])
def test_other_tampering_is_refused(built: dict[str, Path], tmp_path: Path, change: str) -> None:
    add_trusted_key(built["pub"])
    folder = extract_plain(built["signed"], tmp_path / "x")
    package = tmp_path / "t.expert"
    if change == "add-unlisted":
        (folder / "evil.py").write_text("import os")
    elif change == "remove-listed":
        (folder / "LICENSE").unlink()
    elif change == "rehash-files-map":  # weights swapped and the files map updated to match, without re-signing
        flip_byte(folder / "adapter_model.safetensors")
        data = json.loads((folder / "manifest.json").read_text())
        import hashlib

        data["files"]["adapter_model.safetensors"] = hashlib.sha256(
            (folder / "adapter_model.safetensors").read_bytes()).hexdigest()
        (folder / "manifest.json").write_text(json.dumps(data))
    repack(folder, package)
    if change == "flip-archive-byte":
        shutil.copyfile(built["signed"], package)
        write_sidecar(package)
        flip_byte(package, package.stat().st_size - 100)  # the stored sidecar no longer matches
    with pytest.raises(ExpertError):
        install_expert(str(package))
    assert _state() == (None, [])


def test_legacy_package_without_files_map_counts_as_unsigned(built: dict[str, Path], tmp_path: Path) -> None:
    folder = extract_plain(built["unsigned"], tmp_path / "x")
    data = json.loads((folder / "manifest.json").read_text())
    del data["files"]
    data["integrity"] = {"publisher": "expert-cli", "pubkey": "ed25519:" + "ab" * 32, "signature": "cd" * 64}
    (folder / "manifest.json").write_text(json.dumps(data))
    (folder / "signature.sig").write_text("cd" * 64)
    package = repack(folder, tmp_path / "legacy.expert")
    with pytest.raises(SignatureError, match="legacy signature"):
        install_expert(str(package))
    assert install_expert(str(package), ALLOW).trust == "unsigned"


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_leave_registry_and_tree_untouched(built: dict[str, Path], tmp_path: Path, case: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    install_expert(str(_copy(built, "unsigned", tmp_path)), ALLOW)
    before, home = _state(), tree(paths.expert_home())
    package = tmp_path / f"{case}.expert"
    HOSTILE[case](package)
    landed: list[list[str]] = []
    real_extract = installer.open_verified.__globals__["extract_archive"]

    def watching(path, dest, limits=None, progress=None):  # look where `../x` would land: beside `staged`
        try:
            return real_extract(path, dest, SMALL, progress)
        finally:
            landed.append(tree(dest.parent))

    monkeypatch.setitem(installer.open_verified.__globals__, "extract_archive", watching)
    with pytest.raises(PackageError) as info:
        install_expert(str(package), InstallOptions(allow_unsigned=True, force=True))
    assert REASONS[case] in info.value.message, info.value.message
    assert landed and set(landed[0]) <= {"staged"}, landed
    assert _state() == before and tree(paths.expert_home()) == home
    assert tree(paths.tmp_dir()) == []


def test_reinstall_needs_force_and_force_replaces(built: dict[str, Path], tmp_path: Path) -> None:
    package = _copy(built, "unsigned", tmp_path)
    install_expert(str(package), ALLOW)
    with pytest.raises(InstallError) as info:
        install_expert(str(package), ALLOW)
    assert "already installed" in info.value.message and "--force" in info.value.hint
    (paths.install_dir("expert-demo", "0.1.0") / "LICENSE").write_text("edited")
    assert install_expert(str(package), InstallOptions(allow_unsigned=True, force=True)).replaced
    assert (paths.install_dir("expert-demo", "0.1.0") / "LICENSE").read_text() == "MIT\n"
    assert len(read_registry().experts()) == 1


def test_an_unregistered_leftover_folder_is_replaced(built: dict[str, Path], tmp_path: Path) -> None:
    leftover = paths.install_dir("expert-demo", "0.1.0")
    leftover.mkdir(parents=True)
    (leftover / "partial.bin").write_bytes(b"half")
    install_expert(str(_copy(built, "unsigned", tmp_path)), ALLOW)
    assert not (leftover / "partial.bin").exists() and (leftover / "manifest.json").is_file()


def test_failed_registry_save_rolls_back_a_forced_reinstall(built: dict[str, Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    package = _copy(built, "unsigned", tmp_path)
    install_expert(str(package), ALLOW)
    (paths.install_dir("expert-demo", "0.1.0") / "LICENSE").write_text("old copy")
    before = _state()
    real_write, calls = installer.write_registry, []

    def failing_write(registry) -> None:
        calls.append(1)
        if len(calls) == 2:  # the save that would register the new copy
            raise OSError("disk full")
        real_write(registry)

    monkeypatch.setattr(installer, "write_registry", failing_write)
    with pytest.raises(InstallError, match="disk full.*left as they were"):
        install_expert(str(package), InstallOptions(allow_unsigned=True, force=True))
    monkeypatch.setattr(installer, "write_registry", real_write)
    assert json.loads(before[0])["experts"] == json.loads(paths.registry_path().read_bytes())["experts"]
    assert tree(paths.experts_dir()) == before[1]
    assert (paths.install_dir("expert-demo", "0.1.0") / "LICENSE").read_text() == "old copy"


def test_requirements_are_resolved_with_ranges(built: dict[str, Path], tiny_adapter: Path, tmp_path: Path) -> None:
    def dependent(requires: str) -> Path:
        folder = write_expert(tmp_path / requires.replace("@", "_"), tiny_adapter, "expert-app", requires=[requires])
        return build_package(folder, tmp_path / f"{requires.replace('@', '_')}.expert").path

    with pytest.raises(InstallError, match=r"requires `expert-demo@\^0.1` \(not installed\)"):
        install_expert(str(dependent("demo@^0.1")), ALLOW)
    install_expert(str(_copy(built, "unsigned", tmp_path)), ALLOW)
    with pytest.raises(InstallError, match=r"installed: 0.1.0"):
        install_expert(str(dependent("demo@>=0.2")), ALLOW)
    result = install_expert(str(dependent("demo@>=0.1,<0.2")), ALLOW)
    assert result.dependencies == [{"name": "expert-demo", "version": ">=0.1,<0.2", "optional": False}]
    assert uninstall_expert("demo").dependents == ["expert-app@0.1.0"]


def test_folder_source_needs_allow_unsigned_and_is_installed_as_local(built: dict[str, Path]) -> None:
    before = _state()
    with pytest.raises(SignatureError) as info:  # the README: a folder install is unsigned
        install_expert(str(built["expert"]))
    assert "is not signed" in info.value.message and "--allow-unsigned" in info.value.hint
    assert _state() == before
    result = install_expert(str(built["expert"]), ALLOW)
    assert result.trust == "local" and result.source == str(built["expert"].resolve())
    assert (Path(result.path) / "routing_exemplars.json").is_file()


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
def test_round_trip_install_list_uninstall(tiny_adapter: Path, tmp_path: Path, schema: str) -> None:
    folder = write_expert(tmp_path / "e", tiny_adapter, "expert-rt", schema=schema, layout="root")
    pair = generate_keypair(tmp_path / "k.pem")
    package = build_package(folder, tmp_path).path
    sign_package(package, pair.private_key)
    add_trusted_key(pair.public_key)
    install_expert(str(package))
    assert [e.spec for e in read_registry().experts()] == ["expert-rt@0.1.0"]
    removed = uninstall_expert("rt@0.1.0")
    assert removed.removed[0]["version"] == "0.1.0"
    assert read_registry().experts() == [] and tree(paths.experts_dir()) == []
    with pytest.raises(NotInstalledError):
        uninstall_expert("rt")


def test_uninstall_one_version_keeps_the_others(tiny_adapter: Path, tmp_path: Path) -> None:
    for version in ("0.1.0", "0.2.0"):
        folder = write_expert(tmp_path / version, tiny_adapter, version=version)
        install_expert(str(folder), ALLOW)
    uninstall_expert("demo@0.1.0")
    assert [e.spec for e in read_registry().experts()] == ["expert-demo@0.2.0"]
    assert tree(paths.experts_dir() / "expert-demo")[0] == "0.2.0"


def test_stale_staging_folders_of_dead_processes_are_swept(built: dict[str, Path], tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    stale = paths.tmp_dir() / f"install-{dead.stdout.strip()}-abc"
    (stale / "staged").mkdir(parents=True)
    live = paths.tmp_dir() / f"install-{os.getppid()}-xyz"
    live.mkdir()
    install_expert(str(_copy(built, "unsigned", tmp_path)), ALLOW)
    assert not stale.exists() and live.exists()
