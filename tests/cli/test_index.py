"""`expert-cli index add|list|update|rm|default` on real Git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from index_helpers import commit_file, published_index

from expert_cli.core import paths
from expert_cli.packages.signing import generate_keypair


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    return published_index(tmp_path, generate_keypair(tmp_path / "k.pem").private_key, ["expert-sql@0.1.0"])


def test_add_list_default_and_rm(cli, repo, tmp_path: Path) -> None:
    work, bare = repo
    added = cli("index", "add", "first", bare, "--json")
    assert added.exit_code == 0 and json.loads(added.stdout)["entries"] == 1
    assert cli("index", "add", "second", work).exit_code == 0
    table = cli("index", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "URL", "DEFAULT", "ADDED"]
    assert table[1].split()[:3] == ["first", bare.as_uri(), "yes"] and "yes" not in table[2]
    assert cli("index", "default", "second").exit_code == 0
    assert [i["default"] for i in json.loads(cli("index", "list", "--json").stdout)] == [False, True]
    removed = cli("index", "rm", "second")
    assert removed.exit_code == 0 and "removed index second" in removed.stderr
    assert not (paths.expert_home() / "indexes" / "second").exists()
    assert [(i["name"], i["default"]) for i in json.loads(cli("index", "list", "--json").stdout)] == [("first", True)]


def test_usage_errors_name_the_problem(cli, repo) -> None:
    _, bare = repo
    bad_name = cli("index", "add", "Bad Name", bare)
    assert bad_name.exit_code == 2 and "is not an index name" in bad_name.stderr
    assert cli("index", "add", "main", bare).exit_code == 0
    twice = cli("index", "add", "main", bare)
    assert twice.exit_code == 2 and "already added" in twice.stderr and "hint: run `expert-cli index update main`" in twice.stderr
    unknown = cli("index", "update", "nope")
    assert unknown.exit_code == 2 and "no index named `nope` (added: `main`)" in unknown.stderr
    assert cli("index", "rm", "nope").exit_code == 2


def test_a_url_that_cannot_be_cloned_is_one_error_line(cli, tmp_path: Path) -> None:
    result = cli("index", "add", "gone", (tmp_path / "missing.git").as_uri())
    assert result.exit_code == 1 and result.stderr.startswith("error: cannot clone the index")
    assert "Traceback" not in result.stderr and not (paths.expert_home() / "indexes" / "gone").exists()
    ext = cli("index", "add", "ext", f"ext::sh -c touch% {tmp_path / 'pwned'}")
    assert ext.exit_code == 2 and "uses a Git transport that is not allowed" in ext.stderr
    assert not (tmp_path / "pwned").exists()


def test_update_lists_what_changed(cli, repo, tmp_path: Path) -> None:
    work, bare = repo
    assert cli("index", "add", "main", bare).exit_code == 0
    same = cli("index", "update")
    assert same.exit_code == 0 and "index main is up to date" in same.stderr
    line = json.loads((work / "3" / "s" / "expert-sql").read_text())
    commit_file(work, "3/s/expert-sql", json.dumps(line) + "\n" + json.dumps({**line, "version": "0.2.0"}) + "\n")
    changed = cli("index", "update")
    assert changed.exit_code == 0 and "updated index main" in changed.stderr
    assert "  added: expert-sql@0.2.0" in changed.stderr
    commit_file(work, "3/s/expert-sql", json.dumps({**line, "sha256": "f" * 64}) + "\n")
    tampered = cli("index", "update", "--json")
    update = json.loads(tampered.stdout)[0]
    assert update["changed"] == ["expert-sql@0.1.0"] and update["removed"] == ["expert-sql@0.2.0"]
