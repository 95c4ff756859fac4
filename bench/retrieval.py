"""Retrieval quality of the documents library (kallo.documents): three fictional documents (an employee
handbook, a home battery manual, a product team's meeting notes; tests/fixtures/documents/), each
extracted, split into passages and indexed as its own data source, then searched together as a convo
with all three attached would be. For each question, the fact that answers it is a string that a
retrieved passage must contain.

    python -m bench.retrieval [--k 4]

Prints hit@1, hit@3 and MRR (over the top k) for BM25 alone, the questions that missed, the time to
build the indexes and the median time of a search. Everything but the timings is deterministic.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "kallo")]

from kallo.documents import extract, passages  # noqa: E402
from kallo.documents.bm25 import Index, search  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "documents"
DOCUMENTS = {"handbook": "handbook.md", "manual": "battery-manual.md", "notes": "meeting-notes.md"}

# (question, data source, a string of the passage that answers it). Questions are worded as a user
# would ask them, not copied from the text.
QUESTIONS: list[tuple[str, str, str]] = [
    (
        "How many days of paid vacation do employees get each year?",
        "handbook",
        "27 days of paid annual holiday",
    ),
    ("Until when can I use vacation days carried over from last year?", "handbook", "used by 31 March"),
    ("When do I need a doctor's note if I am sick?", "handbook", "from the eighth day on"),
    ("How much daily allowance do I get when travelling for work?", "handbook", "per diem) of 45 euros"),
    ("Should I fly or take the train for short business trips?", "handbook", "600 kilometres"),
    ("What is the deadline for submitting expense claims?", "handbook", "within 60 days"),
    ("Which password manager does the company use?", "handbook", "Vaultkeep"),
    ("How big is my yearly training budget?", "handbook", "1,200 euros per year"),
    ("How many days a week can I work from home?", "handbook", "up to three days a"),
    ("What are the core hours when everyone must be available?", "handbook", "10:00 to 15:00"),
    ("What is the maximum value of a gift I can accept from a supplier?", "handbook", "up to 50 euros"),
    ("How much of my salary is paid during parental leave?", "handbook", "90% of your salary"),
    ("What is the usable capacity of the larger battery model?", "manual", "13.5 kWh"),
    ("How do I pair the gateway with the mobile app?", "manual", "for 5 seconds"),
    ("What does error code E07 mean?", "manual", "E07, fan failure"),
    ("What temperature range can the battery operate in?", "manual", "-10 °C to 45 °C"),
    ("How long is the battery warranty?", "manual", "10 years or 6,000 full cycles"),
    ("At what time are firmware updates installed?", "manual", "02:00 local time"),
    ("How much free space is needed around the battery when mounting it?", "manual", "at least 30 cm"),
    ("What is the default backup reserve kept for power outages?", "manual", "by default 20%"),
    ("What should I do with the battery at the end of its life?", "manual", "takes back its"),
    ("What budget was approved for the beta program?", "notes", "18,000 euros for the beta"),
    ("When is the product launch now planned?", "notes", "moved from 30 April to 14 May"),
    ("Who is responsible for the pricing page?", "notes", "Marta owns the pricing page"),
    ("What was the churn rate in February?", "notes", "Churn was 3.1% in February"),
    ("How many support engineers will be hired?", "notes", "hiring two support engineers"),
    ("Which layout was dropped from the roadmap?", "notes", "Android tablet layout is dropped"),
    ("How much does the Starter plan cost?", "notes", "49 euros per month"),
    ("Which company did the security test of the API?", "notes", "Corvid Security"),
    ("When does the feature freeze begin?", "notes", "feature freeze on 29 April"),
]


def build() -> dict[str, Index]:
    indexes = {}
    for source, name in DOCUMENTS.items():
        text = extract.text_of((CORPUS / name).read_bytes(), "text/markdown")
        indexes[source] = Index.build(passages.split(text))
    return indexes


def rank_of(indexes: dict[str, Index], question: str, source: str, fact: str, k: int) -> int | None:
    """The 1-based rank of the first hit from `source` containing `fact`, or None if none of the top k."""
    for rank, hit in enumerate(search(indexes, question, k=k), start=1):
        if hit.source_id == source and fact in hit.passage.text:
            return rank
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=4, help="passages retrieved per question (as the LLM step)")
    k = parser.parse_args().k

    started = time.perf_counter()
    indexes = build()
    build_ms = (time.perf_counter() - started) * 1000
    for source, index in indexes.items():
        words = sum(len(p.text.split()) for p in index.passages)
        print(f"{source:9} {len(index.passages):3} passages ({words} words, overlap included)")

    ranks, timings = [], []
    for question, source, fact in QUESTIONS:
        started = time.perf_counter()
        ranks.append(rank_of(indexes, question, source, fact, k))
        timings.append((time.perf_counter() - started) * 1000)
    count = len(QUESTIONS)
    hit_at = {n: sum(1 for r in ranks if r is not None and r <= n) / count for n in (1, 3)}
    mrr = sum(1 / r for r in ranks if r) / count
    print(f"\nBM25 over {count} questions, top {k}:")
    print(f"  hit@1 {hit_at[1]:.2f}   hit@3 {hit_at[3]:.2f}   MRR@{k} {mrr:.3f}")
    print(f"  index build {build_ms:.1f} ms (extract + split + index, 3 documents)")
    print(f"  search median {statistics.median(timings):.2f} ms, max {max(timings):.2f} ms")
    misses = [(q, r) for (q, _, _), r in zip(QUESTIONS, ranks, strict=True) if r != 1]
    if misses:
        print("\nnot first:")
        for question, rank in misses:
            print(f"  {'-' if rank is None else rank}  {question}")


if __name__ == "__main__":
    main()
