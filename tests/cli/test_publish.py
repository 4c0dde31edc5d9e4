"""`expert-cli publish`: the entry comes from the signed package, is committed, and never changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from index_helpers import git, make_package, new_index

from expert_cli.core.hashing import sha256_file
from expert_cli.packages.signing import generate_keypair


def test_publish_writes_the_entry_from_the_signed_package_and_commits_it(cli, tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "k.pem")
    package = make_package(tmp_path, pair.private_key, "expert-sql", "0.3.0", requires=["expert-json@^0.1"],
                           capabilities=["language:sql"], tags=["sqlite"], adapter_size=1234)
    work = new_index(tmp_path / "work", tmp_path / "index.git")
    result = cli("publish", package, "--index", work, "--url", "https://example.com/sql.expert", "--json")
    assert result.exit_code == 0, result.stderr
    line = json.loads((work / "3" / "s" / "expert-sql").read_text())
    assert (line["name"], line["version"], line["requires"], line["capabilities"], line["tags"]) == \
        ("expert-sql", "0.3.0", ["expert-json@^0.1"], ["language:sql"], ["sqlite"])
    assert line["sha256"] == sha256_file(package) and line["size_bytes"] == package.stat().st_size
    assert line["adapter"] == {"type": "lora", "size_bytes": 1234}
    assert line["source"] == {"url": "https://example.com/sql.expert"}
    assert line["publisher"]["key"] == pair.public_key.read_text().strip() and line["yanked"] is False
    assert git("log", "-1", "--format=%s", cwd=work) == "publish expert-sql@0.3.0 (builtin:tiny-qwen3)"
    assert git("status", "--porcelain", cwd=work) == ""


def test_publish_refuses_unsigned_packages_and_folders_that_are_not_indexes(cli, tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "k.pem")
    work = new_index(tmp_path / "work", tmp_path / "index.git")
    package = make_package(tmp_path, pair.private_key, "expert-sql", "0.3.0")
    plain = tmp_path / "plain"
    plain.mkdir()
    no_index = cli("publish", package, "--index", plain)
    assert no_index.exit_code == 1 and "has no regular file `config.json`" in no_index.stderr
    (plain / "config.json").write_text('{"name": "x", "format": 1}')
    no_git = cli("publish", package, "--index", plain)
    assert no_git.exit_code == 2 and "is not a Git working copy of an index" in no_git.stderr
    unsigned = tmp_path / "unsigned.expert"
    from package_helpers import extract_plain, repack

    folder = extract_plain(package, tmp_path / "x")
    data = json.loads((folder / "manifest.json").read_text())
    data.pop("integrity")
    (folder / "manifest.json").write_text(json.dumps(data))
    repack(folder, unsigned)
    refused = cli("publish", unsigned, "--index", work)
    assert refused.exit_code == 1 and "is not signed; an index lists signed packages only" in refused.stderr
    assert not (work / "3").exists()


def test_a_name_published_by_another_key_needs_allow_new_publisher(cli, tmp_path: Path) -> None:
    work = new_index(tmp_path / "work", tmp_path / "index.git")
    first = make_package(tmp_path, generate_keypair(tmp_path / "a.pem").private_key, "expert-sql", "0.1.0")
    other = make_package(tmp_path, generate_keypair(tmp_path / "b.pem").private_key, "expert-sql", "0.2.0")
    assert cli("publish", first, "--index", work).exit_code == 0
    refused = cli("publish", other, "--index", work)
    assert refused.exit_code == 1 and "is published in this index by key" in refused.stderr
    assert "--allow-new-publisher" in refused.stderr
    assert cli("publish", other, "--index", work, "--allow-new-publisher").exit_code == 0


def test_url_forms(cli, tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "k.pem")
    work = new_index(tmp_path / "work", tmp_path / "index.git")
    package = make_package(tmp_path, pair.private_key, "expert-sql", "0.1.0")
    no_ref = cli("publish", package, "--index", work, "--url", "git+https://host/releases.git")
    assert no_ref.exit_code == 2 and "names no tag, branch or commit" in no_ref.stderr
    hosted = shutil.copyfile(package, tmp_path / "hosted.expert")
    assert cli("publish", package, "--index", work, "--url", str(hosted)).exit_code == 0
    assert json.loads((work / "3" / "s" / "expert-sql").read_text())["source"] == {"url": hosted.as_uri()}
    second = make_package(tmp_path, pair.private_key, "expert-sql", "0.2.0")
    assert cli("publish", second, "--index", work, "--url", "git+https://host/releases.git@v0.2.0",
               "--path", "dist/sql.expert").exit_code == 0
    line = json.loads((work / "3" / "s" / "expert-sql").read_text().splitlines()[1])
    assert line["source"] == {"git": "https://host/releases.git", "ref": "v0.2.0", "commit": None,
                              "path": "dist/sql.expert"}


def test_publish_never_runs_the_index_clones_hooks(cli, tmp_path: Path) -> None:
    work = new_index(tmp_path / "work", tmp_path / "index.git")
    marker = tmp_path / "hook-ran"
    for hook in ("pre-commit", "commit-msg", "post-commit"):
        path = work / ".git" / "hooks" / hook
        path.write_text(f"#!/bin/sh\ntouch {marker}\n")
        path.chmod(0o755)
    package = make_package(tmp_path, generate_keypair(tmp_path / "k.pem").private_key, "expert-sql", "0.1.0")
    assert cli("publish", package, "--index", work).exit_code == 0
    assert git("log", "-1", "--format=%s", cwd=work).startswith("publish expert-sql@0.1.0")
    assert not marker.exists()
