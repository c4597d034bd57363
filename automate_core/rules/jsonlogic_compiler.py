"""Turns a JSON Logic rule into a tree of Python closures, one per node, built once.

Every compiled node is a function ``node(context, scope) -> value``. ``context`` is the data the
node reads (the event payload at the root, the current item inside ``map``); ``scope`` is the
chain of enclosing contexts that ``val`` can climb (``{"val": [[2], "x"]}``), as nested tuples
``(meta, outer_context, parent_scope)``, or ``None`` where no node below needs it. Iterators only
build scopes for sub-rules that climb, so the common case allocates nothing per item.

Argument-shape errors that can be seen in the rule itself (``{"<": [1]}``, ``{"map": 5}``) are
raised while compiling; errors that depend on data (NaN, an iterator over a non-array) are raised
while evaluating. Either way they are :class:`JSONLogicError` with a ``type``.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from automate_core.rules.jsonlogic_semantics import (
    MISSING,
    JSONLogicError,
    invalid_arguments,
    lookup,
    loose_equals,
    nan_error,
    number_pair,
    strict_equals,
    to_number,
    to_string,
    truthy,
)

logger = logging.getLogger("automate_core.rules.jsonlogic")

Node = Callable[[Any, Any], Any]
OperatorBuilder = Callable[[Any, "CompileState"], Node]

# Python exceptions that odd data can provoke inside an operator; they surface as
# JSONLogicError("Invalid Arguments") so that callers and ``try`` only ever see one error type.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AttributeError,
    RecursionError,
)
_FOLD_ERRORS: tuple[type[BaseException], ...] = (JSONLogicError, *DATA_ERRORS)


def error_from(exc: BaseException) -> JSONLogicError:
    if isinstance(exc, JSONLogicError):
        return exc
    return invalid_arguments(f"{type(exc).__name__}: {exc}")


def _copy_json(value: Any) -> Any:
    """A fresh copy of a literal container, so callers mutating a result cannot edit the rule."""
    cls = value.__class__
    if cls is str or cls is int or cls is float or cls is bool or value is None:
        return value
    if cls is list:
        return [_copy_json(item) for item in value]
    if cls is dict:
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_json(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _copy_json(item) for key, item in value.items()}
    return value


class CompileState:
    """What the compiler knows while it walks one rule.

    ``scope_uses`` counts nodes that read enclosing scopes; an iterator compares it before and
    after compiling its body to learn whether the body needs a scope built per item.
    """

    __slots__ = ("_constants", "data_reads", "scope_uses")

    def __init__(self) -> None:
        self.scope_uses = 0
        self.data_reads = 0
        self._constants: dict[int, tuple[Node, Any]] = {}

    def compile(self, rule: Any) -> Node:
        if isinstance(rule, Mapping):
            if len(rule) != 1:
                return self.literal(rule)  # {} and multi-key objects are data, as in json-logic-js
            ((op, args),) = rule.items()
            builder = OPERATORS.get(op)
            if builder is None:
                raise JSONLogicError("Unknown Operator", f"Unknown JSON Logic operator {op!r}.")
            reads_before = self.data_reads
            node = builder(args, self)
            if op in READS_DATA:
                self.data_reads += 1
            elif self.data_reads == reads_before:
                return self._fold(node)
            return node
        if isinstance(rule, list | tuple):
            nodes = [self.compile(item) for item in rule]
            values = [self.constant(node) for node in nodes]
            if all(value is not MISSING for value in values):
                return self.literal(values)
            return lambda context, scope: [node(context, scope) for node in nodes]
        return self.literal(rule)

    def _fold(self, node: Node) -> Node:
        """Evaluate a sub-rule that reads no data once, now. One that fails keeps failing at
        evaluation time instead, so ``{"if": [false, {"/": [1, 0]}, 1]}`` still yields 1."""
        if self.constant(node) is not MISSING:
            return node
        try:
            value = node(None, None)
        except _FOLD_ERRORS:
            return node
        return self.literal(value)

    def literal(self, value: Any) -> Node:
        """A node that always yields ``value``; containers are copied on every evaluation."""
        if isinstance(value, list | tuple | Mapping):

            def copy_literal(context: Any, scope: Any) -> Any:
                return _copy_json(value)

            node: Node = copy_literal
        else:
            node = lambda context, scope: value  # noqa: E731
        self._constants[id(node)] = (node, value)
        return node

    def constant(self, node: Node) -> Any:
        """The value a node always yields, or MISSING when it depends on data."""
        entry = self._constants.get(id(node))
        return entry[1] if entry is not None and entry[0] is node else MISSING

    def static_args(self, op: str, args: Any, minimum: int = 0) -> list[Node]:
        """Arguments that must be written as an array in the rule itself (control flow,
        comparisons, iterators): a computed array would defeat lazy evaluation."""
        if not isinstance(args, list | tuple):
            raise invalid_arguments(f"{op!r} takes an array of arguments.")
        if len(args) < minimum:
            raise invalid_arguments(f"{op!r} takes at least {minimum} arguments.")
        return [self.compile(arg) for arg in args]

    def spread_args(self, args: Any) -> tuple[list[Node] | None, Node | None]:
        """Arguments of value operators: an array literal, or one rule whose array result is
        the argument list (``{"+": {"merge": ...}}``) and whose other results are one argument.

        Returns ``(nodes, None)`` when the list is known while compiling, else ``(None, node)``.
        """
        if isinstance(args, list | tuple):
            return [self.compile(arg) for arg in args], None
        node = self.compile(args)
        value = self.constant(node)
        if value is MISSING:
            return None, node
        if isinstance(value, list | tuple):
            return [self.literal(item) for item in value], None
        return [node], None


def _as_values(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else (value,)


def _values_node(
    function: Callable[[Sequence[Any]], Any], nodes: list[Node] | None, dynamic: Node | None
) -> Node:
    """A node that evaluates all arguments and hands them to ``function`` as one sequence."""
    if dynamic is not None:
        return lambda context, scope: function(_as_values(dynamic(context, scope)))
    assert nodes is not None
    if len(nodes) == 1:
        (only,) = nodes
        return lambda context, scope: function((only(context, scope),))
    if len(nodes) == 2:
        first, second = nodes
        return lambda context, scope: function((first(context, scope), second(context, scope)))
    return lambda context, scope: function([node(context, scope) for node in nodes])


def _value_operator(function: Callable[[Sequence[Any]], Any]) -> OperatorBuilder:
    """An operator whose arguments are all evaluated first (arithmetic, strings, merge)."""

    def build(args: Any, state: CompileState) -> Node:
        return _values_node(function, *state.spread_args(args))

    return build


# --- arithmetic -------------------------------------------------------------------------------


def _number(value: Any) -> int | float:
    cls = value.__class__
    if cls is int or cls is float:
        return value
    return to_number(value)


def _finite(result: int | float) -> int | float:
    if result.__class__ is float and not math.isfinite(result):
        raise nan_error()
    return result


def _add(values: Sequence[Any]) -> int | float:
    total: int | float = 0
    try:
        for value in values:
            cls = value.__class__
            total += value if cls is int or cls is float else to_number(value)
    except OverflowError:
        raise nan_error() from None
    return _finite(total)


def _multiply(values: Sequence[Any]) -> int | float:
    product: int | float = 1
    try:
        for value in values:
            cls = value.__class__
            product *= value if cls is int or cls is float else to_number(value)
    except OverflowError:
        raise nan_error() from None
    return _finite(product)


def _subtract(values: Sequence[Any]) -> int | float:
    if not values:
        raise invalid_arguments("'-' takes at least one argument.")
    try:
        result = _number(values[0])
        if len(values) == 1:
            return _finite(-result)
        for value in values[1:]:
            result -= _number(value)
    except OverflowError:
        raise nan_error() from None
    return _finite(result)


def _divide(values: Sequence[Any]) -> int | float:
    if not values:
        raise invalid_arguments("'/' takes at least one argument.")
    try:
        if len(values) == 1:
            result: int | float = 1
            divisors = values
        else:
            result = _number(values[0])
            divisors = values[1:]
        for value in divisors:
            divisor = _number(value)
            if divisor == 0:
                raise nan_error()
            result = result / divisor
    except (OverflowError, ZeroDivisionError):
        raise nan_error() from None
    return _finite(result)


def _js_remainder(a: int | float, b: int | float) -> int | float:
    """JavaScript's ``%``: the result takes the sign of the dividend."""
    if a.__class__ is int and b.__class__ is int:
        remainder = abs(a) % abs(b)
        return -remainder if a < 0 else remainder
    return math.fmod(a, b)


