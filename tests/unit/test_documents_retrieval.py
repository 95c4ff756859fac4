"""Passages, BM25 ranking and quotes (kallo.documents.passages / bm25 / quotes)."""

import json
from itertools import pairwise

import pytest

from kallo.documents import bm25, passages
from kallo.documents.bm25 import Index, search, terms
from kallo.documents.passages import Passage, split
from kallo.documents.quotes import best_sentence, sentences

SENTENCES = [
    "The harbour master inspects every hull before the season opens.",
    "Mooring fees are paid at the office by the east pier.",
    "Dr. Ortega runs the sailing school on Saturdays.",
    "Visitors may anchor in the bay for at most three nights.",
    "Fuel is sold from 8 a.m. until sunset, except on public holidays.",
    "Invoices for winter storage are sent in October.",
]


def long_text(paragraphs: int = 12) -> str:
    return "\n\n".join(" ".join(SENTENCES[(p + n) % 6] for n in range(p % 4 + 3)) for p in range(paragraphs))


# -- passages ------------------------------------------------------------------------------------------


def test_passages_point_at_their_text_and_cover_it_with_overlap():
    text = long_text()
    found = split(text)
    assert len(found) > 3
    assert all(text[p.start : p.end] == p.text and p.text == p.text.strip() and p.text for p in found)
    assert all(passages.MIN <= len(p.text) <= passages.MAX for p in found[:-1])
    assert found[0].start == 0 and found[-1].end == len(text)
    for before, after in pairwise(found):
        assert before.start < after.start < before.end  # overlapping, moving forward
        assert 20 <= before.end - after.start <= 200


def test_passages_are_cut_at_paragraphs_then_sentences():
    text = long_text()
    found = split(text)
    for passage in found[:-1]:
        following = text[passage.end : passage.end + 2]
        assert following == "\n\n" or passage.text.endswith(".")
    # The overlap starts a sentence (a capital after a sentence end), not in the middle of a word.
    assert all(p.text[0].isupper() for p in found)


def test_text_without_boundaries_is_still_cut_and_short_text_is_one_passage():
    assert [(p.start, p.end) for p in split("x" * 2500)] == [
        (0, 800),
        (680, 1480),
        (1360, 2160),
        (2040, 2500),
    ]
    assert split("  Only this.  ") == [Passage(2, 12, "Only this.")]
    assert split(" \n\n ") == []


def test_sentence_breaks_skip_abbreviations_initials_and_list_numbers():
    text = "Dr. Ortega met J. Smith, e.g. at noon. Then they left!\n2. Second item. Done"
    starts = [text[b : b + 4] for b in passages.sentence_breaks(text)]
    assert starts == ["Then", "2. S", "Done"]


# -- terms ---------------------------------------------------------------------------------------------


def test_terms_are_folded_stemmed_and_free_of_stop_words():
    assert terms("The Invoices, invoice; INVOICING and invoiced!") == ["invoic"] * 4
    assert terms("Café cafe policies policy shipped ship") == [
        "caf",
        "caf",
        "policy",
        "policy",
        "ship",
        "ship",
    ]
    assert terms("was it 2024 or Q3?") == ["2024", "q3"]


# -- BM25 ----------------------------------------------------------------------------------------------


def index_of(*texts: str) -> Index:
    offsets, found = 0, []
    for text in texts:
        found.append(Passage(offsets, offsets + len(text), text))
        offsets += len(text) + 2
    return Index.build(found)


def test_the_passage_that_answers_the_question_ranks_first():
    index = index_of(*SENTENCES)
    hits = search({"harbour": index}, "When are the invoices for storing boats over winter sent?", k=3)
    assert hits[0].passage.text == SENTENCES[5] and hits[0].source_id == "harbour"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert search({"harbour": index}, "How many nights can visitors anchor?")[0].passage.text == SENTENCES[3]


def test_passages_sharing_no_term_are_never_returned():
    index = index_of(*SENTENCES)
    assert search({"harbour": index}, "quantum chromodynamics") == []
    assert search({"harbour": index}, "the of and") == []
    assert len(search({"harbour": index}, "harbour fuel", k=10)) == 2
    assert search({}, "harbour") == []


