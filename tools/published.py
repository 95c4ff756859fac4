"""Where a generated API document is published: docs/<name> in the repository, and a copy in the
documents function's package (sites/docs/docs/documents/<name>), which `sam build` ships (the function's
CodeUri is sites/docs/, so docs/ itself never reaches Lambda)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGED = ROOT / "sites" / "docs" / "docs" / "documents"


def paths(name: str) -> list[Path]:
    return [DOCS / name, PACKAGED / name]


def write(name: str, text: str) -> None:
    for path in paths(name):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")


def stale(name: str, text: str) -> list[str]:
    """The published copies of `name` that differ from `text` (what the generator would write now)."""
    return [
        str(path.relative_to(ROOT)) for path in paths(name) if not path.exists() or path.read_text() != text
    ]
