"""Write the merged OpenAPI document of every REST function to docs/openapi.json
(`python -m tools.openapi`); a test fails when the committed document drifts from the code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "openapi.json"


def render() -> str:
    for path in (ROOT / "functions", ROOT / "layers" / "kallo"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from kallo.settings import get_settings
    from local import openapi, runtime, template

    loaded = template.load()
    document, missing = openapi.build_document(
        template.rest_routes(loaded), runtime.load_functions(loaded), get_settings().version
    )
    if missing:
        raise SystemExit(f"handlers that cannot be imported: {', '.join(missing)}")
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def main() -> None:
    DOCUMENT.write_text(render())
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
