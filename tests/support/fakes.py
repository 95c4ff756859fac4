"""Fake handler modules for the local gateways' tests: Python source written to a directory and made
importable for the duration of a test module."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType


@contextmanager
def importable_module(directory: Path, name: str, source: str) -> Iterator[ModuleType]:
    (directory / f"{name}.py").write_text(source)
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop(name, None)
