"""Metadata filters of a query, and the forced filters of an endpoint's access policy.

A filter is a JSON object over chunk metadata keys (dotted for nested objects)::

    {"lang": "en",                      # equal (or, for a list value, contains "en")
     "tags": ["billing", "refunds"],    # any of
     "year": {"$gte": 2023},            # operators: $eq $ne $in $nin $gt $gte $lt $lte $exists
     "source": "handbook"}

All conditions must hold. The same :class:`MetadataFilter` compiles to SQL (jsonb containment,
so the GIN index on ``metadata`` serves equality) and to a Python predicate, the reference the
tests check the SQL against on every input. Forced filters are ANDed with the
caller's, so a caller can narrow an access policy but never widen it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rag.errors import InvalidFilter

_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_:-]{0,63}(\.[A-Za-z0-9_][A-Za-z0-9_:-]{0,63}){0,3}")
_OPERATORS = frozenset({"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists"})
_ORDERING = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
MAX_CONDITIONS = 32
MAX_LIST = 100
MAX_STRING = 1000

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    value: Any

    @property
    def path(self) -> list[str]:
        return self.key.split(".")


@dataclass(frozen=True)
class MetadataFilter:
    """Conditions that must all hold; empty matches everything."""

    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def __and__(self, other: MetadataFilter) -> MetadataFilter:
        return MetadataFilter(self.conditions + other.conditions)

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        return all(_matches(c, metadata) for c in self.conditions)

    def to_sql(self, column: str = "metadata") -> tuple[str, list[Any]]:
        """A boolean SQL expression over the jsonb ``column`` and its parameters."""
        if not self.conditions:
            return "TRUE", []
        parts: list[str] = []
        params: list[Any] = []
        for condition in self.conditions:
            sql, values = _condition_sql(condition, column)
            parts.append(sql)
            params.extend(values)
        return "(" + " AND ".join(parts) + ")", params

    def to_json(self) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        for c in self.conditions:
            out.setdefault(c.key, {})[c.op] = c.value
        return out


def parse_filters(data: Any) -> MetadataFilter:
    """Validate a filter object; raises :class:`InvalidFilter` saying what is wrong and where."""
    if data is None:
        return MetadataFilter()
    if not isinstance(data, Mapping):
        raise InvalidFilter("filters must be an object of metadata keys", details={"filters": data})
    conditions: list[Condition] = []
    for key, spec in data.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidFilter(
                f"{key!r} is not a metadata key (letters, digits, _ : -, dotted for nesting)",
                details={"key": key},
            )
        if isinstance(spec, Mapping):
            if not spec:
                raise InvalidFilter(f"{key}: empty operator object", details={"key": key})
            for op, value in spec.items():
                conditions.append(_condition(key, op, value))
        elif isinstance(spec, list):
            conditions.append(_condition(key, "$in", spec))
        else:
            conditions.append(_condition(key, "$eq", spec))
    if len(conditions) > MAX_CONDITIONS:
        raise InvalidFilter(f"at most {MAX_CONDITIONS} conditions", details={})
    return MetadataFilter(tuple(conditions))


def _condition(key: str, op: Any, value: Any) -> Condition:
    if op not in _OPERATORS:
        raise InvalidFilter(
            f"{key}: unknown operator {op!r}; use one of {', '.join(sorted(_OPERATORS))}",
            details={"key": key, "operator": op},
        )
    if op in ("$in", "$nin"):
        if not isinstance(value, list) or len(value) > MAX_LIST:
            raise InvalidFilter(f"{key}: {op} takes a list of at most {MAX_LIST} values")
        for item in value:
            _scalar(key, item)
        return Condition(key, op, list(value))
    if op == "$exists":
        if not isinstance(value, bool):
            raise InvalidFilter(f"{key}: $exists takes true or false")
        return Condition(key, op, value)
    _scalar(key, value)
    if op in _ORDERING and (value is None or isinstance(value, bool)):
        raise InvalidFilter(f"{key}: {op} compares numbers or strings only")
    return Condition(key, op, value)


def _scalar(key: str, value: Any) -> None:
    if value is not None and not isinstance(value, str | int | float | bool):
        raise InvalidFilter(f"{key}: values must be strings, numbers, booleans or null")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise InvalidFilter(f"{key}: values are at most {MAX_STRING} characters")
    if isinstance(value, float) and value != value:  # NaN never equals anything
        raise InvalidFilter(f"{key}: NaN is not a value")


# -- Python ------------------------------------------------------------------------------------

_MISSING = object()


def _lookup(metadata: Mapping[str, Any], path: list[str]) -> Any:
    node: Any = metadata
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _same(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _equals(found: Any, value: Any) -> bool:
    if found is _MISSING:
        return False
    if _same(found, value):
        return True
    return isinstance(found, list) and any(_same(item, value) for item in found)


def _matches(c: Condition, metadata: Mapping[str, Any]) -> bool:
    found = _lookup(metadata, c.path)
    if c.op == "$eq":
        return _equals(found, c.value)
    if c.op == "$ne":
        return not _equals(found, c.value)
    if c.op == "$in":
        return any(_equals(found, v) for v in c.value)
    if c.op == "$nin":
        return not any(_equals(found, v) for v in c.value)
    if c.op == "$exists":
        return (found is not _MISSING) == c.value
    # Ordering: numbers with numbers, strings with strings (by code point), else no match.
    if isinstance(c.value, str):
        if not isinstance(found, str):
            return False
        left, right = found.encode("utf-8"), c.value.encode("utf-8")
    else:
        if isinstance(found, bool) or not isinstance(found, int | float):
            return False
        left, right = found, c.value  # type: ignore[assignment]
    return {
        "$gt": left > right,
        "$gte": left >= right,
        "$lt": left < right,
        "$lte": left <= right,
    }[c.op]


# -- SQL ---------------------------------------------------------------------------------------


def _nest(path: list[str], value: Any) -> str:
    node: Any = value
    for part in reversed(path):
        node = {part: node}
    return json.dumps(node)


def _eq_sql(c: Condition, value: Any, column: str) -> tuple[str, list[Any]]:
    # {"k": v} or {"k": [v]}: containment, which the jsonb_path_ops GIN index serves.
    return (
        f"({column} @> %s::jsonb OR {column} @> %s::jsonb)",
        [_nest(c.path, value), _nest(c.path, [value])],
    )


def _condition_sql(c: Condition, column: str) -> tuple[str, list[Any]]:
    if c.op in ("$eq", "$ne"):
        sql, params = _eq_sql(c, c.value, column)
        return (sql if c.op == "$eq" else f"NOT {sql}"), params
    if c.op in ("$in", "$nin"):
        if not c.value:
            return ("FALSE" if c.op == "$in" else "TRUE"), []
        parts, params = [], []
        for value in c.value:
            sql, values = _eq_sql(c, value, column)
            parts.append(sql)
            params.extend(values)
        any_sql = "(" + " OR ".join(parts) + ")"
        return (any_sql if c.op == "$in" else f"NOT {any_sql}"), params
    if c.op == "$exists":
        return f"({column} #> %s::text[] IS {'NOT ' if c.value else ''}NULL)", [c.path]
    operator = _ORDERING[c.op]
    if isinstance(c.value, str):
        return (
            f"(CASE WHEN jsonb_typeof({column} #> %s::text[]) = 'string' "
            f'THEN ({column} #>> %s::text[]) COLLATE "C" {operator} %s ELSE FALSE END)',
            [c.path, c.path, c.value],
        )
    return (
        f"(CASE WHEN jsonb_typeof({column} #> %s::text[]) = 'number' "
        f"THEN ({column} #>> %s::text[])::numeric {operator} %s::numeric ELSE FALSE END)",
        [c.path, c.path, c.value],
    )
