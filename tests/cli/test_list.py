"""`expert-cli list`: a borderless table or one JSON document; a corrupt registry is an error, left as it was."""

from __future__ import annotations

import json

from expert_cli.core import paths
from expert_cli.packages.registry import InstalledExpert, registry_transaction

JSON_KEYS = {"name", "version", "base_model", "path", "source", "installed_at"}


def install(*specs: tuple[str, str]) -> None:
    with registry_transaction() as registry:
        for name, version in specs:
            registry.add(InstalledExpert(
                name=name, version=version, base_model="Qwen/Qwen3-0.6B", path=f"/e/{name}/{version}",
                source=f"{name}-{version}.expert", installed_at="2025-03-04T05:06:07.000000Z",
                capabilities=["database:sql"] if name == "expert-sql" else [],
            ))


def test_empty_registry_json_is_an_empty_list(cli):
    result = cli("list", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_empty_registry_prints_nothing_on_stdout(cli):
    result = cli("list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No experts installed" in result.stderr


def test_json_lists_every_version_with_the_documented_keys(cli):
    install(("expert-sql", "0.2.1"), ("expert-neo4j", "1.0.0"), ("expert-sql", "0.3.0"))
    result = cli("list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [(r["name"], r["version"]) for r in rows] == [
        ("expert-neo4j", "1.0.0"), ("expert-sql", "0.3.0"), ("expert-sql", "0.2.1"),
    ]
    assert all(JSON_KEYS <= set(row) for row in rows)
    assert rows[1]["path"] == "/e/expert-sql/0.3.0"
    assert rows[1]["base_model"] == "Qwen/Qwen3-0.6B" and rows[1]["installed_at"] == "2025-03-04T05:06:07.000000Z"
    assert rows[1]["source"] == "expert-sql-0.3.0.expert"
    assert result.stderr == ""


def test_table_has_a_header_and_a_row_per_version(cli):
    install(("expert-sql", "0.2.1"), ("expert-sql", "0.3.0"))
    result = cli("list")
    assert result.exit_code == 0
    lines = [line.split() for line in result.stdout.strip().splitlines()]
    assert lines[0] == ["NAME", "VERSION", "BASE", "MODEL", "SOURCE", "INSTALLED"]
    assert lines[1][:3] == ["expert-sql", "0.3.0", "Qwen/Qwen3-0.6B"]
    assert lines[2][:2] == ["expert-sql", "0.2.1"]
    assert "2025-03-04 05:06" in result.stdout
    assert "/e/expert-sql" not in result.stdout  # the path is for -v
    assert not set("│┃─━┌┏") & set(result.stdout)  # borderless


def test_verbose_adds_path_and_capabilities(cli):
    install(("expert-sql", "0.3.0"))
    result = cli("list", "-v")
    assert result.exit_code == 0
    header, row = result.stdout.splitlines()  # one line per version even when wider than 80 columns
    assert header.split() == ["NAME", "VERSION", "BASE", "MODEL", "SOURCE", "INSTALLED", "TRUST", "PINNED", "KEY",
                              "PATH", "CAPABILITIES"]
    assert row.split() == ["expert-sql", "0.3.0", "Qwen/Qwen3-0.6B", "expert-sql-0.3.0.expert", "2025-03-04",
                           "05:06", "unsigned", "-", "/e/expert-sql/0.3.0", "database:sql"]


def test_corrupt_registry_is_an_error_and_left_byte_for_byte(cli):
    registry = paths.registry_path()
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_bytes(b'{"experts": [{"name": "expert-sql", "versions": ')
    before = registry.read_bytes()
    for args in (["list"], ["list", "--json"], ["list", "-v"]):
        result = cli(*args)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.startswith(f"error: the registry `{registry}` is corrupt")
        assert "\nhint: " in result.stderr
    assert registry.read_bytes() == before
