"""parse_source: files, folders and the Git URL forms with their refs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from expert_cli.core.errors import UsageError
from expert_cli.packages.install_source import FILE, FOLDER, GIT, parse_source, split_ref


def _triple(source) -> tuple:
    return source.kind, source.location, source.ref


@pytest.mark.parametrize("url, expected", [
    ("https://github.com/o/expert-x.git@v0.2.0", ("https://github.com/o/expert-x.git", "v0.2.0")),
    ("https://github.com/o/expert-x.git#main", ("https://github.com/o/expert-x.git", "main")),
    ("ssh://git@host/o/expert-x.git", ("ssh://git@host/o/expert-x.git", None)),
    ("git@github.com:o/expert-x.git", ("git@github.com:o/expert-x.git", None)),
    ("git@github.com:o/expert-x.git@v1", ("git@github.com:o/expert-x.git", "v1")),
    ("https://host/x.git", ("https://host/x.git", None)),
])
def test_split_ref(url: str, expected: tuple) -> None:
    assert split_ref(url) == expected


def test_git_forms() -> None:
    assert _triple(parse_source("git+https://h/o/expert-x.git@v0.2.0")) == (GIT, "https://h/o/expert-x.git", "v0.2.0")
    assert _triple(parse_source("https://h/o/expert-x.git#tag")) == (GIT, "https://h/o/expert-x.git", "tag")
    assert _triple(parse_source("git://127.0.0.1:9418/x.git")) == (GIT, "git://127.0.0.1:9418/x.git", None)
    with pytest.raises(UsageError, match="package URL"):
        parse_source("https://h/expert-x.v1.0.0.expert")


def test_local_forms(tmp_path: Path) -> None:
    (tmp_path / "p.expert").write_bytes(b"x")
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "manifest.json").write_text("{}")
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "r.git")], check=True)
    assert parse_source(str(tmp_path / "p.expert")).kind == FILE
    assert parse_source(str(tmp_path / "e")).kind == FOLDER
    assert parse_source(f"file://{tmp_path / 'e'}").kind == FOLDER
    bare = parse_source(str(tmp_path / "r.git"))
    assert (bare.kind, bare.location) == (GIT, (tmp_path / "r.git").as_uri())
    assert _triple(parse_source(f"file://{tmp_path / 'r.git'}#v1")) == (GIT, f"file://{tmp_path / 'r.git'}", "v1")


@pytest.mark.parametrize("text", ["", "--upload-pack=evil", "/no/such/thing"])
def test_bad_sources(text: str) -> None:
    with pytest.raises(UsageError):
        parse_source(text)