def _modulo(values: Sequence[Any]) -> int | float:
    if len(values) < 2:
        raise invalid_arguments("'%' takes at least two arguments.")
    try:
        result = _number(values[0])
        for value in values[1:]:
            divisor = _number(value)
            if divisor == 0:
                raise nan_error()
            result = _js_remainder(result, divisor)
    except (OverflowError, ValueError):
        raise nan_error() from None
    return _finite(result)


def _extreme(pick: Callable[..., Any]) -> Callable[[Sequence[Any]], Any]:
    def extreme(values: Sequence[Any]) -> Any:
        if not values:
            return None
        return _finite(pick([_number(value) for value in values]))

    return extreme


def _build_plus(args: Any, state: CompileState) -> Node:
    nodes, dynamic = state.spread_args(args)
    if nodes is not None and len(nodes) == 2:
        first, second = nodes

        def add_two(context: Any, scope: Any) -> Any:
            a = first(context, scope)
            b = second(context, scope)
            if a.__class__ is int and b.__class__ is int:
                return a + b
            return _add((a, b))

        return add_two
    return _values_node(_add, nodes, dynamic)


def _build_minus(args: Any, state: CompileState) -> Node:
    nodes, dynamic = state.spread_args(args)
    if nodes is not None and not nodes:
        raise invalid_arguments("'-' takes at least one argument.")
    return _values_node(_subtract, nodes, dynamic)


