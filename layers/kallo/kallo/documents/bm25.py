"""BM25 ranking of passages, in pure Python (no numpy: it would cost a function's cold start more than
the ranking itself costs).

One `Index` per data source, built once when the data source is processed and stored next to it as
compact JSON (per passage: offsets, text, term frequencies and length; optionally its embedding).
`search` ranks the passages of several indexes together with IDF computed over their union, so that a
term rare in one data source but common across the convo's data sources weighs what it should.
When a query vector is given and indexes carry vectors, the BM25 ranking and the cosine ranking are
fused by reciprocal rank (RRF), which needs no score calibration between the two.

Terms: Unicode words, lowercased, accents folded (cafe = café), a small English stop-word list dropped,
and light suffix stemming (plurals, -ing, -ed, a final -e) so that invoices / invoice / invoicing /
invoiced are one term.
"""

from __future__ import annotations

import heapq
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from kallo.documents.passages import Passage

K1 = 1.2
B = 0.75
# Reciprocal rank fusion constant (Cormack et al. 2009).
RRF_K = 60
FORMAT_VERSION = 1
# Embeddings are stored with this many decimals: more precision changes no ranking, only size.
VECTOR_DECIMALS = 5

_STOP_WORDS = """a about above after again all am an and any are as at be been being below between both but
    by can could did do does doing down during each few for from further had has have having he her here
    hers him his how i if in into is it its itself just me more most my no nor not of off on once only
    or other our ours out over own same she should so some such than that the their theirs them then
    there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"\w+")


def terms(text: str) -> list[str]:
    """The index terms of `text`, in order (repeats kept)."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return [stem(word) for word in _WORD.findall(folded) if word not in STOP_WORDS]


def stem(word: str) -> str:
    """A light English stemmer: strips one inflection (-ies, -es/-s, -ing, -ed), undoubles a final
    consonant left by it (shipped -> ship) and drops a final -e, so every form of a word meets."""
    if len(word) <= 3 or not word.isalpha():
        return word
    stripped = False
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    elif word.endswith("ing") and len(word) >= 6:
        word, stripped = word[:-3], True
    elif word.endswith("eed"):
        word = word[:-1]
    elif word.endswith("ed") and len(word) >= 5:
        word, stripped = word[:-2], True
    if stripped and len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeioulsz":
        word = word[:-1]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


@dataclass(frozen=True)
class Hit:
    source_id: str
    passage: Passage
    score: float


class Index:
    """The BM25 statistics of one data source's passages (and optionally their embeddings)."""

    def __init__(
        self,
        passages: list[Passage],
        frequencies: list[dict[str, int]],
        lengths: list[int],
        vectors: list[list[float]] | None = None,
    ) -> None:
        self.passages = passages
        self.frequencies = frequencies
        self.lengths = lengths
        self.vectors = vectors

    @classmethod
    def build(cls, passages: list[Passage], vectors: list[list[float]] | None = None) -> Index:
        if vectors is not None and len(vectors) != len(passages):
            raise ValueError(f"{len(vectors)} vectors for {len(passages)} passages")
        counts = [Counter(terms(p.text)) for p in passages]
        return cls(list(passages), [dict(c) for c in counts], [c.total() for c in counts], vectors)

    def to_bytes(self) -> bytes:
        document: dict = {
            "version": FORMAT_VERSION,
            "passages": [
                {"s": p.start, "e": p.end, "t": p.text, "f": f, "n": n}
                for p, f, n in zip(self.passages, self.frequencies, self.lengths, strict=True)
            ],
        }
        if self.vectors is not None:
            document["vectors"] = [[round(x, VECTOR_DECIMALS) for x in v] for v in self.vectors]
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Index:
        document = json.loads(data)
        if document.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown index format {document.get('version')!r}")
        rows = document["passages"]
        return cls(
            [Passage(r["s"], r["e"], r["t"]) for r in rows],
            [r["f"] for r in rows],
            [r["n"] for r in rows],
            document.get("vectors"),
        )

    @cached_property
    def postings(self) -> dict[str, list[tuple[int, int]]]:
        """term -> [(passage number, frequency)], built on first search."""
        postings: dict[str, list[tuple[int, int]]] = {}
        for number, frequencies in enumerate(self.frequencies):
            for term, frequency in frequencies.items():
                postings.setdefault(term, []).append((number, frequency))
        return postings


def search(
    indexes: Mapping[str, Index], query: str, *, k: int = 4, query_vector: list[float] | None = None
) -> list[Hit]:
    """The k passages of `indexes` (data source id -> index) that best match `query`, best first.

    Passages sharing no term with the query are never returned by BM25 alone; with `query_vector`,
    passages of indexes carrying vectors also compete by cosine similarity (RRF of both rankings)."""
    lexical = _bm25(indexes, query)
    if query_vector is not None and any(index.vectors for index in indexes.values()):
        semantic = _cosine(indexes, query_vector)
        fused: dict[tuple[str, int], float] = {}
        for ranking in (lexical, semantic):
            for rank, (key, _) in enumerate(ranking, start=1):
                fused[key] = fused.get(key, 0.0) + 1 / (RRF_K + rank)
        scored = list(fused.items())
    else:
        scored = lexical
    best = heapq.nsmallest(k, scored, key=lambda item: (-item[1], item[0]))
    return [Hit(source, indexes[source].passages[number], score) for (source, number), score in best]


def _bm25(indexes: Mapping[str, Index], query: str) -> list[tuple[tuple[str, int], float]]:
    """Every passage with a positive BM25 score, best first (ties in source and passage order)."""
    query_terms = set(terms(query))
    count = sum(len(index.passages) for index in indexes.values())
    if not query_terms or not count:
        return []
    average = sum(sum(index.lengths) for index in indexes.values()) / count or 1.0
    frequencies = {t: sum(len(index.postings.get(t, ())) for index in indexes.values()) for t in query_terms}
    scores: dict[tuple[str, int], float] = {}
    for term, df in frequencies.items():
        if not df:
            continue
        idf = math.log(1 + (count - df + 0.5) / (df + 0.5))
        for source, index in indexes.items():
            for number, tf in index.postings.get(term, ()):
                norm = K1 * (1 - B + B * index.lengths[number] / average)
                key = (source, number)
                scores[key] = scores.get(key, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
    return sorted(((key, s) for key, s in scores.items() if s > 0), key=lambda item: (-item[1], item[0]))


def _cosine(indexes: Mapping[str, Index], query_vector: list[float]) -> list[tuple[tuple[str, int], float]]:
    """Passages with vectors by cosine similarity to the query (positive only), best first."""
    query_norm = math.sqrt(sum(x * x for x in query_vector)) or 1.0
    scored = []
    for source, index in indexes.items():
        for number, vector in enumerate(index.vectors or ()):
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            similarity = sum(a * b for a, b in zip(query_vector, vector, strict=True)) / (norm * query_norm)
            if similarity > 0:
                scored.append(((source, number), similarity))
    return sorted(scored, key=lambda item: (-item[1], item[0]))
