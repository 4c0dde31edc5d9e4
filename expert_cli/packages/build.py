"""``package``: build a byte-reproducible ``.expert`` archive and its ``.sha256`` sidecar.

Layout (flat, as the original): ``manifest.json`` first, then sorted: the PEFT adapter files
(``adapter_config.json``, ``adapter_model.safetensors``), tokenizer files when the adapter folder has them,
``grammar.gbnf`` and ``training.decoding.grammar_file``, soft-prompt files at their manifest paths,
``README.md``, ``LICENSE``, ``routing_exemplars.json`` and, with ``include_tests``, ``tests/<file>``.

Weights are looked up where ``train`` writes them, ``EXPERT_DIR/weights/<model_slug>/adapter/`` (or the
checkpoint named by ``training.packaging_checkpoint`` under ``weights/<model_slug>/checkpoints/``), then in
the expert root (the original's convention, where authors copied the chosen checkpoint). The packaged manifest is the author's JSON with only the
selected base model kept and a ``files`` map (path -> SHA-256) added; any old ``integrity`` block is dropped.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ExpertError, PackageError
from expert_cli.core.files import replacing
from expert_cli.core.hashing import hash_files, sha256_bytes, sha256_file, write_sidecar
from expert_cli.core.progress import ProgressCallback
from expert_cli.manifest.exemplars import EXEMPLARS_FILE, sample_routing_exemplars
from expert_cli.manifest.locations import check_locations
from expert_cli.manifest.model import MANIFEST_FILE, Manifest, load_manifest, model_slug
from expert_cli.manifest.soft_prompt_files import find_soft_prompt
from expert_cli.packages.archive import ArchiveEntry, ArchiveLimits, safe_member_name, write_archive

WEIGHT_FILES = ("adapter_config.json", "adapter_model.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "added_tokens.json", "chat_template.jinja")
ROOT_FILES = ("grammar.gbnf", "README.md", "LICENSE", "LICENSE.md", "LICENSE.txt")
PACKAGE_SUFFIX = ".expert"


@dataclass
class PackageResult:
    path: Path
    sha256: str
    sidecar: Path
    name: str
    version: str
    base_model: str
    size_bytes: int
    weights_dir: Path
    files: dict[str, str] = field(default_factory=dict)
    exemplars: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "sidecar": str(self.sidecar), "name": self.name,
                "version": self.version, "base_model": self.base_model, "size_bytes": self.size_bytes,
                "weights_dir": str(self.weights_dir), "files": self.files, "routing_exemplars": self.exemplars}


def package_file_name(name: str, base_model_name: str, version: str) -> str:
    """``<name>-<model_slug>.v<version>.expert``, e.g. ``expert-sql-qwen3-0-6b.v0.3.0.expert``."""
    return f"{name}-{model_slug(base_model_name)}.v{version}{PACKAGE_SUFFIX}"


def find_weights_dir(manifest: Manifest, expert_dir: Path, base_model_name: str) -> Path:
    """The folder holding the adapter to ship, by the documented convention (see the module doc)."""
    slug_dir = expert_dir / "weights" / model_slug(base_model_name)
    checkpoint = manifest.training.get("packaging_checkpoint")
    if isinstance(checkpoint, str) and checkpoint and checkpoint != "final":
        # the original copied the chosen checkpoint into the expert root by hand: that is the last place
        candidates = [slug_dir / "checkpoints" / checkpoint, slug_dir / checkpoint, expert_dir]
    else:
        candidates = [slug_dir / "adapter", slug_dir / "final", expert_dir]
    for candidate in candidates:
        if all((candidate / name).is_file() for name in WEIGHT_FILES):
            return candidate
    looked = ", ".join(f"`{c}`" for c in candidates)
    raise PackageError(f"no trained adapter ({' + '.join(WEIGHT_FILES)}) for `{base_model_name}`; looked in {looked}",
                       hint=f"train it first with `expert-cli train {expert_dir}`")


def collect_files(manifest: Manifest, expert_dir: Path, weights_dir: Path, include_tests: bool) -> dict[str, Path]:
    """``{name in the archive: source file}`` for everything the package ships except the manifest."""
    files: dict[str, Path] = {}
    for name in WEIGHT_FILES + TOKENIZER_FILES:
        if (weights_dir / name).is_file():
            files[name] = weights_dir / name
    for name in ROOT_FILES + (EXEMPLARS_FILE,):
        if (expert_dir / name).is_file():
            files[name] = expert_dir / name
    grammar = manifest.decoding.grammar_file
    if grammar and manifest.resolve_path(grammar).is_file():
        files.setdefault(_archive_name(grammar), manifest.resolve_path(grammar))
    for prompt in manifest.soft_prompts:
        found = find_soft_prompt(manifest, expert_dir, prompt, [weights_dir.parent / "soft_prompts"])
        if found is not None:
            files.setdefault(_archive_name(prompt.path), found)
    if include_tests and (expert_dir / "tests").is_dir():
        for test_file in sorted((expert_dir / "tests").iterdir()):
            if test_file.is_file():
                files[f"tests/{test_file.name}"] = test_file
    return files


def check_plain_files(root: Path, files: list[Path]) -> None:
    """Every file is a regular file under ``root``, with no symbolic link on the way (not even ``root``)."""
    for path in files:
        absolute = Path(path).absolute()
        try:
            relative = absolute.relative_to(Path(root).absolute())
        except ValueError:
            raise PackageError(f"`{path}` is outside the expert folder `{root}`", hint=_PLAIN_HINT) from None
        steps = [Path(root).absolute()] + [Path(root).absolute().joinpath(*relative.parts[:i + 1])
                                            for i in range(len(relative.parts))]
        link = next((step for step in steps if step.is_symlink()), None)
        if link is not None:
            raise PackageError(f"`{link}` is a symbolic link; a folder install copies only regular files",
                               hint=_PLAIN_HINT)
        if not stat.S_ISREG(absolute.lstat().st_mode):
            raise PackageError(f"`{path}` is not a regular file", hint=_PLAIN_HINT)


_PLAIN_HINT = ("copy the real file into the expert folder, or build a package with `expert-cli package` "
               "and install that")


def _archive_name(relative: str) -> str:
    try:
        return safe_member_name(Path(relative).as_posix(), ArchiveLimits())
    except ValueError as exc:
        raise PackageError(f"the manifest path `{relative}` cannot be packaged: it {exc}",
                           hint="use a path inside the expert folder") from None


def packaged_manifest(manifest: Manifest, base_model_name: str, files: dict[str, str],
                      base_sha256: str | None = None) -> bytes:
    """The author's manifest with only ``base_model_name`` kept and the ``files`` map set; ``base_sha256`` (the
    fingerprint of the weights the adapter was trained on) fills the base model's empty ``sha256``."""
    data = manifest.for_base_model(base_model_name)
    data.pop("integrity", None)
    data.pop("files", None)
    data["files"] = dict(sorted(files.items()))
    entries = data.get("base_models") if manifest.schema_version == "2.0" else [data.get("base_model")]
    for entry in entries or []:
        if base_sha256 and isinstance(entry, dict) and not entry.get("sha256"):
            entry["sha256"] = base_sha256
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def local_base_fingerprint(name: str) -> str | None:
    """The fingerprint of base model ``name`` as this machine has it (built-in and imported models), if known."""
    from expert_cli.models.resolve import base_fingerprint, resolve_base_model

    try:
        return base_fingerprint(resolve_base_model(name))
    except ExpertError:  # not on this machine (an id not in the HF cache): nothing to record
        return None


