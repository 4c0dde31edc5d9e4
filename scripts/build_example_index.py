#!/usr/bin/env python3
"""Build the example index of the reference experts from their signed packages, so they install by name.

    .venv/bin/python scripts/build_example_index.py [--packages dist] [--out dist/reference-index]
    .venv/bin/expert-cli index add reference dist/reference-index
    .venv/bin/expert-cli install sql            # or sql@0.1.0, neo4j@^0.1, ...

Every signed ``*.expert`` file in ``--packages`` (the quickstart writes them to ``dist/``) is published with
``expert-cli publish`` into a Git repository at ``--out`` (created with a ``config.json`` when missing); each
entry points at its package's ``file://`` URL. Publishing the same bytes again changes nothing, so the script
can run after every quickstart; a rebuilt package of an already published version is refused (bump the
version). Unsigned packages are skipped (an index lists signed packages only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IDENTITY = ["-c", "user.name=expert-cli", "-c", "user.email=expert-cli@localhost"]


def create_index(out: Path, name: str) -> None:
    """A Git repository with the index's ``config.json`` committed (nothing when ``out`` already is one)."""
    if (out / "config.json").is_file() and (out / ".git").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    config = {"name": name, "format": 1, "description": "The reference experts of expert-cli, built locally."}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(out)], check=True)
    subprocess.run(["git", "-C", str(out), "add", "config.json"], check=True)
    subprocess.run(["git", *IDENTITY, "-C", str(out), "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m",
                    f"index {name}"], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=Path, default=ROOT / "dist", help="folder of signed .expert files")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "reference-index", help="the index repository")
    parser.add_argument("--name", default="reference", help="the index's name in its config.json")
    args = parser.parse_args()
    from expert_cli.core.errors import ExpertError, SignatureError
    from expert_cli.sdk.marketplace import publish

    packages = sorted(args.packages.glob("*.expert"))
    if not packages:
        print(f"error: no .expert files in {args.packages}; run scripts/quickstart.sh first", file=sys.stderr)
        return 1
    create_index(args.out, args.name)
    published = 0
    for package in packages:
        try:
            result = publish(package, args.out)
        except SignatureError as exc:
            print(f"skipped {package.name}: {exc.message}", file=sys.stderr)
            continue
        except ExpertError as exc:
            print(f"error: {package.name}: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
            return 1
        published += result.status == "published"
        print(f"{result.status} {result.name}@{result.version} ({result.file})", file=sys.stderr)
    print(f"{published} new entries in {args.out}; next: expert-cli index add reference {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
