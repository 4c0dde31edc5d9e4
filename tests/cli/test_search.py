"""`expert-cli search`: a table (or JSON) over every added index; clear errors without one."""

from __future__ import annotations

import json
from pathlib import Path

from index_helpers import published_index

from expert_cli.packages.signing import generate_keypair


def test_search_without_an_index_says_how_to_add_one(cli) -> None:
    result = cli("search", "sql")
    assert result.exit_code == 2 and "no index is added" in result.stderr
    assert "hint: add one with `expert-cli index add NAME URL`" in result.stderr


def test_search_prints_a_table_and_respects_limit(cli, tmp_path: Path) -> None:
    key = generate_keypair(tmp_path / "k.pem").private_key
    _, bare = published_index(tmp_path, key, ["expert-sql@0.1.0", "expert-sql@0.2.0", "expert-sqlite@0.1.0"])
    assert cli("index", "add", "main", bare).exit_code == 0
    table = cli("search", "sql").stdout.splitlines()
    assert table[0].split() == ["NAME", "VERSION", "INDEX", "FITS", "INSTALLED", "DESCRIPTION"]
    assert table[1].split()[:4] == ["expert-sql", "0.2.0", "main", "yes"]  # exact name first, newest version
    assert table[2].split()[0] == "expert-sqlite"
    assert [h["name"] for h in json.loads(cli("search", "sql", "--limit", "1", "--json").stdout)] == ["expert-sql"]
    none = cli("search", "zebra")
    assert none.exit_code == 0 and none.stdout == "" and "No experts found" in none.stderr
    assert json.loads(cli("search", "zebra", "--json").stdout) == []