def _build_divide(args: Any, state: CompileState) -> Node:
    nodes, dynamic = state.spread_args(args)
    if nodes is not None and not nodes:
        raise invalid_arguments("'/' takes at least one argument.")
    return _values_node(_divide, nodes, dynamic)


def _build_modulo(args: Any, state: CompileState) -> Node:
    nodes, dynamic = state.spread_args(args)
    if nodes is not None and len(nodes) < 2:
        raise invalid_arguments("'%' takes at least two arguments.")
    return _values_node(_modulo, nodes, dynamic)


# --- comparison -------------------------------------------------------------------------------


def _ordering(name: str, compare: Callable[[Any, Any], bool]) -> OperatorBuilder:
    """``<``, ``<=``, ``>``, ``>=``: numbers by value, two strings lexically, chained lazily."""

    def ordered(a: Any, b: Any) -> bool:
        ca, cb = a.__class__, b.__class__
        if ((ca is int or ca is float) and (cb is int or cb is float)) or (ca is str and cb is str):
            return compare(a, b)
        return compare(*number_pair(a, b))

    def build(args: Any, state: CompileState) -> Node:
        nodes = state.static_args(name, args, minimum=2)
        if len(nodes) == 2:
            first, second = nodes
            bound = state.constant(second)
            if bound.__class__ is int or bound.__class__ is float:

                def against_number(context: Any, scope: Any) -> bool:
                    a = first(context, scope)
                    if a.__class__ is int or a.__class__ is float:
                        return compare(a, bound)
                    return compare(*number_pair(a, bound))

                return against_number
            return lambda context, scope: ordered(first(context, scope), second(context, scope))
        head, rest = nodes[0], nodes[1:]

        def chained(context: Any, scope: Any) -> bool:
            a = head(context, scope)
            for node in rest:
                b = node(context, scope)
                if not ordered(a, b):
                    return False
                a = b
            return True

        return chained

    return build


def _equality(name: str, equals: Callable[[Any, Any], bool], negate: bool) -> OperatorBuilder:
    """``==``, ``===`` and their negations; more than two arguments compare neighbours and stop
    at the first pair that settles the answer."""

    def build(args: Any, state: CompileState) -> Node:
        nodes = state.static_args(name, args, minimum=2)
        if len(nodes) == 2:
            first, second = nodes
            known = state.constant(second)
            if known.__class__ is str:

                def against_string(context: Any, scope: Any) -> bool:
                    a = first(context, scope)
                    if a.__class__ is str:
                        return (a == known) is not negate
                    return equals(a, known) is not negate

                return against_string
            return lambda context, scope: (
                equals(first(context, scope), second(context, scope)) is not negate
            )
        head, rest = nodes[0], nodes[1:]

        def chained(context: Any, scope: Any) -> bool:
            a = head(context, scope)
            for node in rest:
                b = node(context, scope)
                if equals(a, b) is negate:
                    return False
                a = b
            return True

        return chained

    return build


# --- logic ------------------------------------------------------------------------------------


def _is_truthy(value: Any) -> bool:
    return value is True or (value is not False and value is not None and truthy(value))


