"""``upload`` and ``api``: documents the platform receives (admin uploads, the push API).

Their documents are stored as they arrive (:func:`rag.services.push_document`); a sync lists
nothing new and re-checks every document against the live index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rag.sources import Listing, SourceAdapter


class UploadSource(SourceAdapter):
    type = "upload"
    accepts_pushes = True

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        return ["takes no config"] if config else []

    def list_items(self) -> Listing:
        return Listing(items=[], total=0, complete=False, incremental=False)


class PushedSource(UploadSource):
    type = "api"
