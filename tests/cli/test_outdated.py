"""`expert-cli outdated`: experts installed from an index against what the index now holds."""

from __future__ import annotations

import json
from pathlib import Path

from index_helpers import git, make_package, published_index

from expert_cli.packages.publish import publish_package
from expert_cli.packages.signing import generate_keypair


def test_outdated_shows_wanted_and_latest(cli, tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "k.pem")
    work, bare = published_index(tmp_path, pair.private_key, ["expert-sql@0.1.0", "expert-json@0.1.0"])
    assert cli("index", "add", "main", bare).exit_code == 0
    assert cli("trust", "add", pair.public_key).exit_code == 0
    assert cli("install", "sql@0.1.0").exit_code == 0 and cli("install", "json").exit_code == 0
    quiet = cli("outdated")
    assert quiet.exit_code == 0 and quiet.stdout == "" and "up to date" in quiet.stderr
    for version in ("0.1.1", "1.0.0"):
        publish_package(make_package(tmp_path, pair.private_key, "expert-sql", version), work)
    git("push", "-q", "origin", "main", cwd=work)
    assert cli("index", "update").exit_code == 0
    table = cli("outdated").stdout.splitlines()
    assert table[0].split() == ["NAME", "INSTALLED", "WANTED", "LATEST", "RANGE", "INDEX", "NOTE"]
    assert table[1].split() == ["expert-sql", "0.1.0", "0.1.1", "1.0.0", "^0.1.0", "main"] and len(table) == 2
    rows = {row["name"]: row for row in json.loads(cli("outdated", "--json").stdout)}
    assert rows["expert-json"]["outdated"] is False and rows["expert-sql"]["outdated"] is True


def test_outdated_ignores_experts_not_from_an_index(cli, tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "k.pem")
    package = make_package(tmp_path, pair.private_key, "expert-sql", "0.1.0")
    assert cli("install", package, "--trust-key", pair.public_key).exit_code == 0
    assert json.loads(cli("outdated", "--json").stdout) == []
