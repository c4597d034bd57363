"""The JSON Logic rule engine that matches events to workflows.

Rules are compiled once into Python closures (see :mod:`jsonlogic_compiler`) and cached in a
bounded LRU keyed by the rule's canonical JSON (sorted keys, no whitespace), so two equal rules
share one compiled form however their dicts were ordered. Building that key costs about as much
as evaluating a small rule, so a second bounded LRU in front maps a ``marshal`` snapshot of the
rule (exact, type-preserving, several times cheaper) to the same compiled entry.

The engine passes every case of the JSON Logic compat-tables suites, which go beyond classic
json-logic-js: ``val``, ``exists``, ``??``, ``try``/``throw``, chained comparisons,
``preserve`` and scope climbing. See docs/rules.md.

Usage::

    apply({">=": [{"var": "order.total"}, 100]}, {"order": {"total": 250}})  # True
    is_big = compile({">=": [{"var": "order.total"}, 100]})
    is_big({"order": {"total": 50}})  # False

Every error raised is a :class:`JSONLogicError` whose ``type`` names the failure.
"""

from __future__ import annotations

import json
import marshal
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

from automate_core.rules.jsonlogic_compiler import DATA_ERRORS, CompileState, error_from
from automate_core.rules.jsonlogic_semantics import JSONLogicError

__all__ = ["CACHE_SIZE", "JSONLogicError", "Rule", "apply", "cache_clear", "cache_info", "compile"]

Rule = Callable[[Any], Any]

#: How many distinct compiled rules stay cached; the least recently used are dropped first.
CACHE_SIZE: Final = 4096

# Format 2 writes no back-references, so a snapshot depends only on the rule's value and types,
# never on how many references to its parts exist elsewhere.
_MARSHAL_VERSION: Final = 2

_canonical_json = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    check_circular=False,
).encode


def _rule_key(rule: Any) -> str:
    try:
        return _canonical_json(rule)
    except (TypeError, ValueError, RecursionError) as exc:
        raise JSONLogicError("Invalid Rule", f"A rule must be JSON: {exc}") from exc


def _build(rule: Any) -> Rule:
    try:
        root = CompileState().compile(rule)
    except RecursionError as exc:
        raise JSONLogicError("Invalid Rule", "The rule is nested too deeply.") from exc

    def evaluate(data: Any = None) -> Any:
        try:
            return root(data, None)
        except DATA_ERRORS as exc:
            raise error_from(exc) from exc

    return evaluate


@lru_cache(maxsize=CACHE_SIZE)
def _compiled(key: str) -> Rule:
    # Compiling from the key (not the caller's object) means a caller mutating its rule later
    # cannot change what the cache holds.
    return _build(json.loads(key))


@lru_cache(maxsize=CACHE_SIZE)
def _compiled_by_snapshot(snapshot: bytes) -> Rule:
    # Equal snapshots load to equal rules (marshal keeps True apart from 1 and 1 from 1.0), so
    # this index never confuses two rules; at worst one rule has several snapshots.
    return _compiled(_rule_key(marshal.loads(snapshot)))  # noqa: S302 - our own bytes


def _lookup(rule: Any) -> Rule:
    try:
        snapshot = marshal.dumps(rule, _MARSHAL_VERSION)
    except ValueError:  # a type marshal does not know (a dict subclass...): use the JSON key
        return _compiled(_rule_key(rule))
    return _compiled_by_snapshot(snapshot)


def compile(rule: Any) -> Rule:
    """Compile ``rule`` (or fetch it from the cache) into ``f(data=None) -> result``.

    Raises :class:`JSONLogicError` for rules that are not JSON, use unknown operators or give an
    operator arguments of an impossible shape; the returned callable raises it for errors that
    depend on the data. The callable is thread-safe and holds no reference to ``rule``.
    """
    return _lookup(rule)


def apply(rule: Any, data: Any = None) -> Any:
    """Evaluate ``rule`` against ``data``; the compiled rule is cached for the next call.

    Scalars are returned as they are, without touching the cache.
    """
    cls = rule.__class__
    if cls is dict or cls is list:
        try:
            evaluate = _compiled_by_snapshot(marshal.dumps(rule, _MARSHAL_VERSION))
        except ValueError:
            evaluate = _compiled(_rule_key(rule))
        return evaluate(data)
    if isinstance(rule, dict | list | tuple):
        return _lookup(rule)(data)
    return rule


def cache_info() -> Any:
    """Hits, misses and size of the compiled-rule cache (``functools`` ``CacheInfo``); each
    miss is one compilation."""
    return _compiled.cache_info()


def cache_clear() -> None:
    """Drop every compiled rule, e.g. in tests that count compilations."""
    _compiled_by_snapshot.cache_clear()
    _compiled.cache_clear()
