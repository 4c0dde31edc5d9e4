"""Without the ML stack installed, the commands that need it say which extra to install, in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BLOCKER = """
import sys, importlib.abc
BLOCKED = {blocked!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
sys.argv = ["expert-cli", *{argv!r}]
from expert_cli.cli import main
main()
"""


def run_without(blocked: set[str], argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = BLOCKER.format(blocked=sorted(blocked), argv=argv)
    env = {"EXPERT_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=REPO, check=False)


@pytest.mark.parametrize(("argv", "extra"), [
    (["chat", "--base-model", "builtin:tiny-qwen3", "--prompt", "hello"], "chat"),
    (["train", "experts/expert-sql", "--max-steps", "1"], "train"),
    (["serve", "--base-model", "builtin:tiny-qwen3", "--port", "0"], "serve"),
])
def test_a_command_without_its_extra_names_the_install(argv: list[str], extra: str, tmp_path: Path):
    done = run_without({"torch", "uvicorn"}, argv, tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("error: `") and f"the `{extra}` extra" in lines[0]
    assert lines[1] == f"hint: pip install 'expert-cli[{extra}]'"


def test_the_blocker_really_hides_the_module(tmp_path: Path):
    code = BLOCKER.format(blocked=["torch"], argv=["--help"]).replace("from expert_cli.cli import main\nmain()",
                                                                      "import torch")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr
