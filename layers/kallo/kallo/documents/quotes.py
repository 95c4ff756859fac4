"""Quotes: the sentence of a retrieved passage that supports a given text (an answer, a summary's
sentence), so that a citation shows a sentence the reader can check rather than a whole passage.

Sentences end at sentence punctuation (see `passages.sentence_breaks`), at paragraph breaks and before
list items; single line breaks inside a paragraph do not end one, since PDF text breaks lines wherever
the page did.
"""

from __future__ import annotations

import re

from kallo.documents.bm25 import terms
from kallo.documents.passages import Passage, sentence_breaks

# A line that starts a list item: "- ", "* ", "• ", "1. ", "2) ".
_LIST_ITEM = re.compile(r"\n[^\S\n]*(?:[-*•]|\d{1,3}[.)])[^\S\n]")


def sentences(passage: Passage) -> list[Passage]:
    """The sentences of `passage`, with offsets in the same text as the passage's."""
    text = passage.text
    breaks = set(sentence_breaks(text)) | {m.start() + 1 for m in _LIST_ITEM.finditer(text)}
    found = []
    for start, end in zip([0, *sorted(breaks)], [*sorted(breaks), len(text)], strict=True):
        chunk = text[start:end]
        stripped = chunk.strip()
        if stripped:
            offset = passage.start + start + len(chunk) - len(chunk.lstrip())
            found.append(Passage(offset, offset + len(stripped), stripped))
    return found


def best_sentence(passage: Passage, text: str) -> Passage:
    """The sentence of `passage` sharing the most distinct terms with `text` (the first such one on a
    tie; the first sentence when none shares any)."""
    wanted = set(terms(text))
    candidates = sentences(passage) or [passage]
    return max(candidates, key=lambda sentence: len(wanted.intersection(terms(sentence.text))))
