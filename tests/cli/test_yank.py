"""`expert-cli yank NAME@VERSION --index CLONE`: marks (or unmarks) a version, and commits."""

from __future__ import annotations

import json
from pathlib import Path

from index_helpers import git, published_index

from expert_cli.packages.signing import generate_keypair


def test_yank_and_undo_commit_the_flag(cli, tmp_path: Path) -> None:
    work, _ = published_index(tmp_path, generate_keypair(tmp_path / "k.pem").private_key,
                              ["expert-sql@0.1.0", "expert-sql@0.2.0"])
    result = cli("yank", "sql@0.2.0", "--index", work)
    assert result.exit_code == 0 and "yanked expert-sql@0.2.0" in result.stderr
    flags = [json.loads(x)["yanked"] for x in (work / "3" / "s" / "expert-sql").read_text().splitlines()]
    assert flags == [False, True]
    assert git("log", "-1", "--format=%s", cwd=work) == "yank expert-sql@0.2.0"
    again = cli("yank", "sql@0.2.0", "--index", work)
    assert again.exit_code == 0 and "was already yanked" in again.stderr
    assert cli("yank", "sql@0.2.0", "--index", work, "--undo").exit_code == 0
    assert git("log", "-1", "--format=%s", cwd=work) == "unyank expert-sql@0.2.0"
    assert not json.loads((work / "3" / "s" / "expert-sql").read_text().splitlines()[1])["yanked"]


def test_yank_needs_a_published_version(cli, tmp_path: Path) -> None:
    work, _ = published_index(tmp_path, generate_keypair(tmp_path / "k.pem").private_key, ["expert-sql@0.1.0"])
    no_version = cli("yank", "sql", "--index", work)
    assert no_version.exit_code == 2 and "names no version" in no_version.stderr
    unknown = cli("yank", "sql@9.0.0", "--index", work)
    assert unknown.exit_code == 1 and "`expert-sql@9.0.0` is not in the index" in unknown.stderr
