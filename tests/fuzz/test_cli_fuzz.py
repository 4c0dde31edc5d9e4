"""Property-based fuzzing of every command that reads a file a user or a publisher controls, through the real
CLI (typer's CliRunner, in process): malformed manifests, packages, registries, datasets and key files.

For every input: no traceback (no exception escapes the error boundary), exit code 0, 1 or 2, a failure is
exactly one ``error:`` line first on stderr (``validate`` may instead report its numbered checks), and a
failed command leaves the registry and the install tree byte for byte as they were. The number of inputs
tried per command is printed at the end of the module (``pytest -s``) and written to
``$TMPDIR/expert-cli-fuzz-counts.json``.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from package_helpers import add_member, manifest_dict, tree, write_expert

from expert_cli.core import paths

pytestmark = pytest.mark.slow
COUNTS: collections.Counter[str] = collections.Counter()
# CI runs the same 25 inputs per test every time; EXPERT_FUZZ_EXAMPLES=N explores N fresh random ones.
FUZZ = settings(max_examples=int(os.environ.get("EXPERT_FUZZ_EXAMPLES", "25")), deadline=None,
                derandomize="EXPERT_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Files outside every expert folder that hostile manifests point at; an audit hook records any open of them.
OUTSIDE = Path(tempfile.mkdtemp(prefix="expert-fuzz-outside-"))
for _name in ("sql.gbnf", "prompt.pt", "adapter_model.safetensors", "train.jsonl"):
    (OUTSIDE / _name).write_bytes(b'root ::= "x"\n')
OUTSIDE_READS: list[str] = []


WATCHING = [False]  # the hook stays installed for the session (it cannot be removed): cheap when not watching


def _audit(event: str, args: tuple) -> None:
    if WATCHING[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        target = os.fsdecode(args[0])
        if target.startswith(str(OUTSIDE)) or "expert-fuzz-outside-" in target:
            OUTSIDE_READS.append(target)


sys.addaudithook(_audit)
ESCAPES = [str(OUTSIDE / "sql.gbnf"), str(OUTSIDE / "prompt.pt"), str(OUTSIDE / "train.jsonl"),
           "../" * 12 + str(OUTSIDE)[1:] + "/sql.gbnf",
           "weights/" + "../" * 14 + str(OUTSIDE)[1:] + "/adapter_model.safetensors"]

# Raw JSON text a serializer would never write, spliced in where a value goes.
RAW = ["NaN", "-Infinity", "1" + "0" * 5000, "-" + "9" * 4400, "[" * 3000 + "]" * 3000,
       '{"a":' * 2000 + "1" + "}" * 2000, '"\\ud800"', '"\\udfff tail"', "1e999", '"\\u0000"']
PLAIN = [5, -1, 0, 2.5, True, False, None, "", " ", "x", "\u00df", "SS", "caf\u0065\u0301",
         "../../etc/passwd", "/etc/hostname", "C:\\x", "~/x", "a" * 300, [], {}, [5], ["x", 5], {"a": 1},
         {"": None}, 10 ** 30]
PATHS: list[tuple] = [
    (), ("name",), ("version",), ("schema_version",), ("description",), ("author",), ("base_models",),
    ("base_models", 0), ("base_models", 0, "name"), ("base_models", 0, "adapters"),
    ("base_models", 0, "adapters", 0), ("base_models", 0, "adapters", 0, "type"),
    ("base_models", 0, "adapters", 0, "r"), ("base_models", 0, "adapters", 0, "target_modules"),
    ("base_models", 0, "adapters", 0, "path"), ("training",), ("training", "config"),
    ("training", "config", "epochs"), ("training", "config", "learning_rate"), ("training", "config", "rank"),
    ("training", "config", "adapter_type"), ("training", "decoding"),
    ("training", "decoding", "stop_sequences"),
    ("training", "decoding", "grammar_file"), ("training", "decoding", "temperature"),
    ("training", "decoding", "max_new_tokens"), ("training", "dataset"), ("training", "dataset", "path"),
    ("training", "packaging_checkpoint"), ("constraints",), ("constraints", "requires"),
    ("constraints", "requires", 0), ("constraints", "incompatible_with"), ("routing",),
    ("routing", "keywords"),
    ("routing", "priority"), ("capabilities",), ("soft_prompts",), ("soft_prompts", 0),
    ("soft_prompts", 0, "path"), ("soft_prompts", 0, "tokens"), ("files",), ("integrity",),
    ("integrity", "signature"), ("integrity", "pubkey"), ("quality_metrics",),
]

json_leaf = st.one_of(st.sampled_from(PLAIN), st.sampled_from(ESCAPES), st.integers(),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)
FILE_PATHS = [p for p in PATHS if p and p[-1] in ("grammar_file", "path", "packaging_checkpoint")]
mutation = st.one_of(
    st.tuples(st.sampled_from(PATHS), st.one_of(json_value, st.sampled_from(RAW).map(lambda r: ("RAW", r)))),
    st.tuples(st.sampled_from(FILE_PATHS), st.sampled_from(ESCAPES)))


def mutate(document: dict[str, Any], mutations: list[tuple[tuple, Any]]) -> bytes:
    """The document as JSON text with each path set to a value (raw text spliced in for the RAW ones);
    the empty path replaces the whole document."""
    data, raws = json.loads(json.dumps(document)), []
    data.setdefault("soft_prompts", [{"name": "sp", "path": "sp.pt", "tokens": 4}])
    for path, value in mutations:
        if isinstance(value, tuple) and value[:1] == ("RAW",):
            raws.append(value[1])
            value = f"__RAW_{len(raws) - 1}__"
        if path:
            _set(data, path, value)
        else:
            data = value
    text = json.dumps(data, indent=2)
    for index, raw in enumerate(raws):
        text = text.replace(f'"__RAW_{index}__"', raw)
    return text.encode("utf-8", "surrogatepass")


def _set(data: Any, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        if isinstance(data, dict):
            data = data.setdefault(part, {} if not isinstance(part, int) else [])
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return
    last = path[-1]
    if isinstance(data, dict):
        data[last] = value
    elif isinstance(data, list) and isinstance(last, int):
        data[last:last + 1] = [value]


def _state() -> tuple[bytes | None, list[str], list[str]]:
    registry = paths.registry_path()
    return (registry.read_bytes() if registry.is_file() else None), tree(paths.experts_dir()), \
        tree(paths.trusted_keys_dir())


# EXPERT_FUZZ_TALLY=1: count violations instead of failing at the first (to compare two versions of the code).
TALLY = collections.Counter() if os.environ.get("EXPERT_FUZZ_TALLY") else None
FIRST: dict[str, str] = {}  # the first message of each kind of violation (tally mode)


def run_checked(cli, *args: Any, report_ok: bool = False) -> Any:
    """Run one command on hostile input and check the contract; counts it under its command words."""
    words = [str(a) for a in args[:2]]
    COUNTS[" ".join(words if words[0] in ("dataset", "trust") else words[:1])] += 1
    before, reads = _state(), len(OUTSIDE_READS)
    WATCHING[0] = True
    try:
        result = cli(*args)
    finally:
        WATCHING[0] = False
    if args[0] == "dataset":  # a dev folder's dataset may live anywhere; `dataset` reads it by design
        OUTSIDE_READS[reads:] = [path for path in OUTSIDE_READS[reads:] if not path.endswith("train.jsonl")]
    for violation, message in _violations(result, args, report_ok, before, OUTSIDE_READS[reads:]):
        if TALLY is None:
            raise AssertionError(message)
        TALLY[violation] += 1
        FIRST.setdefault(violation, message)
    return result


def _violations(result: Any, args: tuple, report_ok: bool, before: Any,
                outside: list[str]) -> Iterator[tuple[str, str]]:
    if outside:
        yield "files read outside", f"{args} opened files outside the expert folder: {outside}"
    escaped = not (result.exception is None or isinstance(result.exception, SystemExit))
    if escaped or "Traceback" in result.stderr:
        yield "tracebacks", f"{args}: {type(result.exception).__name__}: {result.exception}"[:2000]
        return
    if result.exit_code not in (0, 1, 2):
        yield "bad exit codes", f"{args}: exit code {result.exit_code}: {result.stderr}"
    if result.exit_code != 0:
        reported = report_ok and ("INVALID" in result.stdout or "problem" in result.stdout)
        lines = result.stderr.splitlines()
        if not reported and not (lines and lines[0].startswith("error: ")
                                 and sum(line.startswith("error:") for line in lines) == 1):
            yield "not one error line", f"{args}: {result.stderr!r}"
        if _state() != before:
            yield "state changed on failure", f"{args} failed and changed the registry or the install tree"


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Any:
    yield
    target = Path(tempfile.gettempdir()) / "expert-cli-fuzz-counts.json"
    target.write_text(json.dumps(dict(sorted(COUNTS.items())), indent=2))
    print("\nfuzz inputs per command:", dict(sorted(COUNTS.items())), f"(total {sum(COUNTS.values())}); "
          f"files opened outside an expert folder: {len(OUTSIDE_READS)}",
          f"; violations: {dict(TALLY or {})}", *FIRST.values())


@pytest.fixture(scope="module")
def base_package(tiny_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid unsigned package of expert-demo (with a grammar), the raw material of the package cases."""
    from expert_cli.packages.build import build_package

    root = tmp_path_factory.mktemp("fuzz-base")
    return build_package(write_expert(root / "e", tiny_adapter, rows=3), root / "base.expert").path


