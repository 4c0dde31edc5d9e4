"""Installs from real Git repositories: a local bare repo (file://), `git daemon` on 127.0.0.1, tags, branches,
commits, release files, LFS pointers, hooks that must never run, and `update`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from package_helpers import write_expert

from expert_cli.core import paths
from expert_cli.core.errors import InstallError, SignatureError, UsageError
from expert_cli.packages.build import build_package
from expert_cli.packages.install import install_expert, update_expert
from expert_cli.packages.registry import read_registry
from expert_cli.packages.signer import sign_package
from expert_cli.packages.signing import generate_keypair
from expert_cli.packages.staging import InstallOptions
from expert_cli.packages.trust import add_trusted_key

# Git is what these features run on: CI (``CI`` set) must have it, so there a missing git fails instead of skipping.
pytestmark = pytest.mark.skipif(shutil.which("git") is None and not os.environ.get("CI"), reason="git is not installed")
GIT_ENV = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV, **(env or {})},
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def commit_release(work: Path, adapter: Path, keys: Path, version: str, tag: str | None = None) -> None:
    """Add a signed release file of expert-demo ``version`` (the repo keeps older releases too)."""
    source = write_expert(work.parent / f"src-{version}", adapter, version=version)
    shutil.copyfile(source / "manifest.json", work / "manifest.json")
    package = build_package(source, work / "releases").path
    sign_package(package, keys)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", f"release {version}", cwd=work)
    if tag:
        git("tag", tag, cwd=work)


@pytest.fixture(scope="module")
def origin(tiny_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A bare repo: v0.1.0 and v0.2.0 tagged on main, 0.3.0 on branch `dev`; releases signed by one key."""
    root = tmp_path_factory.mktemp("origin")
    pair = generate_keypair(root / "publisher.pem")
    work = root / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    commit_release(work, tiny_adapter, pair.private_key, "0.1.0", "v0.1.0")
    commit_release(work, tiny_adapter, pair.private_key, "0.2.0", "v0.2.0")
    git("checkout", "-q", "-b", "dev", cwd=work)
    commit_release(work, tiny_adapter, pair.private_key, "0.3.0")
    git("checkout", "-q", "main", cwd=work)
    git("clone", "-q", "--bare", str(work), str(root / "repo.git"))
    return {"root": root, "bare": root / "repo.git", "work": work, "pub": pair.public_key, "key": pair.private_key}


@pytest.fixture
def trusted(origin: dict[str, Path]) -> dict[str, Path]:
    add_trusted_key(origin["pub"])
    return origin


@pytest.mark.parametrize("source, version", [
    ("file://{bare}#v0.1.0", "0.1.0"),
    ("git+file://{bare}@v0.1.0", "0.1.0"),
    ("file://{bare}", "0.2.0"),
    ("{bare}", "0.2.0"),
    ("file://{bare}#dev", "0.3.0"),
])
def test_install_by_tag_branch_and_default_ref(trusted: dict[str, Path], source: str, version: str) -> None:
    text = source.format(bare=trusted["bare"])
    result = install_expert(text)
    assert (result.name, result.version, result.trust) == ("expert-demo", version, "trusted")
    entry = read_registry().get("expert-demo", version)
    assert entry.source == text and len(entry.extra["git"]["commit"]) == 40


def test_install_by_full_commit_id(trusted: dict[str, Path]) -> None:
    sha = git("rev-parse", "v0.1.0^{commit}", cwd=trusted["work"])
    assert install_expert(f"file://{trusted['bare']}#{sha}").version == "0.1.0"


def test_releases_still_need_a_trusted_signature(origin: dict[str, Path]) -> None:
    with pytest.raises(SignatureError, match="not in your trusted keys"):
        install_expert(f"file://{origin['bare']}#v0.1.0")
    assert read_registry().experts() == []


def test_missing_repo_and_missing_ref_are_clear_errors(trusted: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="cannot clone"):
        install_expert(f"file://{tmp_path}/nowhere.git#main")
    with pytest.raises(InstallError) as info:
        install_expert(f"file://{trusted['bare']}#v9.9.9")
    assert "has no branch, tag or commit `v9.9.9`" in info.value.message and "git ls-remote" in info.value.hint
    assert read_registry().experts() == [] and not any(paths.tmp_dir().iterdir())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def git_daemon(origin: dict[str, Path]) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={origin['root']}",
                                "--listen=127.0.0.1", f"--port={port}", str(origin["root"])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/repo.git"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_install_over_the_git_protocol(trusted: dict[str, Path], git_daemon: str) -> None:
    assert install_expert(f"{git_daemon}#v0.1.0").version == "0.1.0"
    assert install_expert(git_daemon).version == "0.2.0"


