"""The Node tools and Swagger UI are pinned: package.json names exact versions (package-lock.json
holds the whole tree), and the Swagger UI files vendored in sites/docs/docs/static are the pinned
swagger-ui-dist's, unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = json.loads((ROOT / "package.json").read_text())
LOCK = json.loads((ROOT / "package-lock.json").read_text())
STATIC = ROOT / "sites" / "docs" / "docs" / "static"
VENDORED = ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-bundle.js.LICENSE.txt", "LICENSE", "NOTICE")


def test_the_node_tools_are_pinned_to_exact_versions_the_lock_file_holds() -> None:
    wanted = PACKAGE["devDependencies"]
    assert {"@redocly/cli", "@asyncapi/cli", "swagger-ui-dist"} <= set(wanted)
    for name, version in wanted.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (name, version)
        assert LOCK["packages"][f"node_modules/{name}"]["version"] == version, name


def test_the_vendored_swagger_ui_is_the_pinned_one() -> None:
    version = PACKAGE["devDependencies"]["swagger-ui-dist"]
    assert f"**{version}**" in (STATIC / "README.md").read_text()
    installed = ROOT / "node_modules" / "swagger-ui-dist"
    if not installed.exists():
        pytest.skip("node_modules is not installed (make test installs it before pytest)")
    assert json.loads((installed / "package.json").read_text())["version"] == version
    for name in VENDORED:
        assert (STATIC / name).read_bytes() == (installed / name).read_bytes(), name
