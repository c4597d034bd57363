"""The API's request parsers: DRF's, refusing a body that holds a NUL character.

PostgreSQL can store NUL neither in text nor in jsonb (``\\u0000``), so a value carrying one
fails the query that saves it, as a 500. Refusing it where the body is parsed, before any view
reads it, makes it the client's error (400 ``parse_error``) for every field of every endpoint,
JSON and form fields alike. URLs are refused the same way by
:mod:`automate_core.api.nul_bytes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MESSAGE = "The body holds a NUL character (\\u0000), which no field here can store."


def holds_nul(data: Any) -> bool:
    """Whether any string in ``data`` (a parsed body: keys, values, lists, at any depth) holds
    a NUL. Walked without recursion, so any nesting the JSON parser accepted is checked."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, Mapping):
            getlist = getattr(item, "getlist", None)  # a QueryDict: every value of a key
            for key in item:
                pending.append(key)
                pending.extend(getlist(key) if getlist else [item[key]])
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if holds_nul(data):
            raise ParseError(MESSAGE)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if holds_nul(data):
            raise ParseError(MESSAGE)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """Form fields and file names are checked; file contents are the file's own business."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        names = [getattr(upload, "name", None) or "" for upload in parsed.files.values()]
        if holds_nul(parsed.data) or holds_nul(names):
            raise ParseError(MESSAGE)
        return parsed
