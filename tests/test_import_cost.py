"""The CLI starts in a fraction of a second: importing it (and rendering help) loads no ML stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "peft", "trl", "datasets", "xgrammar", "accelerate", "safetensors")

PROBE = """
import json, sys
{body}
heavy = {heavy!r}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))
"""


def heavy_modules_after(body: str) -> list[str]:
    code = PROBE.format(body=body, heavy=HEAVY)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["expert_cli", "expert_cli.cli"])
def test_import_loads_no_ml_stack(module: str):
    assert heavy_modules_after(f"import {module}") == []


@pytest.mark.parametrize("argv", [["--help"], ["list", "--json"], ["validate", "--help"]])
def test_running_light_commands_loads_no_ml_stack(argv: list[str]):
    body = (
        "import contextlib, io\n"
        "from expert_cli.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        app({argv!r})\n    except SystemExit:\n        pass\n"
    )
    assert heavy_modules_after(body) == []


def test_help_skips_typer_rich_formatter():
    """`--help` is plain text: typer's rich formatter would pull rich.markdown and pygments (~40 ms)."""
    code = (
        "import contextlib, io, json, sys\n"
        "from expert_cli.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        app(['--help'])\n    except SystemExit:\n        pass\n"
        "print(json.dumps(sorted(m for m in ('typer.rich_utils', 'rich.markdown', 'pygments') if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
