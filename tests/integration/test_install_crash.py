"""Crash safety: installs killed with SIGKILL at random points, and many installs at once.

After every kill the registry must parse and must never list a version whose folder is missing or
incomplete (every file of the manifest's ``files`` map present with its SHA-256)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from package_helpers import sha256, write_expert

from expert_cli.core import paths
from expert_cli.packages.build import build_package
from expert_cli.packages.install import install_expert
from expert_cli.packages.registry import read_registry
from expert_cli.packages.staging import InstallOptions

pytestmark = pytest.mark.slow
WORKER = """
import sys
from expert_cli.packages.staging import InstallOptions
from expert_cli.packages.install import install_expert, uninstall_expert
packages = sys.argv[1:]
print("ready", flush=True)
step = 0
while True:
    install_expert(packages[step % len(packages)], InstallOptions(allow_unsigned=True, force=True,
                                                                  allow_downgrade=True))
    if step % 4 == 3:
        uninstall_expert("expert-crash@0.2.0")
    step += 1
"""


KILL_AT = """
import os, signal, sys
from expert_cli.packages import staging
from expert_cli.packages.staging import InstallOptions
from expert_cli.packages.install import install_expert
kill_at, seen, events = int(sys.argv[1]), [], []

def event(name):
    events.append(name)
    if len(events) == kill_at:
        print(name, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

def counted(name, real):
    def call(*args, **kwargs):
        event(name)
        return real(*args, **kwargs)
    return call

staging.os.rename = counted("rename", os.rename)
staging.write_registry = counted("write_registry", staging.write_registry)
staging.shutil.rmtree = counted("rmtree", staging.shutil.rmtree)

def progress(task, done, total=None):
    if task not in seen:
        seen.append(task)
        event("progress:" + task)

install_expert(sys.argv[2], InstallOptions(allow_unsigned=True, force=True, allow_downgrade=True), progress)
print("done", len(events), flush=True)
"""


def assert_registry_consistent() -> int:
    """The registry parses and every listed version is complete on disk; returns how many are listed."""
    entries = read_registry().experts()
    for entry in entries:
        folder = Path(entry.path)
        assert folder.is_dir(), f"{entry.spec} is listed but {folder} is missing"
        files = json.loads((folder / "manifest.json").read_text())["files"]
        for name, digest in files.items():
            assert (folder / name).is_file() and sha256(folder / name) == digest, f"{entry.spec}: {name} is incomplete"
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == \
            sorted([*files, "manifest.json"])
    return len(entries)


def test_sigkill_at_random_points_never_corrupts_the_registry(tiny_adapter: Path, tmp_path: Path) -> None:
    packages = []
    for version in ("0.1.0", "0.2.0", "0.3.0"):
        expert = write_expert(tmp_path / version, tiny_adapter, "expert-crash", version=version, with_tests=True)
        (expert / "tests" / "blob.bin").write_bytes(os.urandom(3 << 20))  # widens the extract/move windows
        packages.append(str(build_package(expert, tmp_path, include_tests=True).path))
    rng = random.Random(1234)
    killed_while_running = 0
    for _ in range(50):
        worker = subprocess.Popen([sys.executable, "-c", WORKER, *packages], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        time.sleep(rng.uniform(0.0, 0.5))
        killed_while_running += worker.poll() is None
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        worker.stdout.close()
        worker.stderr.close()
        assert_registry_consistent()
    assert killed_while_running == 50
    install_expert(packages[0], InstallOptions(allow_unsigned=True, force=True, allow_downgrade=True))  # recovers
    assert assert_registry_consistent() >= 1
    assert not any(paths.tmp_dir().iterdir())


def test_twenty_parallel_installs_of_distinct_experts(tiny_adapter: Path, tmp_path: Path) -> None:
    packages = [build_package(write_expert(tmp_path / f"e{i}", tiny_adapter, f"expert-p{i:02d}", rows=5),
                              tmp_path).path for i in range(20)]
    processes = [subprocess.Popen([sys.executable, "-m", "expert_cli", "install", str(p), "--allow-unsigned", "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in packages]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [p.returncode for p in processes] == [0] * 20, [err for _, err in outputs if err]
    assert sorted(json.loads(out)["name"] for out, _ in outputs) == [f"expert-p{i:02d}" for i in range(20)]
    assert [e.name for e in read_registry().experts()] == [f"expert-p{i:02d}" for i in range(20)]
    assert assert_registry_consistent() == 20


def test_sigkill_after_each_step_the_installer_takes(tiny_adapter: Path, tmp_path: Path) -> None:
    """Deterministic kill points: the process kills itself at its k-th step (the first progress report of each
    task, each rename, each registry save, each removal), for every k, over a forced reinstall."""
    expert = write_expert(tmp_path / "e", tiny_adapter, "expert-crash", with_tests=True)
    package = str(build_package(expert, tmp_path, include_tests=True).path)
    install_expert(package, InstallOptions(allow_unsigned=True))
    run = lambda k: subprocess.run([sys.executable, "-c", KILL_AT, str(k), package], capture_output=True, text=True,
                                   check=False)
    full = run(0)
    assert full.returncode == 0, full.stderr
    steps = int(full.stdout.split()[-1])
    assert steps >= 6  # progress tasks, the move aside, the move in, two registry saves, the clean-up
    killed_at = []
    for k in range(1, steps + 1):
        result = run(k)
        assert result.returncode == -signal.SIGKILL, result.stderr
        killed_at.append(result.stdout.strip())
        assert assert_registry_consistent() <= 1
        install_expert(package, InstallOptions(allow_unsigned=True, force=True))  # recovers from any of them
        assert assert_registry_consistent() == 1
    assert "write_registry" in killed_at and "rename" in killed_at