def test_hooks_never_run(trusted: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks, template = tmp_path / "hooks", tmp_path / "template"
    marker = tmp_path / "hook-ran"
    for folder in (hooks, template / "hooks"):
        folder.mkdir(parents=True)
        hook = folder / "post-checkout"
        hook.write_text(f"#!/bin/sh\necho ran >> {marker}\n")
        hook.chmod(0o755)
    config = tmp_path / "gitconfig"
    config.write_text(f"[core]\n\thooksPath = {hooks}\n[init]\n\ttemplateDir = {template}\n")
    git("clone", "-q", str(trusted["bare"]), str(tmp_path / "plain"), env={"GIT_CONFIG_GLOBAL": str(config)})
    assert marker.exists(), "the hook should run for a plain clone, or this test proves nothing"
    marker.unlink()
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    install_expert(f"file://{trusted['bare']}#v0.1.0")
    assert not marker.exists()


def _repo_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    work = tmp_path / "w"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    for name, data in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "init", cwd=work)
    return work


def test_lfs_pointer_is_detected_and_explained(tmp_path: Path) -> None:
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 26000000\n"
    work = _repo_with(tmp_path, {"expert-demo-qwen3-0-6b.v0.3.0.expert": pointer})
    with pytest.raises(InstallError) as info:
        install_expert(f"file://{work}#main")
    assert "Git LFS pointer" in info.value.message or "git-lfs" in info.value.message
    assert "git-lfs" in (info.value.hint or "") + info.value.message


def test_repo_folder_without_releases_installs_unsigned_only_when_allowed(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "e", tiny_adapter, layout="root", rows=0)
    work = _repo_with(tmp_path, {p.name: p.read_bytes() for p in expert.iterdir() if p.is_file()})
    with pytest.raises(SignatureError, match="not signed"):
        install_expert(f"file://{work}#main")
    result = install_expert(f"file://{work}#main", InstallOptions(allow_unsigned=True))
    assert result.trust == "unsigned" and not (Path(result.path) / ".git").exists()


def test_update_follows_the_recorded_branch(trusted: dict[str, Path], tiny_adapter: Path, tmp_path: Path) -> None:
    bare = tmp_path / "repo.git"
    shutil.copytree(trusted["bare"], bare)
    source = f"git+file://{bare}@main"
    install_expert(source)
    assert update_expert("demo").status == "up-to-date"
    work = tmp_path / "work"
    git("clone", "-q", str(bare), str(work))
    commit_release(work, tiny_adapter, trusted["key"], "0.4.0")
    git("push", "-q", "origin", "main", cwd=work)
    result = update_expert("demo")
    assert (result.status, result.previous_version, result.version) == ("updated", "0.2.0", "0.4.0")
    assert [e.spec for e in read_registry().experts()] == ["expert-demo@0.4.0"]
    assert not paths.install_dir("expert-demo", "0.2.0").exists()


def test_update_of_a_file_install_is_refused(trusted: dict[str, Path], tmp_path: Path) -> None:
    release = min((trusted["work"] / "releases").glob("*.expert"))
    install_expert(str(release))
    with pytest.raises(InstallError, match="not from Git"):
        update_expert("demo")


def _next_commit(bare: Path, tmp_path: Path, change) -> None:
    """Clone ``bare``, let ``change(work)`` edit it, commit and push to main."""
    work = tmp_path / "next"
    git("clone", "-q", str(bare), str(work))
    change(work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "next", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)


def test_update_refuses_a_rollback_to_an_older_signed_release(trusted: dict[str, Path], tmp_path: Path) -> None:
    bare = tmp_path / "repo.git"
    shutil.copytree(trusted["bare"], bare)
    install_expert(f"git+file://{bare}@main")
    old = next(p for p in (trusted["work"] / "releases").glob("*.expert") if "v0.1.0" in p.name)

    def roll_back(work: Path) -> None:  # only the publisher's old 0.1.0, renamed to look newer
        shutil.rmtree(work / "releases")
        (work / "releases").mkdir()
        shutil.copyfile(old, work / "releases" / "expert-demo-tiny-qwen3.v9.9.9.expert")

    _next_commit(bare, tmp_path, roll_back)
    with pytest.raises(InstallError, match="older than the installed `expert-demo@0.2.0`"):
        update_expert("demo")
    assert [e.spec for e in read_registry().experts()] == ["expert-demo@0.2.0"]
    assert (paths.install_dir("expert-demo", "0.2.0") / "manifest.json").is_file()


