"""Helpers for distribution tests: expert folders around a real PEFT adapter, and archive surgery.

Archive manipulation here uses plain ``tarfile`` (not the code under test), so tampered and hostile
packages are built independently of ``expert_cli.packages.archive``.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BASE = "builtin:tiny-qwen3"
ADAPTER = {"type": "lora", "target_modules": ["q_proj", "v_proj"], "r": 2, "alpha": 4}
TRAINING = {"dataset": {"path": "data/train.jsonl"},
            "config": {"method": "sft", "adapter_type": "lora", "rank": 2, "alpha": 4,
                       "target_modules": ["q_proj", "v_proj"], "epochs": 1, "learning_rate": 0.001}}


def manifest_dict(name: str, version: str, schema: str = "2.0", models: Iterable[str] = (BASE,),
                  requires: Iterable[str] = ()) -> dict[str, Any]:
    models = list(models)
    data: dict[str, Any] = {"name": name, "version": version, "schema_version": schema,
                            "description": f"test expert {name}", "author": "Tester",
                            "capabilities": ["demo"], "constraints": {"requires": list(requires)},
                            "quality_metrics": {"benchmark_score": 9.1}, "_comment": "kept verbatim"}
    if schema == "1.0":
        data["base_model"] = {"name": models[0]}
        data["adapters"] = [dict(ADAPTER)]
    else:
        data["base_models"] = [{"name": m, "adapters": [dict(ADAPTER)]} for m in models]
    data["training"] = json.loads(json.dumps(TRAINING))
    return data


def write_expert(root: Path, adapter: Path, name: str = "expert-demo", version: str = "0.1.0", *,
                 schema: str = "2.0", layout: str = "dev", models: Iterable[str] = (BASE,),
                 requires: Iterable[str] = (), rows: int = 60, with_tests: bool = False) -> Path:
    """An expert folder: manifest, dataset, grammar, LICENSE, README and the adapter's files."""
    models = list(models)
    root.mkdir(parents=True, exist_ok=True)
    data = manifest_dict(name, version, schema, models, requires)
    (root / "manifest.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    from expert_cli.manifest.model import model_slug

    for model in models:
        target = root if layout == "root" else root / "weights" / model_slug(model) / "adapter"
        target.mkdir(parents=True, exist_ok=True)
        for file_name in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copyfile(adapter / file_name, target / file_name)
    if rows:
        (root / "data").mkdir(exist_ok=True)
        lines = [json.dumps({"messages": [{"role": "user", "content": f"{name} question {i}"},
                                          {"role": "assistant", "content": "answer"}]}) for i in range(rows)]
        (root / "data" / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "grammar.gbnf").write_text('root ::= "SELECT" [a-z ]*\n', encoding="utf-8")
    (root / "LICENSE").write_text("MIT\n", encoding="utf-8")
    (root / "README.md").write_text(f"# {name}\n", encoding="utf-8")
    if with_tests:
        (root / "tests").mkdir(exist_ok=True)
        (root / "tests" / "test_cases.json").write_text('{"test_cases": []}\n', encoding="utf-8")
    return root


def extract_plain(package: Path, dest: Path) -> Path:
    """Extract a package built by the tests themselves (trusted input)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(package, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    return dest


def repack(folder: Path, out: Path) -> Path:
    """Tar+gzip every file under ``folder`` (manifest first) with plain ``tarfile``."""
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    names.sort(key=lambda n: n != "manifest.json")
    with tarfile.open(out, "w:gz") as tar:
        for name in names:
            tar.add(folder / name, arcname=name)
    return out


def add_member(tar: tarfile.TarFile, name: str, data: bytes = b"x", **attrs: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def flip_byte(path: Path, offset: int | None = None) -> int:
    """XOR one byte (the middle one by default) with 0x01; returns the offset."""
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    return offset


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> list[str]:
    """Every path under ``root`` (files and folders), relative and sorted; [] when it does not exist."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []
