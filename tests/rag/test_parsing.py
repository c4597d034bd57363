"""Parsers: each format gives a title and heading-aware blocks; unreadable input is an error
with a reason, never an empty document."""

from __future__ import annotations

import pytest

from rag.errors import DocumentParseError
from rag.parsing import detect_format, parse

from .sample_files import encrypt_pdf, make_docx, make_pdf


def test_plain_text_splits_paragraphs_on_blank_lines():
    doc = parse(b"First line\ncontinues here.\n\nSecond paragraph.", name="notes.txt")
    assert [b.text for b in doc.blocks] == ["First line continues here.", "Second paragraph."]


def test_markdown_keeps_headings_lists_code_and_tables_without_markup():
    source = b"""# Handbook

Intro with **bold** and `code`.

## Leave

- Paid leave is *25* days
- Ask [your manager](http://x)

```
leave --request
```

| day | hours |
| --- | ----- |
| Mon | 8 |
"""
    doc = parse(source, name="handbook.md")
    assert doc.title == "Handbook"
    assert [(b.kind, b.level, b.text) for b in doc.blocks] == [
        ("heading", 1, "Handbook"),
        ("text", 0, "Intro with bold and code."),
        ("heading", 2, "Leave"),
        ("text", 0, "- Paid leave is 25 days"),
        ("text", 0, "- Ask your manager"),
        ("code", 0, "leave --request"),
        ("text", 0, "day | hours"),
        ("text", 0, "Mon | 8"),
    ]


def test_html_reads_the_main_content_and_drops_scripts_and_navigation():
    page = b"""<!doctype html><html><head><title>Refunds | Acme</title>
<script>var secret = 1;</script></head><body><nav>Home About</nav>
<main><h1>Refunds</h1><p>We refund <b>within</b> 30 days.</p>
<ul><li>Keep the receipt</li><li>Use the form</li></ul>
<table><tr><th>Plan</th><th>Days</th></tr><tr><td>Pro</td><td>60</td></tr></table>
<div>Loose text <br>after a break</div></main><footer>Copyright</footer></body></html>"""
    doc = parse(page, content_type="text/html; charset=utf-8")
    assert doc.title == "Refunds | Acme"
    texts = [b.text for b in doc.blocks]
    assert texts == [
        "Refunds",
        "We refund within 30 days.",
        "- Keep the receipt",
        "- Use the form",
        "Plan | Days",
        "Pro | 60",
        "Loose text after a break",
    ]
    assert "secret" not in doc.text and "Home" not in doc.text and "Copyright" not in doc.text


def test_pdf_text_is_extracted_per_page_with_its_title():
    data = make_pdf(
        [["Refund policy.", "Refunds take five days."], ["Shipping is free."]], title="Policies"
    )
    doc = parse(data, name="policies.pdf")
    assert doc.title == "Policies"
    assert [(b.page, b.text) for b in doc.blocks] == [
        (1, "Refund policy. Refunds take five days."),
        (2, "Shipping is free."),
    ]


def test_a_password_protected_pdf_is_a_parse_error_that_says_so():
    data = encrypt_pdf(make_pdf([["secret"]]), "pw")
    with pytest.raises(DocumentParseError, match="encrypted"):
        parse(data, name="locked.pdf")


def test_a_corrupt_pdf_is_a_parse_error():
    with pytest.raises(DocumentParseError, match="pdf document could not be read"):
        parse(b"%PDF-1.4\nthis is not a pdf", content_type="application/pdf")


def test_a_pdf_without_text_is_reported_as_needing_ocr():
    with pytest.raises(DocumentParseError, match="OCR"):
        parse(make_pdf([[]]), name="scan.pdf")


def test_docx_headings_lists_and_tables_keep_their_structure():
    data = make_docx(
        title="Handbook",
        sections=[("Leave", ["Paid leave is 25 days.", "- Ask your manager"])],
        table=[["Plan", "Days"], ["Pro", "60"]],
    )
    doc = parse(data, name="handbook.docx")
    assert doc.title == "Handbook"
    assert [(b.kind, b.text) for b in doc.blocks] == [
        ("heading", "Leave"),
        ("text", "Paid leave is 25 days."),
        ("text", "- Ask your manager"),
        ("text", "Plan | Days"),
        ("text", "Pro | 60"),
    ]


def test_a_truncated_docx_is_a_parse_error():
    data = make_docx(sections=[("A", ["b"])])
    with pytest.raises(DocumentParseError, match="docx"):
        parse(data[:200], name="broken.docx")


def test_binary_content_declared_as_text_is_refused():
    with pytest.raises(DocumentParseError, match="binary"):
        parse(b"\x00\x01\x02\x03" * 10, content_type="text/plain")


def test_unsupported_content_type_is_refused_by_name():
    with pytest.raises(DocumentParseError, match="image/png"):
        parse(b"\x89PNG....", content_type="image/png")


def test_format_is_sniffed_when_neither_type_nor_extension_says():
    assert detect_format(make_pdf([["x"]])) == "pdf"
    assert detect_format(b"<!DOCTYPE html><html></html>") == "html"
    assert detect_format(make_docx(sections=[("a", ["b"])])) == "docx"
    assert detect_format(b"just words") == "text"


def test_declared_charset_is_honoured():
    doc = parse("Café crème".encode("latin-1"), content_type="text/plain; charset=latin-1")
    assert doc.blocks[0].text == "Café crème"
