"""Cold start (issue 13): what each function imports, pinned. Every handler module of template.yaml is
imported in a fresh interpreter, as Lambda's init phase does, and the modules it must not load are
checked: a function imports only what it uses, so an import that slips in fails here, not only in
`bench/cold_start.py` (which times them against a bare handler; modules are asserted, not times).

- boto3 and s3transfer nowhere: any boto3 import runs its package's __init__, which loads s3transfer;
  clients are made on first use (`kallo.aws`), and so are boto3's DynamoDB codec (`kallo.store.table`)
  and Powertools' idempotency layer (`kallo.jobs`).
- pypdf, llama_cpp, the X-Ray SDK, email-validator, pydantic.networks, pydantic-settings nowhere:
  loaded on first use (the PDF parser, the embedded model, `kallo.tracing`, the first email address)
  or not at all.
- The HTML parser and text extraction only in the data-source worker; the retrieval index only where
  answers are grounded or documents indexed; Starlette and Mangum only in the ASGI functions
  (the surfaces, docs, console), the surfaces only in theirs; PyJWT and cryptography only where
  credentials are checked or tokens minted (a surface loads them at its first caller with Kallo's own
  credentials).
- API models are built when first used, not at import (`defer_build`): see the last test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatch

import pytest

from bench.cold_start import ROOT, environment, handler_modules

MODULES = handler_modules()
NOWHERE = (
    "boto3",
    "s3transfer",
    "pypdf",
    "llama_cpp",
    "aws_xray_sdk",
    "email_validator",
    "pydantic.networks",
    "pydantic_settings",
    "uvicorn",
    "aws_lambda_powertools.utilities.idempotency",
)
# A module (and its submodules) → the handler modules (glob patterns) that may load it.
ONLY_IN = {
    "html.parser": ("workers.data_source",),
    "kallo.documents.extract": ("workers.data_source",),
    "kallo.documents.bm25": (
        "workers.data_source",
        "workers.llm_step",
        "data_sources.generate_summary",
        "steps.get_step_suggestions",
        "compat.*",
    ),
    "kallo.documents": (
        "workers.data_source",
        "workers.llm_step",
        "data_sources.*",
        "steps.get_step_suggestions",
        "compat.*",
    ),
    # The ASGI functions: the surfaces, the API documents (docs.app) and the console (console.app).
    "starlette": ("compat.*", "docs.*", "console.*"),
    "mangum": ("compat.*", "docs.*", "console.*"),
    "kallo.surfaces": ("compat.*",),
    "kallo.services.replies": (
        "workers.llm_step",
        "workers.data_source",
        "data_sources.generate_summary",
        "steps.get_step_suggestions",
        "compat.*",
    ),
    "jwt": ("auth.authorizer", "auth.create_access_token"),
    "cryptography": ("auth.authorizer", "auth.create_access_token"),
}
_PROBE = "import importlib, json, sys; importlib.import_module(sys.argv[1]); print(json.dumps(sorted(sys.modules)))"


def _probe(source: str, *arguments: str) -> list[str]:
    """The output lines of `source` run in a fresh interpreter with a function's environment."""
    run = subprocess.run(
        [sys.executable, "-c", source, *arguments],
        env=environment(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.strip().splitlines()


def _loaded(module: str) -> set[str]:
    return set(json.loads(_probe(_PROBE, module)[-1]))


@pytest.fixture(scope="module")
def import_sets() -> dict[str, set[str]]:
    """Every handler module's sys.modules after its import, two interpreters at a time."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(MODULES, pool.map(_loaded, MODULES), strict=True))


def _under(loaded: set[str], package: str) -> list[str]:
    return sorted(m for m in loaded if m == package or m.startswith(package + "."))


def test_every_function_of_the_template_is_checked() -> None:
    assert len(MODULES) > 70
    assert {"auth.authorizer", "workers.llm_step", "workers.data_source", "ws.connect", "compat.dify"} <= set(
        MODULES
    )


@pytest.mark.parametrize("module", MODULES)
def test_a_function_imports_only_what_it_uses(import_sets: dict[str, set[str]], module: str) -> None:
    loaded = import_sets[module]
    assert module in loaded  # the probe imported it
    for package in NOWHERE:
        assert not _under(loaded, package), f"{module} imports {_under(loaded, package)[:3]}"
    for package, allowed in ONLY_IN.items():
        if not any(fnmatch(module, pattern) for pattern in allowed):
            assert not _under(loaded, package), f"{module} imports {_under(loaded, package)[:3]}"


_UNBUILT = """
import importlib, json, sys
for module in sys.argv[1:]:
    importlib.import_module(module)
from kallo.models.common import ApiModel, ResponseModel
from kallo.models.ws import Envelope, ServerMessage

def every(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from every(sub)

models = [m for base in (ApiModel, ResponseModel, ServerMessage) for m in every(base)] + [Envelope]
print(json.dumps(sorted(f"{m.__module__}.{m.__qualname__}" for m in models if m.__pydantic_complete__)))
print(len(models))
"""


def test_no_api_model_is_built_at_import() -> None:
    """Building a model's validator costs about 1 ms of CPU; a function imports the models of its whole
    area (and the WebSocket messages) but validates one or two, which are built at their first use."""
    modules = ["compat.dify", "compat.gloo", "compat.pieces", "ws.convo_new_step", "users.update_user"]
    built, count = _probe(_UNBUILT, *modules)[-2:]
    assert int(count) > 40
    assert json.loads(built) == []
