"""Documents: from uploaded bytes to passages a question can be answered from, with citations.

The pipeline a data source goes through (`services.ingest` drives it, `services.summaries` and the
LLM step read its result):

1. `sniff.detect`: the media type comes from the bytes, never from the client's name or header alone,
   so an executable called `report.pdf` (or `%PDF-` in front of a zip) is refused and a PDF called
   `notes.txt` is read as a PDF.
2. `extract.bounded_text_of`: the plain text of the document (pypdf for PDF, the standard library's
   HTML parser for HTML), read in a child process bound in CPU, memory and time (`bounded`);
   citations point at offsets in this text, so it is what gets stored.
3. `passages.split`: overlapping passages of about 800 characters cut on paragraph and sentence
   boundaries, each with its offsets in the text.
4. `bm25.Index`: a BM25 index over the passages, serialised to compact JSON next to the original;
   `bm25.search` ranks passages of several data sources at once (IDF over their union).
5. `quotes.best_sentence`: the sentence of a retrieved passage that best supports a given text, so a
   citation quotes a sentence rather than a whole passage.

Ranking is lexical (BM25) by default: it needs no model, no network call and no numpy (cold starts
stay small), it is deterministic, and on the short factual questions users ask about their own files
it does well because answers share rare words (names, codes, figures) with the question. Setting
`KALLO_EMBEDDING_MODEL` adds embeddings (`embeddings.embed`), fused with BM25 by reciprocal rank.
"""

from __future__ import annotations

# The media types a data source may have, in the order the API documents them.
ALLOWED_TYPES = (
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
    "text/html",
    "application/pdf",
)