def test_idf_is_computed_over_the_union_of_the_indexes():
    ferry_texts = [f"The ferry leaves at {h} o'clock." for h in range(6, 12)]
    route_texts = [f"A timetable for route {n} is posted." for n in range(5)] + ["The red ferry is late."]
    ferries, routes = index_of(*ferry_texts), index_of(*route_texts)
    # Searching two sources scores exactly as one index of all their passages would.
    merged = index_of(*ferry_texts, *route_texts)
    query = "late ferry timetable"
    together = search({"ferries": ferries, "routes": routes}, query, k=20)
    as_one = search({"all": merged}, query, k=20)
    assert [(h.passage.text, round(h.score, 9)) for h in together] == [
        (h.passage.text, round(h.score, 9)) for h in as_one
    ]
    assert together[0] == bm25.Hit("routes", routes.passages[-1], together[0].score)
    # ... which is not how either source scores alone: "ferry" is common in one, rare in the other.
    alone = search({"ferries": ferries}, query, k=20)
    assert {h.score for h in alone}.isdisjoint(h.score for h in together)


def test_an_index_round_trips_through_compact_json():
    index = Index.build(split(long_text()), vectors=None)
    data = index.to_bytes()
    assert b": " not in data and json.loads(data)["version"] == bm25.FORMAT_VERSION
    again = Index.from_bytes(data)
    assert again.passages == index.passages and again.frequencies == index.frequencies
    assert again.lengths == index.lengths and again.vectors is None
    query = "When is fuel sold?"
    assert search({"a": again}, query) == search({"a": index}, query)


def test_vectors_round_trip_rounded_and_must_match_the_passages():
    found = [Passage(0, 5, "alpha"), Passage(7, 11, "beta")]
    index = Index.from_bytes(Index.build(found, [[0.1234567, 1.0], [1.0, 0.0]]).to_bytes())
    assert index.vectors == [[0.12346, 1.0], [1.0, 0.0]]
    with pytest.raises(ValueError):
        Index.build(found, [[1.0, 0.0]])
    with pytest.raises(ValueError, match="format"):
        Index.from_bytes(b'{"version": 99, "passages": []}')


def test_a_query_vector_fuses_cosine_and_bm25_rankings():
    found = [
        Passage(0, 30, "Mooring fees are paid at the office."),
        Passage(32, 60, "Berths cost money every night."),
        Passage(62, 90, "Sailing school on Saturdays."),
    ]
    index = Index.build(found, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # Lexically only the first passage matches; semantically the second is closest.
    query = "what are the mooring fees"
    assert [h.passage for h in search({"s": index}, query)] == [found[0]]
    fused = search({"s": index}, query, query_vector=[0.1, 0.9, 0.0])
    assert [h.passage for h in fused] == [found[0], found[1]]  # RRF: 1/61+1/62 beats 1/61
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62) and fused[1].score == pytest.approx(1 / 61)
    # Without vectors in the indexes, a query vector changes nothing.
    plain = Index.build(found)
    assert search({"s": plain}, query, query_vector=[0.1, 0.9, 0.0]) == search({"s": plain}, query)


# -- quotes --------------------------------------------------------------------------------------------


def test_sentences_keep_offsets_and_split_list_items():
    text = "Intro. Rules:\n- Pay at the office. Keep it tidy\n- Leave by noon.\n\nNext paragraph"
    passage = Passage(10, 10 + len(text), text)
    found = sentences(passage)
    assert [s.text for s in found] == [
        "Intro.",
        "Rules:",
        "- Pay at the office.",
        "Keep it tidy",
        "- Leave by noon.",
        "Next paragraph",
    ]
    assert all(text[s.start - 10 : s.end - 10] == s.text for s in found)


def test_the_best_sentence_shares_most_terms_with_the_text():
    text = " ".join(SENTENCES)
    passage = Passage(100, 100 + len(text), text)
    quote = best_sentence(passage, "Dr. Ortega teaches sailing at the school on Saturdays.")
    assert quote.text == SENTENCES[2] and text[quote.start - 100 : quote.end - 100] == quote.text
    assert best_sentence(passage, "nothing in common").text == SENTENCES[0]
