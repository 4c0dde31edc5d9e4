"""`chat`, `route` and `serve` use installed experts only while their publisher key is trusted, and find a
name exactly as it was installed (trust issue, defects 4 and 7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from package_helpers import write_expert

from expert_cli.packages.build import build_package
from expert_cli.packages.install import install_expert
from expert_cli.packages.signer import sign_package
from expert_cli.packages.signing import generate_keypair
from expert_cli.packages.staging import InstallOptions
from expert_cli.packages.trust import add_trusted_key, remove_trusted_key


@pytest.fixture(scope="module")
def packages(tiny_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """expert-sql signed by alice, expert-neo4j signed by bob, and `sql` (no prefix) signed by bob."""
    root = tmp_path_factory.mktemp("trusted-experts")
    out: dict[str, Path] = {}
    for who in ("alice", "bob"):
        out[f"{who}.pub"] = generate_keypair(root / f"{who}.pem").public_key
    for name, who in (("expert-sql", "alice"), ("expert-neo4j", "bob"), ("sql", "bob")):
        folder = write_expert(root / name, tiny_adapter, name=name)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["routing"] = {"keywords": ["cypher", "graph"] if "neo4j" in name else ["sql", "table"]}
        (folder / "manifest.json").write_text(json.dumps(manifest))
        package = build_package(folder, root / f"{name}.expert").path
        sign_package(package, root / f"{who}.pem")
        out[name] = package
    return out


@pytest.fixture
def installed(packages: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    for who in ("alice", "bob"):
        add_trusted_key(str(packages[f"{who}.pub"]), who)
    for name in ("expert-sql", "expert-neo4j"):
        install_expert(str(shutil.copyfile(packages[name], tmp_path / f"{name}.expert")), InstallOptions())
    return packages


def test_a_revoked_key_leaves_its_expert_out_of_routing_with_a_warning(cli, installed):
    remove_trusted_key("alice")
    result = cli("route", "Write the sql query over the users table", "--json")
    assert result.exit_code == 0, result.stderr
    assert "`expert-sql@0.1.0` is signed by key" in result.stderr and "no longer trusted; left out" in result.stderr
    names = [candidate["name"] for candidate in json.loads(result.stdout)["candidates"]]
    assert "expert-sql" not in names


def test_chat_refuses_a_named_expert_whose_key_was_revoked(cli, installed):
    remove_trusted_key("alice")
    result = cli("chat", "--experts", "sql", "--prompt", "list the users")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: `expert-sql@0.1.0` is signed by key")
    assert "no longer trusted" in result.stderr.splitlines()[0]
    allowed = cli("chat", "--experts", "sql", "--allow-untrusted", "--prompt", "list the users")
    assert "no longer trusted" not in allowed.stderr  # past the trust check (the test base is not on disk)


def test_a_name_installed_without_the_prefix_is_found_as_installed(cli, installed, tmp_path: Path):
    install_expert(str(shutil.copyfile(installed["sql"], tmp_path / "sql.expert")), InstallOptions())
    result = cli("route", "Write the sql query over the users table", "--experts", "sql", "--json")
    assert result.exit_code == 0, result.stderr
    assert [c["name"] for c in json.loads(result.stdout)["candidates"]] == ["sql"]