def resolve_output(output: Path | None, file_name: str) -> Path:
    """``-o``: a ``.expert`` file name, or a folder (created when missing); default the current folder."""
    if output is None:
        return Path.cwd() / file_name
    output = output.expanduser().absolute()
    if output.suffix == PACKAGE_SUFFIX and not output.is_dir():
        return output
    if output.exists() and not output.is_dir():
        raise PackageError(f"`{output}` is a file but not a `.expert` file",
                           hint="pass `-o <folder>` or `-o <name>.expert`")
    return output / file_name  # a folder, created when missing


def build_package(expert_dir: Path, output: Path | None = None, model: str | None = None,
                  include_tests: bool = False, progress: ProgressCallback | None = None,
                  follow_symlinks: bool = True) -> PackageResult:
    """Package the expert at ``expert_dir`` for one base model; returns where and what was written.
    With ``follow_symlinks=False`` (folder installs) every shipped file must be a regular file inside the
    folder, reached through no symbolic link."""
    manifest = load_manifest(expert_dir)
    check_locations(manifest.data, manifest.label(), packaged=True)
    expert_dir = manifest.root or Path(expert_dir)
    chosen = manifest.base_model(model)
    weights_dir = find_weights_dir(manifest, expert_dir, chosen.name)
    sources = collect_files(manifest, expert_dir, weights_dir, include_tests)
    if not follow_symlinks:
        check_plain_files(expert_dir, [manifest.path or expert_dir / MANIFEST_FILE, *sources.values()])
    entries = {name: ArchiveEntry(name, path) for name, path in sources.items()}
    exemplars = sample_routing_exemplars(manifest)
    if exemplars:
        blob = (json.dumps(exemplars, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        entries[EXEMPLARS_FILE] = ArchiveEntry(EXEMPLARS_FILE, blob)
    hashes = {name: sha256_bytes(e.source) for name, e in entries.items() if isinstance(e.source, bytes)}
    hashes.update(hash_files(sources, progress))
    manifest_entry = ArchiveEntry(MANIFEST_FILE, packaged_manifest(manifest, chosen.name, hashes,
                                                                   local_base_fingerprint(chosen.name)))
    ordered = [manifest_entry] + [entries[name] for name in sorted(entries)]
    target = resolve_output(output, package_file_name(manifest.name, chosen.name, manifest.version))
    digest = write_package_file(ordered, target, progress)
    sidecar = write_sidecar(target, digest)
    return PackageResult(target, digest, sidecar, manifest.name, manifest.version, chosen.name,
                         target.stat().st_size, weights_dir, dict(sorted(hashes.items())), len(exemplars))


def write_package_file(entries: list[ArchiveEntry], target: Path, progress: ProgressCallback | None = None) -> str:
    """Write the archive next to ``target`` and rename it into place; returns its SHA-256."""
    with replacing(target) as tmp:
        write_archive(entries, tmp, progress)
        return sha256_file(tmp)
