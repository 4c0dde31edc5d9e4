"""`expert-cli info NAME[@VERSION]`: every version with its status, or one error line."""

from __future__ import annotations

import json
from pathlib import Path

from index_helpers import git, published_index

from expert_cli.packages.publish import yank_version
from expert_cli.packages.signing import generate_keypair


def test_info_shows_versions_newest_first_with_yanked_and_installed(cli, tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "k.pem")
    work, bare = published_index(tmp_path, pair.private_key, ["expert-sql@0.1.0", "expert-sql@0.2.0"])
    yank_version("sql@0.2.0", work)
    git("push", "-q", "origin", "main", cwd=work)
    assert cli("index", "add", "main", bare).exit_code == 0
    assert cli("trust", "add", pair.public_key).exit_code == 0
    assert cli("install", "sql").exit_code == 0  # 0.2.0 is yanked
    lines = cli("info", "sql").stdout.splitlines()
    assert lines[0] == "expert-sql (index main)"
    rows = {line.split()[0]: line for line in lines[3:]}
    assert rows["0.2.0"].rstrip().endswith("yanked") and rows["0.1.0"].rstrip().endswith("installed")
    one = json.loads(cli("info", "expert-sql@0.1.0", "--json").stdout)
    assert [v["version"] for v in one["versions"]] == ["0.1.0"] and one["installed"] == ["0.1.0"]


def test_info_of_an_unknown_expert_or_version(cli, tmp_path: Path) -> None:
    _, bare = published_index(tmp_path, generate_keypair(tmp_path / "k.pem").private_key, ["expert-sql@0.1.0"])
    assert cli("index", "add", "main", bare).exit_code == 0
    missing = cli("info", "nosuch")
    assert missing.exit_code == 1 and "no expert `nosuch` in the added indexes" in missing.stderr
    assert "hint: find experts with `expert-cli search <words>`" in missing.stderr
    version = cli("info", "sql@9.9.9")
    assert version.exit_code == 1 and "`sql@9.9.9` is not in index `main`" in version.stderr
