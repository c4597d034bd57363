"""Chunking: sections never mix, chunks stay under the token limit, overlap carries context."""

from __future__ import annotations

import itertools

from rag.chunking import chunk_blocks, count_tokens
from rag.parsing import Block


def _sentences(prefix: str, n: int) -> str:
    return " ".join(f"{prefix} sentence number {i} talks about topic {i}." for i in range(n))


def test_a_heading_starts_a_new_chunk_and_names_its_path():
    blocks = [
        Block("heading", "Handbook", level=1),
        Block("text", "Welcome."),
        Block("heading", "Leave", level=2),
        Block("text", "Paid leave is 25 days."),
        Block("heading", "Sick leave", level=3),
        Block("text", "Call in sick before nine."),
        Block("heading", "Expenses", level=2),
        Block("text", "Submit receipts monthly."),
    ]
    chunks = chunk_blocks(blocks, title="Handbook", max_tokens=200, overlap=20)
    assert [(c.title, c.text) for c in chunks] == [
        ("Handbook", "Welcome."),
        ("Handbook > Leave", "Paid leave is 25 days."),
        ("Handbook > Leave > Sick leave", "Call in sick before nine."),
        ("Handbook > Expenses", "Submit receipts monthly."),
    ]
    assert [c.position for c in chunks] == [0, 1, 2, 3]


def test_short_paragraphs_of_a_section_share_a_chunk():
    blocks = [Block("text", "One."), Block("text", "Two."), Block("text", "Three.")]
    (chunk,) = chunk_blocks(blocks, max_tokens=50, overlap=0)
    assert chunk.text == "One.\n\nTwo.\n\nThree."


def test_no_chunk_exceeds_the_token_limit():
    blocks = [Block("text", _sentences("Long", 80)), Block("text", "word " * 700)]
    chunks = chunk_blocks(blocks, max_tokens=64, overlap=16)
    assert len(chunks) > 10
    assert all(count_tokens(c.text) <= 64 for c in chunks)
    assert all(c.token_count == count_tokens(c.text) for c in chunks)


def test_consecutive_chunks_overlap_by_whole_sentences():
    chunks = chunk_blocks([Block("text", _sentences("Overlap", 30))], max_tokens=60, overlap=15)
    for before, after in itertools.pairwise(chunks):
        last_sentence = before.text.split(". ")[-1].rstrip(".")
        assert after.text.startswith(last_sentence)


def test_without_overlap_every_sentence_appears_exactly_once():
    text = _sentences("Unique", 40)
    chunks = chunk_blocks([Block("text", text)], max_tokens=50, overlap=0)
    assert " ".join(c.text for c in chunks) == text


def test_a_sentence_longer_than_a_chunk_is_split_into_overlapping_token_windows():
    words = " ".join(f"w{i}" for i in range(400))
    chunks = chunk_blocks([Block("text", words)], max_tokens=50, overlap=10)
    assert len(chunks) > 5
    assert all(c.token_count <= 50 for c in chunks)
    first, second = chunks[0].text.split(), chunks[1].text.split()
    assert set(first[-3:]) <= set(second)  # the windows share their edges
    joined = " ".join(c.text for c in chunks)
    assert all(f"w{i}" in joined for i in (0, 199, 399))


def test_the_overlap_never_crosses_a_heading():
    blocks = [
        Block("heading", "A", level=1),
        Block("text", _sentences("Alpha", 20)),
        Block("heading", "B", level=1),
        Block("text", "Beta only."),
    ]
    chunks = chunk_blocks(blocks, max_tokens=60, overlap=30)
    (last,) = [c for c in chunks if c.title == "B"]
    assert last.text == "Beta only."


def test_chunks_remember_the_page_they_start_on():
    one, two = _sentences("First", 3), _sentences("Second", 3)
    blocks = [Block("text", one, page=1), Block("text", two, page=2)]
    chunks = chunk_blocks(blocks, max_tokens=count_tokens(one) + 2, overlap=0)
    assert [(c.page, c.text) for c in chunks] == [(1, one), (2, two)]


def test_the_content_hash_changes_with_the_heading_path():
    (a,) = chunk_blocks([Block("text", "Same text.")], title="A", max_tokens=50, overlap=0)
    (b,) = chunk_blocks([Block("text", "Same text.")], title="B", max_tokens=50, overlap=0)
    (a2,) = chunk_blocks([Block("text", "Same text.")], title="A", max_tokens=50, overlap=0)
    assert a.content_hash == a2.content_hash != b.content_hash
