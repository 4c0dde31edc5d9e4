"""Makes `scripts/demo_base` importable as the package `demo_base` for the tests in this folder.

`scripts/` is not on `sys.path` (STYLE: tests do not reach it that way): the package is loaded here from its
own folder, by file path, under the name `scripts/build_demo_base.py` imports it by, so its relative imports
work and the tests import it by name.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DEMO_BASE = Path(__file__).resolve().parents[2] / "scripts" / "demo_base"


def load_package(name: str, folder: Path) -> ModuleType:
    """The package in ``folder`` imported as ``name`` (its submodules then import by name as usual)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


load_package("demo_base", DEMO_BASE)
