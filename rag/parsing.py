"""Bytes of a document -> title and heading-aware text blocks.

Formats: plain text, Markdown (markdown-it-py), HTML (Beautiful Soup with the standard library's
parser), PDF (pypdf) and DOCX (python-docx). The format comes from the content type, else the
file name's extension, else the first bytes. Whatever cannot be read raises
:class:`DocumentParseError` with a reason a person can act on; the caller records it on the
Document, so a failed document is reported, never dropped.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rag.errors import DocumentParseError

BlockKind = Literal["heading", "text", "code"]


@dataclass(frozen=True)
class Block:
    """One heading, paragraph (list item, table row) or code block, in reading order."""

    kind: BlockKind
    text: str
    level: int = 0  # 1-6 for headings
    page: int | None = None  # 1-based, PDFs only

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, 0)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Block:
        return cls(
            kind=data["kind"], text=data["text"], level=data.get("level", 0), page=data.get("page")
        )


@dataclass
class ParsedDocument:
    title: str = ""
    blocks: list[Block] = field(default_factory=list)
    format: str = "text"

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


FORMATS = ("text", "markdown", "html", "pdf", "docx")

_BY_MIME = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}
#: MIME types that say "some text" rather than which format; a file name says more.
_GENERIC_MIME = frozenset({"text/plain"})
_BY_EXTENSION = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}


def detect_format(data: bytes, *, content_type: str = "", name: str = "") -> str:
    """The parser to use: by a specific MIME type, then the name's extension, then a generic
    MIME type (``text/plain``, which clients and browsers send for any text file, so
    ``guide.md`` sent as ``text/plain`` is still Markdown), then by sniffing the first bytes."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in _BY_MIME and mime not in _GENERIC_MIME:
        return _BY_MIME[mime]
    match = re.search(r"\.[A-Za-z0-9]+$", name.split("?", 1)[0])
    if match and match.group(0).lower() in _BY_EXTENSION:
        return _BY_EXTENSION[match.group(0).lower()]
    if mime in _BY_MIME:
        return _BY_MIME[mime]
    head = data[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04") and b"word/" in data[:65536]:
        return "docx"
    if re.match(rb"(?i)(<!doctype html|<html|<head|<body)", head):
        return "html"
    if mime and not mime.startswith("text/") and mime not in ("application/octet-stream", ""):
        raise DocumentParseError(
            f"Unsupported content type {mime!r}; supported: text, Markdown, HTML, PDF, DOCX.",
            details={"content_type": mime},
        )
    return "text"


def parse(data: bytes, *, content_type: str = "", name: str = "") -> ParsedDocument:
    """Parse ``data``; raises :class:`DocumentParseError` when nothing readable comes out."""
    fmt = detect_format(data, content_type=content_type, name=name)
    parser = _PARSERS[fmt]
    try:
        parsed = parser(data, content_type)
    except DocumentParseError:
        raise
    except Exception as exc:  # third-party parsers raise many types on corrupt input
        raise DocumentParseError(
            f"The {fmt} document could not be read: {type(exc).__name__}: {exc}"[:500],
            details={"format": fmt},
        ) from exc
    parsed.format = fmt
    parsed.blocks = [b for b in parsed.blocks if b.text.strip()]
    if not any(b.kind != "heading" for b in parsed.blocks):
        reason = (
            "no extractable text (a scanned PDF needs OCR first)" if fmt == "pdf" else "no text"
        )
        raise DocumentParseError(f"The {fmt} document has {reason}.", details={"format": fmt})
    return parsed


# -- text ---------------------------------------------------------------------------------------

_SPACES = re.compile(r"[ \t\f\v\u00a0]+")


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def decode_text(data: bytes, content_type: str = "") -> str:
    """Text from bytes: the declared charset, else UTF-8 (BOM aware), else Windows-1252."""
    if b"\x00" in data[:8192]:
        raise DocumentParseError("The document is binary, not text.", details={"format": "text"})
    charset = re.search(r"charset=([\w.-]+)", content_type, re.IGNORECASE)
    candidates = [charset.group(1)] if charset else []
    for encoding in [*candidates, "utf-8-sig", "cp1252", "latin-1"]:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def _paragraphs(text: str, page: int | None = None) -> list[Block]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = []
    for para in re.split(r"\n\s*\n", text):
        joined = _clean(" ".join(line.strip() for line in para.split("\n")))
        if joined:
            blocks.append(Block("text", joined, page=page))
    return blocks


def _parse_text(data: bytes, content_type: str) -> ParsedDocument:
    return ParsedDocument(blocks=_paragraphs(decode_text(data, content_type)))


# -- Markdown -----------------------------------------------------------------------------------


def _inline_text(token: Any) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content or "")
    return _clean("".join(parts))


