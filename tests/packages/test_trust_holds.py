"""Issue 16, one test (or more) per defect, on real packages, real signatures and a real registry."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from package_helpers import extract_plain, repack, tree, write_expert

from expert_cli.core import paths
from expert_cli.core.errors import ExpertError, InstallError, ManifestError, PackageError, SignatureError
from expert_cli.packages.build import build_package
from expert_cli.packages.install import install_expert, uninstall_expert
from expert_cli.packages.install_source import redact_credentials
from expert_cli.packages.open import resolve_expert_source
from expert_cli.packages.policy import check_usable, installed_trust
from expert_cli.packages.registry import read_registry
from expert_cli.packages.signer import sign_package
from expert_cli.packages.signing import generate_keypair, load_private_key
from expert_cli.packages.staging import InstallOptions
from expert_cli.packages.trust import add_trusted_key, list_trusted_keys, pin_publisher, remove_trusted_key
from expert_cli.packages.verify import verify_target

ALLOW = InstallOptions(allow_unsigned=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("keys")
    return {who: generate_keypair(root / f"{who}.pem").private_key for who in ("alice", "mallory")}


@pytest.fixture(scope="module")
def releases(tiny_adapter: Path, tmp_path_factory: pytest.TempPathFactory,
             keys: dict[str, Path]) -> dict[str, Path]:
    """expert-demo 0.1.0 and 0.2.0 signed by alice, 0.1.0 and 0.2.0 signed by mallory, unsigned 0.2.0."""
    root = tmp_path_factory.mktemp("releases")
    out = {}
    for version in ("0.1.0", "0.2.0"):
        folder = write_expert(root / version, tiny_adapter, version=version)
        unsigned = build_package(folder, root / f"u-{version}.expert").path
        out[f"unsigned-{version}"] = unsigned
        for who, key in keys.items():
            signed = Path(shutil.copyfile(unsigned, root / f"{who}-{version}.expert"))
            sign_package(signed, key)
            out[f"{who}-{version}"] = signed
    return out


def _copy(releases: dict[str, Path], which: str, tmp_path: Path, name: str | None = None) -> Path:
    return Path(shutil.copyfile(releases[which], tmp_path / (name or f"{which}.expert")))


def _state() -> tuple[bytes | None, list[str]]:
    registry = paths.registry_path()
    return (registry.read_bytes() if registry.exists() else None), tree(paths.experts_dir())


def _install_unsigned(folder: Path, adapter: Path, name: str) -> None:
    install_expert(str(build_package(write_expert(folder, adapter, name=name), folder.parent).path), ALLOW)


def _trust_both(keys: dict[str, Path]) -> None:
    for key in keys.values():
        add_trusted_key(key.with_suffix(".pub"))


# -- 1. rollback and publisher takeover -----------------------------------------------------------------
def test_a_name_is_pinned_to_the_key_that_first_installed_it(releases, keys, tmp_path: Path) -> None:
    _trust_both(keys)
    install_expert(str(_copy(releases, "alice-0.1.0", tmp_path)))
    alice = read_registry().pinned_key("expert-demo")
    assert alice == keys["alice"].with_suffix(".pub").read_text().strip()
    before = _state()
    for options in (InstallOptions(), InstallOptions(force=True)):  # a newer version, or the same one forced
        for which in ("mallory-0.2.0", "mallory-0.1.0"):
            with pytest.raises(SignatureError) as info:
                install_expert(str(_copy(releases, which, tmp_path)), options)
            assert "pinned to the publisher key" in info.value.message
            assert "--allow-new-publisher" in info.value.hint
            assert _state() == before
    allowed = InstallOptions(allow_new_publisher=True)
    result = install_expert(str(_copy(releases, "mallory-0.2.0", tmp_path)), allowed)
    assert result.version == "0.2.0" and read_registry().pinned_key("expert-demo") != alice


def test_an_unsigned_package_cannot_replace_a_pinned_name(releases, keys, tmp_path: Path) -> None:
    _trust_both(keys)
    install_expert(str(_copy(releases, "alice-0.1.0", tmp_path)))
    with pytest.raises(SignatureError, match="is not signed"):
        install_expert(str(_copy(releases, "unsigned-0.2.0", tmp_path)), ALLOW)


def test_trust_pin_moves_a_name_to_a_new_key(releases, keys, tmp_path: Path) -> None:
    _trust_both(keys)
    install_expert(str(_copy(releases, "alice-0.1.0", tmp_path)))
    name, new, old = pin_publisher("demo", keys["mallory"].with_suffix(".pub"))
    assert name == "expert-demo"
    assert old != new and read_registry().pinned_key("expert-demo") == new
    assert install_expert(str(_copy(releases, "mallory-0.2.0", tmp_path))).version == "0.2.0"


def test_no_downgrade_without_allow_downgrade(releases, keys, tmp_path: Path) -> None:
    _trust_both(keys)
    install_expert(str(_copy(releases, "alice-0.2.0", tmp_path)))
    before = _state()
    # the file name lies: it is the publisher's signed 0.1.0
    renamed = _copy(releases, "alice-0.1.0", tmp_path, "expert-demo-tiny-qwen3.v9.9.9.expert")
    with pytest.raises(InstallError) as info:
        install_expert(str(renamed))
    assert "older than the installed `expert-demo@0.2.0`" in info.value.message
    assert "--allow-downgrade" in info.value.hint and _state() == before
    assert install_expert(str(renamed), InstallOptions(allow_downgrade=True)).version == "0.1.0"
    assert [e.version for e in read_registry().experts()] == ["0.2.0", "0.1.0"]


def test_a_registry_from_before_pins_pins_by_its_signed_entries(releases, keys, tmp_path: Path) -> None:
    _trust_both(keys)
    install_expert(str(_copy(releases, "alice-0.1.0", tmp_path)))
    document = json.loads(paths.registry_path().read_text())
    del document["publisher_keys"]  # as written before this change
    paths.registry_path().write_text(json.dumps(document))
    with pytest.raises(SignatureError, match="pinned"):
        install_expert(str(_copy(releases, "mallory-0.2.0", tmp_path)))


# -- 2. manifest paths outside the package ----------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("grammar_file", "../../../../../outside/sql.gbnf"),
    ("grammar_file", "/etc/hostname"),
    ("soft_prompt", "/tmp/outside/prompt.pt"),
    ("soft_prompt", "weights/../../x.pt"),
])
def test_a_signed_manifest_naming_a_file_outside_is_refused(tiny_adapter, keys, tmp_path: Path, field, value,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    package = build_package(write_expert(tmp_path / "e", tiny_adapter), tmp_path / "p.expert").path
    folder = extract_plain(package, tmp_path / "x")
    data = json.loads((folder / "manifest.json").read_text())
    if field == "grammar_file":
        data["training"]["decoding"] = {"grammar_file": value}
    else:
        data["soft_prompts"] = [{"name": "sp", "path": value, "tokens": 4}]
    (folder / "manifest.json").write_text(json.dumps(data))
    package = repack(folder, tmp_path / "evil.expert")
    with monkeypatch.context() as patch:  # a hostile publisher signs with a tool of their own
        patch.setattr("expert_cli.packages.integrity.check_locations", lambda data, label: None)
        sign_package(package, keys["alice"])
    add_trusted_key(keys["alice"].with_suffix(".pub"))
    for attempt in (lambda: install_expert(str(package)), lambda: verify_target(str(package)),
                    lambda: resolve_expert_source(package, allow_unsigned=False, allow_untrusted=False)):
        with pytest.raises(ManifestError, match="outside its expert folder"):
            attempt()
    assert _state() == (None, [])


def test_an_installed_expert_whose_manifest_leaves_its_folder_is_not_loaded(releases, keys, tmp_path) -> None:
    _trust_both(keys)
    install_expert(str(_copy(releases, "alice-0.1.0", tmp_path)))
    manifest = paths.install_dir("expert-demo", "0.1.0") / "manifest.json"
    data = json.loads(manifest.read_text())
    data["training"]["decoding"] = {"grammar_file": "../../../outside.gbnf"}
    manifest.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="outside its expert folder"):
        resolve_expert_source("demo", allow_untrusted=False)


# -- 3. the SDK's package cache applies the same policy ------------------------------------------------
def test_the_sdk_refuses_unsigned_and_untrusted_packages_unless_allowed(releases, keys, tmp_path) -> None:
    unsigned, signed = _copy(releases, "unsigned-0.1.0", tmp_path), _copy(releases, "alice-0.1.0", tmp_path)
    strict = {"allow_unsigned": False, "allow_untrusted": False}
    with pytest.raises(SignatureError, match="is not signed"):
        resolve_expert_source(unsigned, **strict)
    with pytest.raises(SignatureError, match="not in your trusted keys"):
        resolve_expert_source(signed, **strict)
    opened = resolve_expert_source(unsigned, allow_unsigned=True, allow_untrusted=False)
    assert (opened / "manifest.json").is_file()
    with pytest.raises(SignatureError, match="is not signed"):  # the cached copy is not a way around it
        resolve_expert_source(unsigned, **strict)
    opened = resolve_expert_source(signed, allow_unsigned=False, allow_untrusted=True)
    assert (opened / "manifest.json").is_file()
    add_trusted_key(keys["alice"].with_suffix(".pub"))
    assert (resolve_expert_source(signed, **strict) / "manifest.json").is_file()


# -- 4. revoked keys -------------------------------------------------------------------------------------
def test_trust_rm_makes_installed_experts_untrusted(releases, keys, tmp_path: Path) -> None:
    add_trusted_key(keys["alice"].with_suffix(".pub"))
    install_expert(str(_copy(releases, "alice-0.1.0", tmp_path)))
    assert installed_trust(read_registry().get("expert-demo")) == "trusted"
    remove_trusted_key("alice")
    entry = read_registry().get("expert-demo")
    assert entry.extra["integrity"]["trust"] == "untrusted" and installed_trust(entry) == "untrusted"
    with pytest.raises(SignatureError, match="no longer trusted"):
        check_usable(entry)
    with pytest.raises(SignatureError, match="no longer trusted"):
        resolve_expert_source("demo", allow_untrusted=False)
    assert resolve_expert_source("demo", allow_untrusted=True).is_dir()
    add_trusted_key(keys["alice"].with_suffix(".pub"))
    assert read_registry().get("expert-demo").extra["integrity"]["trust"] == "trusted"
    assert check_usable(read_registry().get("expert-demo")) == "trusted"


def test_a_key_file_deleted_by_hand_is_untrusted_at_use(releases, keys, tmp_path: Path) -> None:
    add_trusted_key(keys["alice"].with_suffix(".pub"))
    install_expert(str(_copy(releases, "alice-0.1.0", tmp_path)))
    for key in list_trusted_keys():
        key.path.unlink()
    with pytest.raises(SignatureError, match="no longer trusted"):
        resolve_expert_source("expert-demo", allow_untrusted=False)


# -- 5. folder installs ----------------------------------------------------------------------------------
def test_a_folder_with_a_symlink_is_refused(tiny_adapter: Path, tmp_path: Path) -> None:
    folder = write_expert(tmp_path / "e", tiny_adapter, layout="root")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"host secret")
    (folder / "adapter_model.safetensors").unlink()
    (folder / "adapter_model.safetensors").symlink_to(secret)
    with pytest.raises(PackageError, match="symbolic link"):
        install_expert(str(folder), ALLOW)
    assert _state() == (None, [])


def test_a_folder_reached_through_a_symlinked_subfolder_is_refused(tiny_adapter, tmp_path: Path) -> None:
    folder = write_expert(tmp_path / "e", tiny_adapter)
    real = tmp_path / "elsewhere"
    shutil.move(folder / "weights", real)
    (folder / "weights").symlink_to(real)
    with pytest.raises(PackageError, match="symbolic link"):
        install_expert(str(folder), ALLOW)


# -- 6. unsigned parts of a signed package -----------------------------------------------------------------
def test_a_forged_publisher_or_date_breaks_the_signature(releases, keys, tmp_path: Path) -> None:
    add_trusted_key(keys["alice"].with_suffix(".pub"))
    forged = (("publisher", "Trusted Corp"), ("created_at", "2001-01-01T00:00:00Z"), ("note", "x"))
    for field, value in forged:
        folder = extract_plain(releases["alice-0.1.0"], tmp_path / field)
        data = json.loads((folder / "manifest.json").read_text())
        data["integrity"][field] = value
        (folder / "manifest.json").write_text(json.dumps(data))
        with pytest.raises(SignatureError, match="does not match its contents"):
            verify_target(str(repack(folder, tmp_path / f"{field}.expert")))


def test_the_integrity_files_copy_must_match(releases, keys, tmp_path: Path) -> None:
    add_trusted_key(keys["alice"].with_suffix(".pub"))
    folder = extract_plain(releases["alice-0.1.0"], tmp_path / "x")
    data = json.loads((folder / "manifest.json").read_text())
    data["integrity"]["files"]["LICENSE"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(SignatureError, match="integrity.files"):
        verify_target(str(repack(folder, tmp_path / "f.expert")))


def test_a_member_not_in_the_files_map_is_refused_even_an_empty_folder(releases, keys, tmp_path) -> None:
    add_trusted_key(keys["alice"].with_suffix(".pub"))
    package = _copy(releases, "alice-0.1.0", tmp_path)
    with tarfile.open(package, "r:gz") as tar:
        members = [(info, tar.extractfile(info).read()) for info in tar.getmembers()]
    extra = tarfile.TarInfo("payload")
    extra.type = tarfile.DIRTYPE
    with tarfile.open(package, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
        tar.addfile(extra)
    package.with_name(package.name + ".sha256").unlink(missing_ok=True)
    for attempt in (lambda: install_expert(str(package)), lambda: verify_target(str(package))):
        with pytest.raises(PackageError, match="holds the folder `payload`"):
            attempt()
    assert _state() == (None, [])


# -- 7. names without the expert- prefix -------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["sql", "sql@0.1.0", "expert-sql"])
def test_a_name_without_the_prefix_can_be_managed(tiny_adapter: Path, tmp_path: Path, spec: str) -> None:
    _install_unsigned(tmp_path / "e", tiny_adapter, "sql")
    assert verify_target(spec, allow_unsigned=True).target == "sql@0.1.0"
    assert uninstall_expert(spec).removed[0]["name"] == "sql"
    assert read_registry().experts() == [] and tree(paths.experts_dir()) == []


def test_the_exact_name_wins_over_the_short_form(tiny_adapter: Path, tmp_path: Path) -> None:
    for name in ("sql", "expert-sql"):
        _install_unsigned(tmp_path / name, tiny_adapter, name)
    assert uninstall_expert("sql").removed[0]["name"] == "sql"
    assert [e.name for e in read_registry().experts()] == ["expert-sql"]


# -- 8. a registry entry pointing at another expert's folder -------------------------------------------------
def test_uninstall_deletes_only_its_own_layout_folder(tiny_adapter: Path, tmp_path: Path) -> None:
    for name in ("expert-a", "expert-b"):
        _install_unsigned(tmp_path / name, tiny_adapter, name)
    document = json.loads(paths.registry_path().read_text())
    b_folder = str(paths.install_dir("expert-b", "0.1.0"))
    document["experts"][0]["versions"][0]["path"] = b_folder  # expert-a's entry names B's folder
    paths.registry_path().write_text(json.dumps(document))
    result = uninstall_expert("a")
    assert result.kept_files == [b_folder]
    assert (Path(b_folder) / "manifest.json").is_file()
    assert [e.spec for e in read_registry().experts()] == ["expert-b@0.1.0"]


def test_uninstall_of_a_dot_dot_name_deletes_nothing(tiny_adapter: Path, tmp_path: Path) -> None:
    _install_unsigned(tmp_path / "a", tiny_adapter, "expert-a")
    document = json.loads(paths.registry_path().read_text())
    dot_dot = {"version": "..", "path": str(paths.expert_home())}
    document["experts"].append({"name": "..", "versions": [dot_dot]})
    paths.registry_path().write_text(json.dumps(document))
    with pytest.raises(ExpertError):  # `..` is not an expert name
        uninstall_expert("..")
    assert (paths.install_dir("expert-a", "0.1.0") / "manifest.json").is_file()


# -- 9. secrets and permissions --------------------------------------------------------------------------
def test_credentials_are_redacted() -> None:
    message = "cannot clone `https://user:S3CRET@host/x.git`"
    assert redact_credentials(message) == "cannot clone `https://host/x.git`"
    assert redact_credentials("git+https://TOKEN@host/x.git@v1") == "git+https://host/x.git@v1"
    assert redact_credentials("ssh://git:pw@host/x.git") == "ssh://git@host/x.git"
    assert redact_credentials("ssh://git@host/x.git") == "ssh://git@host/x.git"


def test_a_clone_error_never_shows_the_password(tmp_path: Path) -> None:
    with pytest.raises(ExpertError) as info:
        install_expert("https://user:S3CRET@127.0.0.1:9/none.git")
    assert "S3CRET" not in info.value.message + (info.value.hint or "")
    assert read_registry().experts() == []


def test_a_private_key_others_can_read_is_refused(keys, tmp_path: Path) -> None:
    key = Path(shutil.copyfile(keys["alice"], tmp_path / "k.pem"))
    key.chmod(0o666)
    with pytest.raises(SignatureError, match="open to other users") as info:
        load_private_key(key)
    assert "chmod 600" in info.value.hint
    key.chmod(0o600)
    assert load_private_key(key) is not None


def test_a_world_writable_trust_store_is_refused(keys) -> None:
    add_trusted_key(keys["alice"].with_suffix(".pub"))
    paths.trusted_keys_dir().chmod(0o777)
    try:
        with pytest.raises(SignatureError, match="writable by other users"):
            list_trusted_keys()
    finally:
        paths.trusted_keys_dir().chmod(0o755)
    (paths.trusted_keys_dir() / "alice.pub").chmod(0o666)
    with pytest.raises(SignatureError, match="writable by other users"):
        list_trusted_keys()


def test_validate_reports_outside_paths_and_reads_nothing_there(tiny_adapter, tmp_path: Path) -> None:
    from expert_cli.manifest.validation import validate_path

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sql.gbnf").write_text('root ::= "x"\n')
    folder = write_expert(tmp_path / "e", tiny_adapter)
    data = json.loads((folder / "manifest.json").read_text())
    data["training"]["decoding"] = {"grammar_file": str(outside / "sql.gbnf")}
    data["soft_prompts"] = [{"name": "sp", "path": "../outside/p.pt", "tokens": 4}]
    (folder / "manifest.json").write_text(json.dumps(data))
    (folder / "grammar.gbnf").unlink()
    checks = {c.name: c for c in validate_path(folder).checks}
    paths_check = checks["file paths inside the expert"]
    assert paths_check.status == "fail" and len(paths_check.problems) == 2
    assert "training.decoding.grammar_file" in str(paths_check.problems[0])
    assert str(outside) not in checks.get("grammar compiles", paths_check).detail
