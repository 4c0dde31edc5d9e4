"""Helpers for index (marketplace) tests: signed packages around a small stand-in adapter, and Git index
repositories driven with the real ``git`` program (a working copy pushed to a local bare repository).

The adapter is random bytes in the two PEFT file names: the index never loads weights, and building a real
PEFT adapter would cost seconds per package. Everything else is real: packages built and signed by the
project, Git repositories, commits and pushes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from package_helpers import BASE, write_expert

OTHER_BASE = "Qwen/Qwen3-0.6B"
GIT_ENV = {"GIT_AUTHOR_NAME": "Index Tester", "GIT_AUTHOR_EMAIL": "tester@example.com",
           "GIT_COMMITTER_NAME": "Index Tester", "GIT_COMMITTER_EMAIL": "tester@example.com",
           "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(["git", *map(str, args)], cwd=cwd, env={**os.environ, **GIT_ENV},
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def fake_adapter(folder: Path, size: int = 1000, seed: int = 0) -> Path:
    """``adapter_config.json`` and ``size`` pseudo-random bytes as ``adapter_model.safetensors``."""
    import random

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}), encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(random.Random(seed).randbytes(size))
    return folder


def make_package(root: Path, key: Path, name: str, version: str, *, model: str = BASE,
                 requires: Iterable[str] = (), capabilities: list[str] | None = None,
                 description: str | None = None, tags: list[str] | None = None, seed: int = 0,
                 adapter_size: int = 1000) -> Path:
    """Build and sign ``name@version`` for ``model``; returns the ``.expert`` file."""
    from expert_cli.packages.build import build_package
    from expert_cli.packages.signer import sign_package

    tag = f"{name}-{version}-{seed}-{zlib.crc32(model.encode()):08x}"
    folder = root / f"src-{tag}"
    adapter = fake_adapter(root / f"adapter-{tag}", adapter_size, zlib.crc32(tag.encode()))
    write_expert(folder, adapter, name, version, models=[model], requires=requires, rows=0)
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    data["capabilities"] = capabilities or ["demo"]
    data["description"] = description or f"test expert {name}"
    if tags is not None:
        data["tags"] = tags
    (folder / "manifest.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    out = root / "dist" / tag
    out.mkdir(parents=True, exist_ok=True)
    package = build_package(folder, out, model=model).path
    sign_package(package, key)
    return package


def new_index(work: Path, bare: Path, name: str = "test", config: dict[str, Any] | None = None) -> Path:
    """A working copy with ``config.json`` committed and pushed to a new bare repository ``bare``."""
    work.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    (work / "config.json").write_text(json.dumps(config or {"name": name, "format": 1}) + "\n", encoding="utf-8")
    git("add", "config.json", cwd=work)
    git("commit", "-q", "-m", "index", cwd=work)
    git("init", "-q", "--bare", "-b", "main", bare)
    git("remote", "add", "origin", bare, cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    return work


def commit_file(work: Path, relative: str, text: str, message: str = "edit", force: bool = False) -> None:
    """Write a file by hand (content the publisher would never write) and push it (``--force``: rewrite)."""
    path = work / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    git("add", relative, cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    git("push", "-q", *(["--force"] if force else []), "origin", "main", cwd=work)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def git_daemon(base: Path) -> Iterator[str]:
    """``git daemon`` serving ``base`` read-only on 127.0.0.1 at an ephemeral port; always stopped."""
    port = free_port()
    process = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}",
                                "--listen=127.0.0.1", f"--port={port}", str(base)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def published_index(root: Path, key: Path, specs: Iterable[str], name: str = "test") -> tuple[Path, Path]:
    """A working copy and its bare repository holding ``name@version`` packages published with ``key``."""
    from expert_cli.packages.publish import publish_package

    work = new_index(root / "work", root / "index.git", name)
    for spec in specs:
        expert, _, version = spec.partition("@")
        publish_package(make_package(root, key, expert, version), work)
    git("push", "-q", "origin", "main", cwd=work)
    return work, root / "index.git"
