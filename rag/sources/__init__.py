"""Source adapters: how a KnowledgeSource of each ``type`` lists its items.

An adapter is a subclass of :class:`SourceAdapter` registered in the entry-point group
``django_automate.rag.sources``; built in: ``upload`` and ``api`` (documents pushed to the
platform), ``url`` and ``sitemap`` (fetched through the egress policy), ``model`` (rows of a
Django model, kept current by its saves and deletes). :func:`rag.sync.sync_source` drives them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from automate_core import plugins
from rag.errors import InvalidSourceConfig

if TYPE_CHECKING:
    from rag.models import KnowledgeSource
    from rag.sync import Item, ItemFailure, ItemUnchanged

PLUGIN_KIND = "rag.sources"


@dataclass
class Listing:
    """What a source lists now.

    ``complete``: documents of the source that are not listed are deleted. ``incremental``:
    only the documents that changed are re-indexed (otherwise every document is checked, which
    is what push sources want after documents were stored by the API).
    """

    items: Iterable[Item | ItemFailure | ItemUnchanged]
    total: int | None = None
    complete: bool = True
    incremental: bool = True


class SourceAdapter:
    type: ClassVar[str] = ""
    #: Whether the platform stores this source's documents as they are pushed (API, uploads).
    accepts_pushes: ClassVar[bool] = False

    def __init__(self, source: KnowledgeSource) -> None:
        self.source = source
        problems = self.validate_config(source.config or {})
        if problems:
            raise InvalidSourceConfig(
                f"{source.slug}: " + "; ".join(problems), details={"problems": problems}
            )

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        return []

    def list_items(self) -> Listing:
        raise NotImplementedError


def adapter_class(type_name: str) -> type[SourceAdapter]:
    try:
        cls = plugins.load(PLUGIN_KIND, type_name)
    except plugins.PluginNotFound as exc:
        raise InvalidSourceConfig(str(exc), details={"type": type_name}) from exc
    if not (isinstance(cls, type) and issubclass(cls, SourceAdapter)):
        raise InvalidSourceConfig(f"Source type {type_name!r} is not a SourceAdapter subclass.")
    return cls


def adapter_for(source: KnowledgeSource) -> SourceAdapter:
    return adapter_class(source.type)(source)
