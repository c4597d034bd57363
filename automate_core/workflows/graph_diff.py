"""A structured, deterministic diff of two workflow graphs (JSON).

Objects are compared key by key (keys in sorted order); any other value, lists included, is
compared as a whole. Each change names the path of the value as the graph validator's problems do
(``steps.lookup.next``; ``$`` for the whole graph). Equal graphs have no changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class Change:
    path: str
    op: str  # "added" | "removed" | "changed"
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class GraphDiff:
    changes: list[Change]
    steps_added: list[str] = field(default_factory=list)
    steps_removed: list[str] = field(default_factory=list)
    steps_changed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": {
                "added": self.steps_added,
                "removed": self.steps_removed,
                "changed": self.steps_changed,
            },
            "changes": [asdict(change) for change in self.changes],
        }


def diff_graphs(before: Any, after: Any) -> GraphDiff:
    """What changed from ``before`` to ``after``, with a summary per step id."""
    changes: list[Change] = []
    _walk(before, after, "$", changes)
    old_steps = _steps(before)
    new_steps = _steps(after)
    return GraphDiff(
        changes=changes,
        steps_added=sorted(set(new_steps) - set(old_steps)),
        steps_removed=sorted(set(old_steps) - set(new_steps)),
        steps_changed=sorted(
            name for name in set(old_steps) & set(new_steps) if old_steps[name] != new_steps[name]
        ),
    )


def _steps(graph: Any) -> Mapping[str, Any]:
    steps = graph.get("steps") if isinstance(graph, Mapping) else None
    return steps if isinstance(steps, Mapping) else {}


def _walk(before: Any, after: Any, path: str, changes: list[Change]) -> None:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after), key=str):
            child = str(key) if path == "$" else f"{path}.{key}"
            _walk(before.get(key, _MISSING), after.get(key, _MISSING), child, changes)
    elif before is _MISSING:
        changes.append(Change(path, "added", after=after))
    elif after is _MISSING:
        changes.append(Change(path, "removed", before=before))
    elif before != after or type(before) is not type(after):
        changes.append(Change(path, "changed", before=before, after=after))
