"""The marketplace end to end on real Git: a bare index repository with several experts and versions,
published by the real `publish`, added, searched and installed from through the CLI.

Index layout built once per module (publisher key A; packages live at file:// URLs in the module folder):
  expert-sql    0.1.0 0.2.0 1.0.0 1.1.0 (tiny base)  1.1.1 (tiny, yanked)  1.2.0 (Qwen3-0.6B only)
  expert-neo4j  0.1.0  capabilities language:cypher, database:neo4j
  expert-json   0.1.0  tags json, structured
  expert-report 0.1.0  requires expert-sql@^1.0 and expert-json
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from index_helpers import OTHER_BASE, commit_file, git, git_daemon, make_package, new_index
from package_helpers import BASE, flip_byte

from expert_cli.core import paths
from expert_cli.packages.publish import publish_package, yank_version
from expert_cli.packages.signing import generate_keypair

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("market")
    key_a, key_b = generate_keypair(root / "a.pem"), generate_keypair(root / "b.pem")
    work = new_index(root / "work", root / "index.git")
    for version in ("0.1.0", "0.2.0", "1.0.0", "1.1.0", "1.1.1"):
        publish_package(make_package(root, key_a.private_key, "expert-sql", version,
                                     description="SQL queries for SQLite databases"), work)
    publish_package(make_package(root, key_a.private_key, "expert-sql", "1.2.0", model=OTHER_BASE), work)
    publish_package(make_package(root, key_a.private_key, "expert-neo4j", "0.1.0",
                                 capabilities=["language:cypher", "database:neo4j"],
                                 description="Cypher queries for graph databases"), work)
    publish_package(make_package(root, key_a.private_key, "expert-json", "0.1.0", tags=["json", "structured"],
                                 description="Structured output"), work)
    publish_package(make_package(root, key_a.private_key, "expert-report", "0.1.0",
                                 requires=["expert-sql@^1.0", "expert-json"], description="Reports"), work)
    yank_version("sql@1.1.1", work)
    git("push", "-q", "origin", "main", cwd=work)
    return {"root": root, "work": work, "bare": root / "index.git", "a": key_a.private_key,
            "a_pub": key_a.public_key, "b": key_b.private_key, "b_pub": key_b.public_key}


@pytest.fixture
def index(market: dict[str, Path], tmp_path: Path, cli) -> dict[str, Path]:
    """A private copy of the index (working copy + bare), added as `test`; publisher A trusted."""
    bare, work = tmp_path / "index.git", tmp_path / "work"
    shutil.copytree(market["bare"], bare)
    shutil.copytree(market["work"], work)
    git("remote", "set-url", "origin", bare, cwd=work)
    assert cli("index", "add", "test", bare).exit_code == 0
    assert cli("trust", "add", market["a_pub"]).exit_code == 0
    return {**market, "bare": bare, "work": work}


def installed() -> dict[str, list[str]]:
    document = json.loads(paths.registry_path().read_text(encoding="utf-8"))
    return {e["name"]: [v["version"] for v in e["versions"]] for e in document["experts"]}


def test_index_add_lists_the_index_and_its_entries(cli, index) -> None:
    listed = json.loads(cli("index", "list", "--json").stdout)
    assert [(i["name"], i["default"]) for i in listed] == [("test", True)]
    assert (paths.expert_home() / "indexes" / "test" / "3" / "s" / "expert-sql").is_file()


def test_search_ranks_names_first_then_capabilities_and_shows_the_newest_live_version(cli, index) -> None:
    hits = json.loads(cli("search", "sql", "--json").stdout)
    assert hits[0]["name"] == "expert-sql" and hits[0]["version"] == "1.2.0"  # 1.2.0: another base, not yanked
    assert hits[0]["fits_installed_base"] is True  # built for the built-in base too
    tiny = json.loads(cli("search", "sql", "--base-model", BASE, "--json").stdout)
    assert tiny[0]["version"] == "1.1.0"  # 1.1.1 is yanked, 1.2.0 is for another base
    assert next(h["name"] for h in json.loads(cli("search", "cypher graph", "--json").stdout)) == "expert-neo4j"
    assert next(h["name"] for h in json.loads(cli("search", "json", "--json").stdout)) == "expert-json"
    by_capability = json.loads(cli("search", "", "--capability", "language", "--json").stdout)
    assert [h["name"] for h in by_capability] == ["expert-neo4j"]


def test_info_lists_every_version_with_yanked_marked_and_what_is_installed(cli, index) -> None:
    assert cli("install", "sql@0.2.0").exit_code == 0
    found = json.loads(cli("info", "sql", "--json").stdout)
    versions = {v["version"]: v for v in found["versions"]}
    assert [v["version"] for v in found["versions"]] == ["1.2.0", "1.1.1", "1.1.0", "1.0.0", "0.2.0", "0.1.0"]
    assert versions["1.1.1"]["yanked"] and not versions["1.1.0"]["yanked"]
    assert versions["0.2.0"]["installed"] and not versions["0.1.0"]["installed"]
    assert versions["1.2.0"]["base_models"] == [OTHER_BASE]
    assert found["installed"] == ["0.2.0"]
    one = json.loads(cli("info", "sql@1.1.1", "--json").stdout)
    assert [v["version"] for v in one["versions"]] == ["1.1.1"]


def test_install_by_name_takes_the_newest_live_version_for_a_base_on_hand(cli, index) -> None:
    result = cli("install", "sql", "--json")
    assert result.exit_code == 0, result.stderr
    assert installed() == {"expert-sql": ["1.1.0"]}  # not 1.1.1 (yanked), not 1.2.0 (a base not on hand)
    entry = json.loads(paths.registry_path().read_text())["experts"][0]["versions"][0]
    assert entry["source"] == "index:test" and entry["index"]["index"] == "test"


def test_install_by_exact_version_and_by_range(cli, index) -> None:
    assert cli("install", "sql@0.1.0").exit_code == 0
    assert cli("install", "sql@^0.2").exit_code == 0
    assert installed() == {"expert-sql": ["0.2.0", "0.1.0"]}
    assert cli("install", "sql@~1.0").exit_code == 0
    assert installed()["expert-sql"][0] == "1.0.0"


def test_a_yanked_version_is_skipped_unless_asked_by_exact_version(cli, index) -> None:
    assert cli("install", "sql@~1.1").exit_code == 0
    assert installed()["expert-sql"] == ["1.1.0"]
    assert cli("install", "sql@1.1.1").exit_code == 0
    assert installed()["expert-sql"][0] == "1.1.1"


def test_a_package_for_another_base_model_is_skipped(cli, index) -> None:
    result = cli("install", "sql@^1.2", "--model", BASE)
    assert result.exit_code == 1
    assert f"`expert-sql@^1.2` is published for {OTHER_BASE}, not for `{BASE}`" in result.stderr
    assert not paths.registry_path().exists()
    assert cli("install", "sql", "--model", OTHER_BASE).exit_code == 0
    assert installed() == {"expert-sql": ["1.2.0"]}


def test_bytes_that_differ_from_the_index_checksum_are_refused_before_extraction(cli, index, monkeypatch) -> None:
    package = make_package(index["root"], index["a"], "expert-sql", "2.0.0", seed=1)
    hosted = index["root"] / "hosted" / package.name
    hosted.parent.mkdir(exist_ok=True)
    shutil.copyfile(package, hosted)
    publish_package(hosted, index["work"])
    git("push", "-q", "origin", "main", cwd=index["work"])
    assert cli("index", "update").exit_code == 0
    # replaced by another validly signed package of the same name and version: only the checksum catches it
    shutil.copyfile(make_package(index["root"], index["a"], "expert-sql", "2.0.0", seed=2), hosted)
    extracted: list[Path] = []
    from expert_cli.packages import integrity

    real = integrity.extract_archive
    monkeypatch.setattr(integrity, "extract_archive", lambda path, *a, **k: extracted.append(path) or real(path, *a, **k))
    result = cli("install", "sql@2.0.0")
    assert result.exit_code == 1 and "nothing was extracted" in result.stderr
    shutil.copyfile(package, hosted)
    flip_byte(hosted)  # same size, other bytes
    result = cli("install", "sql@2.0.0")
    assert result.exit_code == 1 and "does not match the SHA-256 in index `test`" in result.stderr
    assert extracted == [] and not paths.registry_path().exists()
    shutil.copyfile(package, hosted)
    assert cli("install", "sql@2.0.0").exit_code == 0 and len(extracted) == 1  # the spy sees real extractions


def test_a_package_signed_by_another_key_than_the_entry_is_refused(cli, index) -> None:
    assert cli("trust", "add", index["b_pub"]).exit_code == 0  # trusted, but not this expert's publisher
    package = make_package(index["root"], index["b"], "expert-sql", "3.0.0")
    line = json.loads((index["work"] / "3" / "s" / "expert-sql").read_text().splitlines()[0])
    from expert_cli.core.hashing import sha256_file

    forged = {**line, "version": "3.0.0", "sha256": sha256_file(package), "size_bytes": package.stat().st_size,
              "source": {"url": package.as_uri()}}  # the index claims publisher A for B's package
    text = (index["work"] / "3" / "s" / "expert-sql").read_text() + json.dumps(forged) + "\n"
    commit_file(index["work"], "3/s/expert-sql", text, "forged entry")
    assert cli("index", "update").exit_code == 0
    result = cli("install", "sql@3.0.0")
    assert result.exit_code == 1
    assert "is signed by key" in result.stderr and "but the index names the publisher key" in result.stderr
    assert not paths.registry_path().exists()


def test_an_index_update_that_rewrites_history_is_reported(cli, index) -> None:
    work = index["work"]
    git("reset", "-q", "--hard", "HEAD~1", cwd=work)  # drop the yank of 1.1.1
    commit_file(work, "README.md", "rewritten\n", "rewrite", force=True)
    result = cli("index", "update", "--json")
    assert result.exit_code == 0, result.stderr
    update = json.loads(result.stdout)[0]
    assert update["rewritten"] is True and update["unyanked"] == ["expert-sql@1.1.1"]
    text = cli("index", "update")
    assert "up to date" in text.stderr
    commit_file(work, "README.md", "again\n", "plain")
    git("reset", "-q", "--hard", "HEAD~2", cwd=work)
    commit_file(work, "NOTES.md", "x\n", "rewrite again", force=True)
    shown = cli("index", "update")
    assert "warning: the history of index test was rewritten (force-push)" in shown.stderr


def test_publishing_a_version_twice_is_refused_unless_the_bytes_are_the_same(cli, index) -> None:
    first = make_package(index["root"], index["a"], "expert-sql", "4.0.0", seed=3)
    assert cli("publish", first, "--index", index["work"]).exit_code == 0
    again = cli("publish", first, "--index", index["work"], "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["status"] == "unchanged"
    other = make_package(index["root"], index["a"], "expert-sql", "4.0.0", seed=4)
    refused = cli("publish", other, "--index", index["work"])
    assert refused.exit_code == 1 and "is already in the index with another checksum" in refused.stderr
    lines = [json.loads(x) for x in (index["work"] / "3" / "s" / "expert-sql").read_text().splitlines()]
    assert [x["version"] for x in lines].count("4.0.0") == 1


def test_requires_are_resolved_through_the_index_first(cli, index) -> None:
    result = cli("install", "report", "--json")
    assert result.exit_code == 0, result.stderr
    order = [r["name"] + "@" + r["version"] for r in json.loads(result.stdout)["installed"]]
    assert order == ["expert-sql@1.1.0", "expert-json@0.1.0", "expert-report@0.1.0"]


def test_outdated_and_update_go_through_the_index(cli, index) -> None:
    assert cli("install", "sql@0.1.0").exit_code == 0
    publish_package(make_package(index["root"], index["a"], "expert-sql", "0.1.5"), index["work"])
    git("push", "-q", "origin", "main", cwd=index["work"])
    assert cli("index", "update").exit_code == 0
    rows = json.loads(cli("outdated", "--json").stdout)
    assert rows == [{"name": "expert-sql", "installed": "0.1.0", "wanted": "0.1.5", "latest": "1.1.0",
                     "requested": "^0.1.0", "index": "test", "yanked": False, "outdated": True}]
    result = cli("update", "sql", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "updated"
    assert installed() == {"expert-sql": ["0.1.5"]}
    assert json.loads(cli("update", "sql", "--json").stdout)["status"] == "up-to-date"


def test_an_index_served_by_git_daemon(cli, market: dict[str, Path], tmp_path: Path) -> None:
    served = tmp_path / "served"
    shutil.copytree(market["bare"], served / "index.git")
    with git_daemon(served) as base_url:
        result = cli("index", "add", "remote", f"{base_url}/index.git")
        assert result.exit_code == 0, result.stderr
        assert cli("trust", "add", market["a_pub"]).exit_code == 0
        assert cli("index", "update", "remote").exit_code == 0
        assert cli("install", "neo4j").exit_code == 0
    assert installed() == {"expert-neo4j": ["0.1.0"]}


def test_a_package_published_at_a_git_tag_installs_from_that_repository(cli, index, tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    releases.mkdir()
    git("init", "-q", "-b", "main", cwd=releases)
    package = make_package(index["root"], index["a"], "expert-sql", "5.0.0", seed=5)
    shutil.copyfile(package, releases / package.name)
    git("add", package.name, cwd=releases)
    git("commit", "-q", "-m", "release", cwd=releases)
    git("tag", "v5.0.0", cwd=releases)
    result = cli("publish", package, "--index", index["work"], "--url", f"git+{releases.as_uri()}@v5.0.0")
    assert result.exit_code == 0, result.stderr
    git("push", "-q", "origin", "main", cwd=index["work"])
    assert cli("index", "update").exit_code == 0
    assert cli("install", "sql@5.0.0").exit_code == 0
    assert installed() == {"expert-sql": ["5.0.0"]}


@pytest.mark.parametrize(("relative", "content", "message"), [
    ("3/s/expert-sql", "{not json\n", "`3/s/expert-sql` line 1 is not valid JSON"),
    ("3/s/expert-sql", '{"name": "expert-sql"}\n', "`3/s/expert-sql` line 1: `version` is missing or malformed"),
    ("config.json", '{"name": "x", "format": 99}\n', "uses index format `99`"),
    ("3/s/expert-sql", "x" * (1 << 20) + "\n", "over the 1,048,576-byte limit"),
    ("ab/cd/expert-sql", "", "is not at the path of an expert file (`3/s/expert-sql`"),
])
def test_bad_index_content_is_an_error_line_and_is_rolled_back(cli, index, relative, content, message) -> None:
    commit_file(index["work"], relative, content, "bad")
    result = cli("index", "update")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    hits = json.loads(cli("search", "sql", "--json").stdout)  # the previous content is still there
    assert hits[0]["name"] == "expert-sql"
    fresh = cli("index", "add", "again", index["bare"])
    assert fresh.exit_code == 1 and message in fresh.stderr
    assert [i["name"] for i in json.loads(cli("index", "list", "--json").stdout)] == ["test"]


def test_the_example_index_script_makes_the_packages_installable_by_name(cli, market: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in ("expert-neo4j", "expert-json"):
        shutil.copyfile(make_package(market["root"], market["a"], name, "0.3.0"), dist / f"{name}.v0.3.0.expert")
    script = [sys.executable, str(REPO / "scripts" / "build_example_index.py"), "--packages", str(dist),
              "--out", str(tmp_path / "reference-index")]
    for expected in ("published", "unchanged"):  # a second run changes nothing
        run = subprocess.run(script, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        assert f"{expected} expert-json@0.3.0" in run.stderr
    assert cli("index", "add", "reference", tmp_path / "reference-index").exit_code == 0
    assert cli("trust", "add", market["a_pub"]).exit_code == 0
    assert cli("install", "json").exit_code == 0
    assert installed() == {"expert-json": ["0.3.0"]}


def test_a_package_published_at_an_http_url_is_downloaded(cli, index, tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    served = tmp_path / "www"
    served.mkdir()
    package = make_package(index["root"], index["a"], "expert-json", "0.4.0", seed=6)
    shutil.copyfile(package, served / "json.expert")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/json.expert"
        assert cli("publish", package, "--index", index["work"], "--url", url).exit_code == 0
        git("push", "-q", "origin", "main", cwd=index["work"])
        assert cli("index", "update").exit_code == 0
        result = cli("install", "json@0.4.0")
        assert result.exit_code == 0, result.stderr
        assert installed() == {"expert-json": ["0.4.0"]}
        (served / "json.expert").unlink()
        gone = cli("install", "json@0.4.0", "--force")
        assert gone.exit_code == 1 and f"cannot fetch `{url}`" in gone.stderr
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def hostile_lines(valid: dict) -> list[bytes]:
    """Index content a careless or hostile maintainer could push, each a different way to be wrong."""
    cases = [b"\x00\xff\xfe binary", b"[" * 100_000, b'{"name": "\\ud800"}', b"null", b"[]", b'"text"',
             json.dumps(valid).replace('"size_bytes": ', '"size_bytes": ' + "9" * 5000 + ', "x": ', 1).encode(),
             json.dumps(valid).replace('"size_bytes": ', '"size_bytes": NaN, "x": ', 1).encode(),
             json.dumps(valid).encode() + b"\n{truncated",
             b'{"name": "expert-sql", "version": "' + b"9" * 70_000 + b'"}']
    for key in ("name", "version", "sha256", "size_bytes", "source", "publisher", "base_models", "yanked",
                "requires", "capabilities", "adapter"):
        for bad in (5, None, [], {}, "x", [5], {"url": 5}):
            if valid.get(key) != bad:
                cases.append(json.dumps({**valid, key: bad}).encode())
    return cases


def schema_accepts(content: bytes) -> bool:
    """Does the published JSON Schema accept this line (for this file: the name must be `expert-sql`)?"""
    import jsonschema

    schema = json.loads((REPO / "schemas" / "expert-index-entry.schema.json").read_text())
    try:
        data = json.loads(content)
        jsonschema.validate(data, schema)
    except (ValueError, RecursionError, jsonschema.ValidationError):
        return False
    return data["name"] == "expert-sql"


@pytest.mark.slow
def test_no_hostile_index_line_ends_in_a_traceback(cli, index) -> None:
    work = index["work"]
    path = work / "3" / "s" / "expert-sql"
    valid = json.loads(path.read_text().splitlines()[0])
    cases = hostile_lines(valid)
    tracebacks, wrong = [], []
    for number, content in enumerate(cases):
        path.write_bytes(content + b"\n")
        git("commit", "-q", "-am", f"hostile {number}", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        result = cli("index", "update")
        if "Traceback" in result.stderr or result.exception and not isinstance(result.exception, SystemExit):
            tracebacks.append((number, repr(result.exception)))
        elif (schema_accepts(content) != (result.exit_code == 0)  # the code and the schema agree on each line
              or (result.exit_code != 0 and not result.stderr.startswith("error: "))):
            wrong.append(number)
    assert len(cases) > 70 and tracebacks == [] and wrong == []