def _build_if(args: Any, state: CompileState) -> Node:
    nodes = state.static_args("if", args)
    if not nodes:
        return state.literal(None)
    if len(nodes) == 1:
        return nodes[0]
    if len(nodes) <= 3:
        condition, then = nodes[0], nodes[1]
        otherwise = nodes[2] if len(nodes) == 3 else state.literal(None)

        def if_then_else(context: Any, scope: Any) -> Any:
            test = condition(context, scope)
            if test is True or (test is not False and test is not None and truthy(test)):
                return then(context, scope)
            return otherwise(context, scope)

        return if_then_else
    pairs = [(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
    fallback = nodes[-1] if len(nodes) % 2 else state.literal(None)

    def if_chain(context: Any, scope: Any) -> Any:
        for condition, then in pairs:
            test = condition(context, scope)
            if test is True or (test is not False and test is not None and truthy(test)):
                return then(context, scope)
        return fallback(context, scope)

    return if_chain


def _build_and(args: Any, state: CompileState) -> Node:
    nodes = state.static_args("and", args)
    if not nodes:
        return state.literal(False)
    if len(nodes) == 1:
        return nodes[0]

    def all_truthy(context: Any, scope: Any) -> Any:
        value = None
        for node in nodes:
            value = node(context, scope)
            if not (value is True or (value is not False and value is not None and truthy(value))):
                return value
        return value

    return all_truthy


def _build_or(args: Any, state: CompileState) -> Node:
    nodes = state.static_args("or", args)
    if not nodes:
        return state.literal(False)
    if len(nodes) == 1:
        return nodes[0]

    def any_truthy(context: Any, scope: Any) -> Any:
        value = None
        for node in nodes:
            value = node(context, scope)
            if value is True or (value is not False and value is not None and truthy(value)):
                return value
        return value

    return any_truthy


def _unary_operand(args: Any, state: CompileState) -> Node | None:
    """The operand of ``!``/``!!``: the first array element, or the argument itself."""
    if isinstance(args, list | tuple):
        return state.compile(args[0]) if args else None
    return state.compile(args)


def _build_not(args: Any, state: CompileState) -> Node:
    operand = _unary_operand(args, state)
    if operand is None:
        return state.literal(True)
    return lambda context, scope: not _is_truthy(operand(context, scope))


def _build_double_not(args: Any, state: CompileState) -> Node:
    operand = _unary_operand(args, state)
    if operand is None:
        return state.literal(False)
    return lambda context, scope: _is_truthy(operand(context, scope))


def _build_coalesce(args: Any, state: CompileState) -> Node:
    if not isinstance(args, list | tuple):
        node = state.compile(args)

        def first_present(context: Any, scope: Any) -> Any:
            for value in _as_values(node(context, scope)):
                if value is not None:
                    return value
            return None

        return first_present
    nodes = [state.compile(arg) for arg in args]

    def coalesce(context: Any, scope: Any) -> Any:
        for node in nodes:
            value = node(context, scope)
            if value is not None:
                return value
        return None

    return coalesce


# --- errors -----------------------------------------------------------------------------------


def _build_throw(args: Any, state: CompileState) -> Node:
    node = state.compile(args)

    def throw(context: Any, scope: Any) -> Any:
        value = node(context, scope)
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        if isinstance(value, Mapping) and "type" in value:
            value = value["type"]
        raise JSONLogicError(value, f"Rule threw {value!r}.")

    return throw


def _raising(error: JSONLogicError) -> Node:
    def raise_again(context: Any, scope: Any) -> Any:
        raise JSONLogicError(error.type, error.message)

    return raise_again


def _build_try(args: Any, state: CompileState) -> Node:
    """``try``: the first branch that does not raise wins. Each fallback runs with the previous
    error ``{"type": ...}`` as its data and the try's own data one scope up."""
    if not isinstance(args, list | tuple):
        return state.compile(args)
    if not args:
        return state.literal(None)

    def branch(arg: Any) -> Node:
        try:
            return state.compile(arg)
        except JSONLogicError as exc:  # a malformed branch is an error try can recover from
            return _raising(exc)

    first = branch(args[0])
    uses_before = state.scope_uses
    fallbacks = [branch(arg) for arg in args[1:]]
    fallbacks_climb = state.scope_uses != uses_before

    def attempt(context: Any, scope: Any) -> Any:
        try:
            return first(context, scope)
        except JSONLogicError as exc:
            error = exc
        except DATA_ERRORS as exc:
            error = error_from(exc)
        for fallback in fallbacks:
            inner_scope = (None, context, scope) if fallbacks_climb else None
            try:
                return fallback({"type": error.type}, inner_scope)
            except JSONLogicError as exc:
                error = exc
            except DATA_ERRORS as exc:
                error = error_from(exc)
        raise error

    return attempt


# --- data access ------------------------------------------------------------------------------


def _var_parts(key: Any) -> tuple[Any, ...] | None:
    """The dotted path a ``var`` key names; None means the whole context."""
    if key is None or key == "" or (isinstance(key, list | tuple) and not key):
        return None
    return tuple(to_string(key).split("."))


def _follow(context: Any, parts: tuple[Any, ...], default: Any) -> Any:
    value = context
    for part in parts:
        if value.__class__ is dict:
            value = value.get(part, MISSING)
        elif value is None:
            return default
        else:
            value = lookup(value, part)
        if value is MISSING:
            return default
    return value


def _build_var(args: Any, state: CompileState) -> Node:
    """``var``: a dotted path into the data, with an optional default for absent keys (a key
    holding ``null`` is present and yields ``null``)."""
    if isinstance(args, list | tuple):
        key_node = state.compile(args[0]) if args else state.literal(None)
        default_node = state.compile(args[1]) if len(args) > 1 else None
    else:
        key_node, default_node = state.compile(args), None
    default_value = state.constant(default_node) if default_node is not None else None
    if default_value is MISSING:
        assert default_node is not None
        lazy_default = default_node

        def var_with_default(context: Any, scope: Any) -> Any:
            parts = _var_parts(key_node(context, scope))
            if parts is None:
                return context
            value = _follow(context, parts, MISSING)
            return lazy_default(context, scope) if value is MISSING else value

        return var_with_default
    key = state.constant(key_node)
    if key is MISSING:
        return lambda context, scope: _follow(
            context, _var_parts(key_node(context, scope)) or (), default_value
        )
    parts = _var_parts(key)
    if parts is None:
        return lambda context, scope: context
    if len(parts) == 1:
        (name,) = parts

        def var_key(context: Any, scope: Any) -> Any:
            if context.__class__ is dict:
                value = context.get(name, MISSING)
                return default_value if value is MISSING else value
            return _follow(context, parts, default_value)

        return var_key
    if len(parts) == 2:
        outer, inner = parts

        def var_two(context: Any, scope: Any) -> Any:
            if context.__class__ is dict:
                value = context.get(outer)
                if value.__class__ is dict:
                    value = value.get(inner, MISSING)
                    return default_value if value is MISSING else value
            return _follow(context, parts, default_value)

        return var_two
    if len(parts) == 3:
        first, second, third = parts

        def var_three(context: Any, scope: Any) -> Any:
            if context.__class__ is dict:
                value = context.get(first)
                if value.__class__ is dict:
                    value = value.get(second)
                    if value.__class__ is dict:
                        value = value.get(third, MISSING)
                        return default_value if value is MISSING else value
            return _follow(context, parts, default_value)

        return var_three

    def var_path(context: Any, scope: Any) -> Any:
        value = context
        for name in parts:
            if value.__class__ is not dict:
                return _follow(context, parts, default_value)
            value = value.get(name, MISSING)
            if value is MISSING:
                return default_value
        return value

    return var_path


def _climb(context: Any, scope: Any, levels: Any) -> Any:
    """The context ``levels`` steps up: enclosing scopes read as one flat list
    ``[meta, outer context, meta, outer context, ...]`` (an iterator's meta holds ``index``)."""
    steps = abs(int(to_number(levels)))
    if steps == 0:
        return context
    position = 1
    frame = scope
    while frame is not None:
        meta, outer, parent = frame
        if position == steps:
            return meta
        if position + 1 == steps:
            return outer
        position += 2
        frame = parent
    return MISSING


def _parse_val(args: Any) -> tuple[Any, list[Any] | None, Any]:
    """Splits evaluated ``val`` arguments into (unary key, path, climb levels)."""
    if isinstance(args, list | tuple):
        if len(args) == 1 and not isinstance(args[0], list | tuple):
            return args[0], None, None
        levels = None
        path = list(args)
        if path and isinstance(path[0], list | tuple) and len(path[0]) == 1:
            levels = path.pop(0)[0]
        return None, path, levels
    return args, None, None


def _resolve_val(context: Any, scope: Any, args: Any) -> Any:
    """``val`` semantics: the value at the path, or MISSING."""
    key, path, levels = _parse_val(args)
    if path is None:
        if key is None:
            return context
        return lookup(context, key)
    value = context if levels is None else _climb(context, scope, levels)
    for part in path:
        if part is None:
            continue
        if value is None:
            return MISSING
        value = lookup(value, part)
        if value is MISSING:
            return MISSING
    return value


def _val_arguments(args: Any, state: CompileState) -> tuple[Node, Any]:
    node = state.compile(args)
    value = state.constant(node)
    if value is MISSING:
        state.scope_uses += 1  # computed paths may climb
    else:
        _, _, levels = _parse_val(value)
        if levels is not None:
            state.scope_uses += 1
    return node, value


def _build_val(args: Any, state: CompileState) -> Node:
    """``val``: a path given as an array of keys (no dot splitting), optionally starting with
    ``[n]`` to climb n scopes; absent values are ``null``."""
    node, value = _val_arguments(args, state)
    if value is MISSING:

        def val_computed(context: Any, scope: Any) -> Any:
            result = _resolve_val(context, scope, node(context, scope))
            return None if result is MISSING else result

        return val_computed
    key, path, _ = _parse_val(value)
    if path is None and key is None:
        return lambda context, scope: context
    if path is None and key.__class__ is str:

        def val_key(context: Any, scope: Any) -> Any:
            if context.__class__ is dict:
                return context.get(key)
            result = lookup(context, key)
            return None if result is MISSING else result

        return val_key

    def val_path(context: Any, scope: Any) -> Any:
        result = _resolve_val(context, scope, value)
        return None if result is MISSING else result

    return val_path


def _build_exists(args: Any, state: CompileState) -> Node:
    """``exists``: whether the ``val`` path is present, even when it holds ``null``."""
    node, value = _val_arguments(args, state)
    if value is MISSING:
        return lambda context, scope: (
            _resolve_val(context, scope, node(context, scope)) is not MISSING
        )
    return lambda context, scope: _resolve_val(context, scope, value) is not MISSING


def _key_paths(keys: Sequence[Any]) -> list[tuple[Any, tuple[Any, ...] | None]]:
    if keys and isinstance(keys[0], list | tuple):
        keys = keys[0]
    return [(key, _var_parts(key)) for key in keys]


def _absent(context: Any, key_paths: list[tuple[Any, tuple[Any, ...] | None]]) -> list[Any]:
    absent = []
    for key, parts in key_paths:
        value = context if parts is None else _follow(context, parts, None)
        if value is None or value == "":
            absent.append(key)
    return absent


def _build_missing(args: Any, state: CompileState) -> Node:
    """``missing``: the keys whose value is absent, ``null`` or ``""``."""
    nodes, dynamic = state.spread_args(args)
    if dynamic is None:
        assert nodes is not None
        keys = [state.constant(node) for node in nodes]
        if all(key is not MISSING for key in keys):
            key_paths = _key_paths(keys)
            return lambda context, scope: _absent(context, key_paths)
        return lambda context, scope: _absent(
            context, _key_paths([node(context, scope) for node in nodes])
        )
    return lambda context, scope: _absent(context, _key_paths(_as_values(dynamic(context, scope))))


def _missing_some(context: Any, values: Sequence[Any]) -> list[Any]:
    if len(values) < 2 or not isinstance(values[1], list | tuple):
        raise invalid_arguments("'missing_some' takes [minimum, [keys...]].")
    need, keys = values[0], values[1]
    absent = _absent(context, _key_paths(keys))
    return [] if len(keys) - len(absent) >= _number(need) else absent


def _build_missing_some(args: Any, state: CompileState) -> Node:
    """``missing_some``: ``[]`` when at least ``minimum`` of the keys are present, else the
    absent ones."""
    nodes, dynamic = state.spread_args(args)
    if dynamic is None:
        assert nodes is not None
        values = [state.constant(node) for node in nodes]
        if len(values) >= 2 and isinstance(values[1], list | tuple) and MISSING not in values:
            need, keys = _number(values[0]), values[1]
            key_paths = _key_paths(keys)
            enough = len(keys) - need

            def missing_some_known(context: Any, scope: Any) -> list[Any]:
                absent = _absent(context, key_paths)
                return [] if len(absent) <= enough else absent

            return missing_some_known
        return lambda context, scope: _missing_some(
            context, [node(context, scope) for node in nodes]
        )
    return lambda context, scope: _missing_some(context, _as_values(dynamic(context, scope)))


# --- iterators --------------------------------------------------------------------------------


def _iterator_parts(
    op: str, args: Any, state: CompileState, body_required: bool
) -> tuple[Node, Node, bool, list[Node]]:
    """Compiles ``[selector, body, *rest]``; reports whether the body climbs scopes."""
    if not isinstance(args, list | tuple) or len(args) < 2:
        raise invalid_arguments(f"{op!r} takes [array, logic].")
    if args[0] is None or (body_required and args[1] is None):
        raise invalid_arguments(f"{op!r} needs an array and logic, got null.")
    selector = state.compile(args[0])
    before = state.scope_uses
    body = state.compile(args[1])
    climbs = state.scope_uses != before
    rest = [state.compile(arg) for arg in args[2:]]
    return selector, body, climbs, rest


def _items(op: str, value: Any, allow_null: bool) -> Sequence[Any]:
    if value.__class__ is list or isinstance(value, list | tuple):
        return value
    if value is None and allow_null:
        return ()
    raise invalid_arguments(f"{op!r} needs an array, got {type(value).__name__}.")


def _build_map(args: Any, state: CompileState) -> Node:
    selector, body, climbs, _ = _iterator_parts("map", args, state, body_required=True)

    def map_items(context: Any, scope: Any) -> list[Any]:
        items = _items("map", selector(context, scope), allow_null=True)
        if climbs:
            return [body(item, ({"index": i}, context, scope)) for i, item in enumerate(items)]
        return [body(item, None) for item in items]

    return map_items


def _build_filter(args: Any, state: CompileState) -> Node:
    selector, body, climbs, _ = _iterator_parts("filter", args, state, body_required=True)

    def filter_items(context: Any, scope: Any) -> list[Any]:
        items = _items("filter", selector(context, scope), allow_null=True)
        if climbs:
            return [
                item
                for i, item in enumerate(items)
                if _is_truthy(body(item, ({"index": i}, context, scope)))
            ]
        return [item for item in items if _is_truthy(body(item, None))]

    return filter_items


def _build_reduce(args: Any, state: CompileState) -> Node:
    """``reduce``: the body sees ``{"current", "accumulator"}``; without an initial value the
    first item starts the accumulator."""
    selector, body, climbs, rest = _iterator_parts("reduce", args, state, body_required=True)
    initial = rest[0] if rest else None

    def reduce_items(context: Any, scope: Any) -> Any:
        accumulator = initial(context, scope) if initial is not None else MISSING
        items = _items("reduce", selector(context, scope), allow_null=True)
        start = 0
        if accumulator is MISSING:
            if not items:
                return None
            accumulator, start = items[0], 1
        for i in range(start, len(items)):
            inner_scope = ({"index": i}, context, scope) if climbs else None
            accumulator = body({"current": items[i], "accumulator": accumulator}, inner_scope)
        return accumulator

    return reduce_items


def _quantifier(op: str, stop_when: bool, result_on_stop: bool, empty: bool) -> OperatorBuilder:
    """``all`` / ``some`` / ``none``: stop at the first item whose truthiness is ``stop_when``.

    The selector must yield an array (a missing one is an error, unlike ``map``), and an empty
    array is ``empty`` (``all`` of nothing is false, as the suites require).
    """

    def build(args: Any, state: CompileState) -> Node:
        selector, body, climbs, _ = _iterator_parts(op, args, state, body_required=False)

        def quantify(context: Any, scope: Any) -> bool:
            items = _items(op, selector(context, scope), allow_null=False)
            if not items:
                return empty
            for i, item in enumerate(items):
                inner_scope = ({"index": i}, context, scope) if climbs else None
                if _is_truthy(body(item, inner_scope)) is stop_when:
                    return result_on_stop
            return not result_on_stop

        return quantify

    return build


# --- strings and arrays -----------------------------------------------------------------------


def _concatenate(values: Sequence[Any]) -> str:
    return "".join([value if value.__class__ is str else to_string(value) for value in values])


def _build_cat(args: Any, state: CompileState) -> Node:
    """``cat``: strings joined, with ``null`` as nothing; constant pieces are converted once."""
    nodes, dynamic = state.spread_args(args)
    if dynamic is not None:
        return _values_node(_concatenate, nodes, dynamic)
    assert nodes is not None
    pieces: list[str | Node] = []
    for node in nodes:
        value = state.constant(node)
        pieces.append(node if value is MISSING else to_string(value))

    def concatenate(context: Any, scope: Any) -> str:
        out = []
        for piece in pieces:
            if piece.__class__ is str:
                out.append(piece)
            else:
                value = piece(context, scope)  # type: ignore[operator]
                out.append(value if value.__class__ is str else to_string(value))
        return "".join(out)

    return concatenate


def _substring(values: Sequence[Any]) -> str:
    """JavaScript's ``String.prototype.substr``; a negative length trims from the end."""
    if not values:
        return ""
    text = to_string(values[0]) if values[0] is not None else "null"
    size = len(text)
    start = _integer(values[1]) if len(values) > 1 else 0
    start = max(size + start, 0) if start < 0 else min(start, size)
    if len(values) < 3 or values[2] is None:
        return text[start:]
    length = _integer(values[2])
    if length < 0:
        return text[start : max(size + length, start)]
    return text[start : min(start + length, size)]


def _integer(value: Any) -> int:
    """ToIntegerOrInfinity, with NaN as 0 as JavaScript's string methods do."""
    try:
        number = to_number(value)
    except JSONLogicError:
        return 0
    if number != number:
        return 0
    if number in (math.inf, -math.inf):
        return 10**18 if number > 0 else -(10**18)
    return int(number)


def _merge(values: Sequence[Any]) -> list[Any]:
    merged: list[Any] = []
    for value in values:
        if isinstance(value, list | tuple):
            merged.extend(value)
        else:
            merged.append(value)
    return merged


def _contains(container: Any, item: Any) -> bool:
    """``in``: substring of a string, or strict membership in an array."""
    if isinstance(container, str):
        needle = item if item.__class__ is str else ("null" if item is None else to_string(item))
        return needle in container
    if isinstance(container, list | tuple):
        if item.__class__ is str:
            return item in container
        return any(strict_equals(item, element) for element in container)
    return False


def _build_in(args: Any, state: CompileState) -> Node:
    nodes, dynamic = state.spread_args(args)
    if dynamic is not None:

        def contains_computed(context: Any, scope: Any) -> bool:
            values = _as_values(dynamic(context, scope))
            return len(values) >= 2 and _contains(values[1], values[0])

        return contains_computed
    assert nodes is not None
    if len(nodes) < 2:
        return state.literal(False)
    needle, haystack = nodes[0], nodes[1]
    known = state.constant(haystack)
    if isinstance(known, list | tuple) and known and all(v.__class__ is str for v in known):
        choices = frozenset(known)

        def in_choices(context: Any, scope: Any) -> bool:
            value = needle(context, scope)
            return value.__class__ is str and value in choices

        return in_choices
    return lambda context, scope: _contains(haystack(context, scope), needle(context, scope))


def _build_preserve(args: Any, state: CompileState) -> Node:
    """``preserve``: its argument as data, never evaluated."""
    return state.literal(args)


def _log(values: Sequence[Any]) -> Any:
    value = values[0] if values else None
    logger.info("JSON Logic log: %r", value)
    return value


# Operators whose result depends on the data (or that act), which constant folding must skip.
READS_DATA: frozenset[str] = frozenset(
    {"var", "val", "exists", "missing", "missing_some", "throw", "log"}
)

OPERATORS: dict[str, OperatorBuilder] = {
    # data
    "var": _build_var,
    "val": _build_val,
    "exists": _build_exists,
    "missing": _build_missing,
    "missing_some": _build_missing_some,
    "preserve": _build_preserve,
    # logic
    "if": _build_if,
    "?:": _build_if,
    "and": _build_and,
    "or": _build_or,
    "!": _build_not,
    "!!": _build_double_not,
    "??": _build_coalesce,
    "try": _build_try,
    "throw": _build_throw,
    # comparison
    "==": _equality("==", loose_equals, negate=False),
    "!=": _equality("!=", loose_equals, negate=True),
    "===": _equality("===", strict_equals, negate=False),
    "!==": _equality("!==", strict_equals, negate=True),
    "<": _ordering("<", operator.lt),
    "<=": _ordering("<=", operator.le),
    ">": _ordering(">", operator.gt),
    ">=": _ordering(">=", operator.ge),
    # arithmetic
    "+": _build_plus,
    "-": _build_minus,
    "*": _value_operator(_multiply),
    "/": _build_divide,
    "%": _build_modulo,
    "max": _value_operator(_extreme(max)),
    "min": _value_operator(_extreme(min)),
    # strings and arrays
    "cat": _build_cat,
    "substr": _value_operator(_substring),
    "in": _build_in,
    "merge": _value_operator(_merge),
    "map": _build_map,
    "filter": _build_filter,
    "reduce": _build_reduce,
    "all": _quantifier("all", stop_when=False, result_on_stop=False, empty=False),
    "some": _quantifier("some", stop_when=True, result_on_stop=True, empty=False),
    "none": _quantifier("none", stop_when=True, result_on_stop=False, empty=True),
    "log": _value_operator(_log),
}