def _fresh(tmp_path: Path, label: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=label, dir=tmp_path))
    return folder


# -- manifests in a folder -------------------------------------------------------------------------------
@FUZZ
@given(mutations=st.lists(mutation, min_size=1, max_size=3))
def test_hostile_manifests_in_a_folder(cli, tiny_adapter: Path, tmp_path: Path, mutations) -> None:
    folder = write_expert(_fresh(tmp_path, "m-") / "e", tiny_adapter, rows=3)
    (folder / "manifest.json").write_bytes(mutate(manifest_dict("expert-demo", "0.1.0"), mutations))
    run_checked(cli, "validate", folder, report_ok=True)
    run_checked(cli, "validate", folder, "--strict", "--json", report_ok=True)
    run_checked(cli, "package", folder, "-o", folder.parent / "out.expert")
    run_checked(cli, "install", folder, "--allow-unsigned")
    run_checked(cli, "dataset", "validate", folder, report_ok=True)
    run_checked(cli, "dataset", "stats", folder)


# -- manifests inside a package ----------------------------------------------------------------------------
def _repack(base: Path, out: Path, manifest: bytes, extra: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(base, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for info in src.getmembers():
            data = manifest if info.name == "manifest.json" else src.extractfile(info).read()
            add_member(dst, info.name, data)
        for name, data in (extra or {}).items():
            add_member(dst, name, data)
    return out


@FUZZ
@given(mutations=st.lists(mutation, min_size=1, max_size=3), signed=st.booleans())
def test_hostile_manifests_in_a_package(cli, base_package: Path, tmp_path: Path, mutations, signed) -> None:
    with tarfile.open(base_package, "r:gz") as tar:
        document = json.loads(tar.extractfile("manifest.json").read())
    if signed:  # a signature block: the signed-manifest paths (canonical form, key, signature) run too
        document["integrity"] = {"pubkey": "ed25519:" + "11" * 32, "signature": "00" * 64, "publisher": "P"}
    package = _repack(base_package, _fresh(tmp_path, "p-") / "x.expert", mutate(document, mutations))
    run_checked(cli, "verify", package)
    run_checked(cli, "verify", package, "--allow-unsigned", "--json")
    run_checked(cli, "validate", package, report_ok=True)
    run_checked(cli, "install", package, "--allow-unsigned")


# -- archives that are not packages --------------------------------------------------------------------------
@FUZZ
@given(data=st.one_of(st.binary(max_size=2000),
                      st.sampled_from([b"", b"\x1f\x8b", b"\x1f\x8b\x08\x00" + b"\x00" * 20])),
       cut=st.integers(min_value=0, max_value=4000))
def test_hostile_package_bytes(cli, base_package: Path, tmp_path: Path, data: bytes, cut: int) -> None:
    folder = _fresh(tmp_path, "b-")
    raw = folder / "raw.expert"
    raw.write_bytes(data)
    truncated = folder / "cut.expert"
    truncated.write_bytes(base_package.read_bytes()[:cut])
    for package in (raw, truncated):
        run_checked(cli, "verify", package)
        run_checked(cli, "install", package, "--allow-unsigned")
        run_checked(cli, "validate", package, report_ok=True)


# -- registries -------------------------------------------------------------------------------------------
REGISTRY = {"version": "1.0", "base_models": [], "publisher_keys": {},
            "experts": [{"name": "expert-demo", "versions": [{
                "version": "0.1.0", "base_model": "builtin:tiny-qwen3", "path": "/nowhere/expert-demo/0.1.0",
                "source": "file:///nowhere/x.git#v1", "installed_at": "2026-01-01T00:00:00Z", "adapters": [],
                "capabilities": ["demo"], "dependencies": [],
                "integrity": {"trust": "trusted", "signed": True, "pubkey": "ed25519:" + "11" * 32}}]}]}
ENTRY = ("experts", 0, "versions", 0)
REGISTRY_PATHS: list[tuple] = [(), ("version",), ("experts",), ("experts", 0), ("experts", 0, "name"),
                               ("experts", 0, "versions"), ENTRY, ("base_models",), ("publisher_keys",),
                               ("publisher_keys", "expert-demo")] + [
    ENTRY + (key,) for key in ("version", "path", "source", "adapters", "capabilities", "dependencies",
                               "integrity", "installed_at")]
registry_mutation = st.tuples(st.sampled_from(REGISTRY_PATHS),
                              st.one_of(json_value, st.sampled_from(RAW).map(lambda r: ("RAW", r))))


@FUZZ
@given(mutations=st.lists(registry_mutation, min_size=1, max_size=3))
def test_hostile_registries(cli, base_package: Path, tmp_path: Path, mutations) -> None:
    registry = paths.registry_path()
    registry.parent.mkdir(parents=True, exist_ok=True)
    if registry.is_dir():
        shutil.rmtree(registry)
    text = mutate(REGISTRY, mutations)
    registry.write_bytes(text.replace(b'"soft_prompts"', b'"_sp"'))
    for args in (("list",), ("list", "-v"), ("list", "--json"), ("uninstall", "demo"), ("verify", "demo"),
                 ("update", "demo"), ("install", base_package, "--allow-unsigned"),
                 ("uninstall", "demo@0.1.0")):
        run_checked(cli, *args)


def test_a_registry_that_is_a_folder(cli, base_package: Path) -> None:
    paths.registry_path().mkdir(parents=True)
    for args in (("list",), ("uninstall", "demo"), ("install", base_package, "--allow-unsigned"),
                 ("verify", "demo")):
        result = run_checked(cli, *args)
        assert result.exit_code == 1


# -- datasets ----------------------------------------------------------------------------------------------
line = st.one_of(st.sampled_from(["{}", "[]", "null", "5", '{"messages": 5}', '{"messages": [5]}',
                                  '{"messages": [{"role": 5, "content": []}]}', '{"text": "\\ud800"}',
                                  '{"a":' * 3000 + "1" + "}" * 3000, "1" + "0" * 5000, "NaN",
                                  '{"messages": [{"role": "user", "content": "hi"}]}']),
                 st.text(max_size=40))


@FUZZ
@given(lines=st.lists(line, max_size=5), raw=st.binary(max_size=200),
       suffix=st.sampled_from([".jsonl", ".json"]))
def test_hostile_datasets(cli, tmp_path: Path, lines, raw: bytes, suffix: str) -> None:
    folder = _fresh(tmp_path, "d-")
    text_file = folder / f"rows{suffix}"
    text_file.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    binary_file = folder / f"raw{suffix}"
    binary_file.write_bytes(raw)
    for dataset in (text_file, binary_file):
        run_checked(cli, "dataset", "validate", dataset, report_ok=True)
        run_checked(cli, "dataset", "stats", dataset)


# -- key files -------------------------------------------------------------------------------------------
@FUZZ
@given(data=st.one_of(st.binary(max_size=300),
                      st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
                      st.sampled_from([b"ed25519:" + b"1" * 64, b"ed25519:zz", b"\x00" * 32,
                                       b"-----BEGIN PRIVATE KEY-----\nxx\n", b"ed25519:" + b"1" * 5000])))
def test_hostile_key_files(cli, base_package: Path, tmp_path: Path, data: bytes) -> None:
    folder = _fresh(tmp_path, "k-")
    key = folder / "k.pub"
    key.write_bytes(data)
    key.chmod(0o600)
    package = Path(shutil.copyfile(base_package, folder / "p.expert"))
    run_checked(cli, "trust", "rm", key)
    run_checked(cli, "sign", package, "--key", key)
    run_checked(cli, "trust", "add", key, "--name", "fuzz")
    paths.trusted_keys_dir().mkdir(parents=True, exist_ok=True)
    for stored in paths.trusted_keys_dir().iterdir():
        stored.unlink()


# -- a few through a real process: real stdout/stderr encodings, real exit codes --------------------------
def test_hostile_inputs_in_a_subprocess(base_package: Path, tmp_path: Path, expert_home: Path) -> None:
    import subprocess
    import sys

    with tarfile.open(base_package, "r:gz") as tar:
        document = json.loads(tar.extractfile("manifest.json").read())
    document["description"] = "__SURROGATE__"
    document["integrity"] = {"pubkey": "ed25519:" + "11" * 32, "signature": "00" * 64}
    text = json.dumps(document).replace('"__SURROGATE__"', '"\\ud800"').encode()
    surrogate = _repack(base_package, tmp_path / "s.expert", text)
    home_registry = expert_home / "expert-registry.json"
    cases = [
        (None, ["verify", str(surrogate)]),
        (None, ["install", str(surrogate), "--allow-unsigned"]),
        (b'{"experts": [], "version": ' + b"9" * 5000 + b"}", ["list"]),
        (b'{"experts": [{"name": "x", "versions": [{"version": NaN}]}]}', ["list", "-v"]),
        (b"[" * 100000, ["uninstall", "x"]),
    ]
    for registry, argv in cases:
        COUNTS["subprocess " + argv[0]] += 1
        if registry is not None:
            home_registry.write_bytes(registry)
        before = _state()
        result = subprocess.run([sys.executable, "-m", "expert_cli", *argv], capture_output=True,
                                env={**os.environ, "PYTHONIOENCODING": "utf-8"}, timeout=120, check=False)
        stderr = result.stderr.decode("utf-8", "replace")
        assert result.returncode in (1, 2), (argv, result.returncode, stderr)
        assert "Traceback" not in stderr and stderr.startswith("error: "), (argv, stderr)
        assert sum(line.startswith("error:") for line in stderr.splitlines()) == 1
        assert _state() == before