def _parse_markdown(data: bytes, content_type: str) -> ParsedDocument:
    from markdown_it import MarkdownIt

    text = decode_text(data, content_type)
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)  # YAML front matter
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    doc = ParsedDocument()
    heading_level = 0
    list_depth = 0
    row: list[str] | None = None
    for i, token in enumerate(tokens):
        kind = token.type
        if kind == "heading_open":
            heading_level = int(token.tag[1])
        elif kind in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            doc.blocks.append(Block("text", " | ".join(row)))
            row = None
        elif kind == "inline":
            content = _inline_text(token)
            if row is not None:
                row.append(content)
            elif heading_level:
                doc.blocks.append(Block("heading", content, level=heading_level))
                if heading_level == 1 and not doc.title:
                    doc.title = content
                heading_level = 0
            elif content:
                prefix = "- " if list_depth and tokens[i - 1].type == "paragraph_open" else ""
                doc.blocks.append(Block("text", prefix + content))
        elif kind in ("fence", "code_block"):
            doc.blocks.append(Block("code", token.content.rstrip("\n")))
        elif kind == "html_block":
            doc.blocks.extend(_paragraphs(re.sub(r"<[^>]+>", " ", token.content)))
    return doc


# -- HTML ---------------------------------------------------------------------------------------

_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "iframe", "head", "nav", "form"}
_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "aside", "header", "footer", "li", "ul", "ol",
    "blockquote", "dl", "dt", "dd", "figure", "figcaption", "address", "details", "summary",
    "table", "thead", "tbody", "tfoot", "caption", "hr",
}  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


class _HtmlWalker:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.buffer: list[str] = []

    def flush(self, prefix: str = "") -> None:
        text = _clean(re.sub(r"\s+", " ", "".join(self.buffer)))
        self.buffer = []
        if text:
            self.blocks.append(Block("text", prefix + text))

    def walk(self, node: Any) -> None:
        from bs4 import Comment, NavigableString, Tag

        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                self.buffer.append(str(child))
                continue
            if not isinstance(child, Tag) or child.name in _SKIP_TAGS:
                continue
            name = child.name
            if name in _HEADINGS:
                self.flush()
                text = _clean(child.get_text(" ", strip=True))
                if text:
                    self.blocks.append(Block("heading", text, level=_HEADINGS[name]))
            elif name == "pre":
                self.flush()
                self.blocks.append(Block("code", child.get_text().strip("\n")))
            elif name == "tr":
                self.flush()
                cells = [_clean(c.get_text(" ", strip=True)) for c in child.find_all(["td", "th"])]
                if any(cells):
                    self.blocks.append(Block("text", " | ".join(cells)))
            elif name == "br":
                self.buffer.append(" ")
            elif name in _BLOCK_TAGS:
                self.flush()
                self.walk(child)
                self.flush("- " if name == "li" else "")
            else:
                self.walk(child)


def _parse_html(data: bytes, content_type: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(data, content_type), "html.parser")
    title = _clean(soup.title.get_text()) if soup.title else ""
    root = soup.find("main") or soup.find("article") or soup.body or soup
    walker = _HtmlWalker()
    walker.walk(root)
    walker.flush()
    if not title:
        title = next((b.text for b in walker.blocks if b.kind == "heading" and b.level == 1), "")
    return ParsedDocument(title=title, blocks=walker.blocks)


# -- PDF ----------------------------------------------------------------------------------------


def _parse_pdf(data: bytes, content_type: str) -> ParsedDocument:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise DocumentParseError("The PDF is encrypted with a password.", details={"format": "pdf"})
    doc = ParsedDocument()
    info = reader.metadata
    if info is not None and info.title:
        doc.title = _clean(str(info.title))
    for number, page in enumerate(reader.pages, start=1):
        doc.blocks.extend(_paragraphs(page.extract_text() or "", page=number))
    return doc


# -- DOCX ---------------------------------------------------------------------------------------


def _parse_docx(data: bytes, content_type: str) -> ParsedDocument:
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    doc = ParsedDocument(title=_clean(document.core_properties.title or ""))
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                cells = [_clean(cell.text) for cell in row.cells]
                if any(cells):
                    doc.blocks.append(Block("text", " | ".join(cells)))
            continue
        text = _clean(item.text)
        if not text:
            continue
        style = (item.style.name if item.style is not None else "") or ""
        heading = re.fullmatch(r"Heading (\d)", style)
        if style == "Title":
            doc.title = doc.title or text
        elif heading:
            doc.blocks.append(Block("heading", text, level=min(int(heading.group(1)), 6)))
        elif style.startswith("List"):
            doc.blocks.append(Block("text", "- " + text))
        else:
            doc.blocks.append(Block("text", text))
    return doc


_PARSERS: dict[str, Callable[[bytes, str], ParsedDocument]] = {
    "text": _parse_text,
    "markdown": _parse_markdown,
    "html": _parse_html,
    "pdf": _parse_pdf,
    "docx": _parse_docx,
}