def test_update_refuses_a_release_signed_by_another_trusted_key(trusted: dict[str, Path], tiny_adapter: Path,
                                                                 tmp_path: Path) -> None:
    bare = tmp_path / "repo.git"
    shutil.copytree(trusted["bare"], bare)
    install_expert(f"git+file://{bare}@main")
    pinned = read_registry().pinned_key("expert-demo")
    other = generate_keypair(tmp_path / "other.pem")
    add_trusted_key(other.public_key)
    _next_commit(bare, tmp_path, lambda work: commit_release_files(work, tiny_adapter, other.private_key, "0.5.0"))
    with pytest.raises(SignatureError, match="pinned to the publisher key"):
        update_expert("demo")
    assert [e.spec for e in read_registry().experts()] == ["expert-demo@0.2.0"]
    assert read_registry().pinned_key("expert-demo") == pinned
    result = update_expert("demo", InstallOptions(allow_new_publisher=True))
    assert result.version == "0.5.0" and read_registry().pinned_key("expert-demo") == other.pubkey


def commit_release_files(work: Path, adapter: Path, key: Path, version: str) -> None:
    source = write_expert(work.parent / f"src-{version}", adapter, version=version)
    shutil.copyfile(source / "manifest.json", work / "manifest.json")
    sign_package(build_package(source, work / "releases").path, key)


def test_a_symlink_in_the_repo_is_checked_out_as_a_plain_file(tiny_adapter: Path, tmp_path: Path) -> None:
    expert = write_expert(tmp_path / "e", tiny_adapter, layout="root", rows=0)
    work = _repo_with(tmp_path, {p.name: p.read_bytes() for p in expert.iterdir() if p.is_file()})
    (work / "README.md").unlink()
    (work / "README.md").symlink_to("/etc/hostname")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "link", cwd=work)
    result = install_expert(f"file://{work}#main", InstallOptions(allow_unsigned=True))
    installed = Path(result.path) / "README.md"
    assert not installed.is_symlink() and installed.read_bytes() == b"/etc/hostname"  # the link text, not the file


def test_submodules_are_not_fetched_and_ext_transport_never_runs(tiny_adapter: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ext-ran"
    expert = write_expert(tmp_path / "e", tiny_adapter, layout="root", rows=0)
    work = _repo_with(tmp_path, {p.name: p.read_bytes() for p in expert.iterdir() if p.is_file()})
    (tmp_path / "subrepo").mkdir()
    sub = _repo_with(tmp_path / "subrepo", {"secret.txt": b"from the submodule"})
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "sub", cwd=work)
    (work / ".gitmodules").write_text(f'[submodule "sub"]\n\tpath = sub\n\turl = ext::sh -c touch% {marker}\n')
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "submodule", cwd=work)
    result = install_expert(f"file://{work}#main", InstallOptions(allow_unsigned=True))
    assert not (Path(result.path) / "sub").exists() and not marker.exists()
    for source in (f"git+ext::sh -c touch% {marker}", f"ext::sh -c touch% {marker}"):
        with pytest.raises((InstallError, UsageError)):
            install_expert(source, InstallOptions(allow_unsigned=True))
    assert not marker.exists() and [e.name for e in read_registry().experts()] == ["expert-demo"]


def test_credentials_in_a_git_url_are_never_stored(trusted: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from expert_cli.packages import git as git_module
    from expert_cli.packages import install as install_module

    real_clone = git_module.clone_repo

    def clone_as_if_remote(url, ref, dest, progress=None):  # the real clone, of the local repo, under the remote URL
        cloned = real_clone(f"file://{trusted['bare']}", ref, dest, progress)
        return git_module.ClonedRepo(cloned.path, url, ref, cloned.commit)

    monkeypatch.setattr(install_module, "clone_repo", clone_as_if_remote)
    result = install_expert("git+https://user:S3CRET@example.com/org/expert-demo.git@v0.1.0")
    assert result.version == "0.1.0" and "S3CRET" not in json.dumps(result.to_dict())
    registry = paths.registry_path().read_text()
    assert "S3CRET" not in registry and "user:" not in registry
    assert read_registry().get("expert-demo").source == "git+https://example.com/org/expert-demo.git@v0.1.0"
