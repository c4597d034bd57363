"""Value semantics of JSON Logic: truthiness, number and string coercion, equality, ordering and
data lookup.

JSON Logic was born in JavaScript and its compat-tables suites pin JavaScript's behaviour, with a
few deliberate departures (arrays are falsy when empty, comparing arrays or objects is an error
instead of a silent ``false``). These functions are the single place where that behaviour is
written down, so the compiler in :mod:`jsonlogic_compiler` never improvises coercions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from numbers import Real
from typing import Any, Final

from automate_core.errors import AutomateError

__all__ = [
    "MISSING",
    "JSONLogicError",
    "invalid_arguments",
    "lookup",
    "loose_equals",
    "nan_error",
    "number_pair",
    "strict_equals",
    "to_number",
    "to_string",
    "truthy",
]


class JSONLogicError(AutomateError):
    """A rule failed to compile or to evaluate.

    ``type`` says what went wrong in the words of the conformance suites: ``"NaN"`` (a value could
    not be used as a number), ``"Invalid Arguments"`` (an operator got arguments of the wrong
    shape), ``"Unknown Operator"``, ``"Invalid Rule"`` (not JSON), or whatever value a ``throw``
    operator threw. ``try`` catches these errors and exposes ``{"type": type}`` to its fallbacks.
    """

    status_code = 400
    code = "rule_error"
    default_message = "The rule could not be evaluated."

    def __init__(self, error_type: Any, message: str | None = None) -> None:
        self.type = error_type
        super().__init__(
            message or f"JSON Logic error: {error_type!r}", details={"type": error_type}
        )


def nan_error() -> JSONLogicError:
    """The error for a value that cannot be a number (JavaScript would have produced NaN)."""
    return JSONLogicError("NaN", "A value could not be used as a number.")


def invalid_arguments(message: str) -> JSONLogicError:
    return JSONLogicError("Invalid Arguments", message)


class _Missing:
    """Marks a path that does not exist, which is not the same as a path holding ``null``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def truthy(value: Any) -> bool:
    """JavaScript truthiness, except that an empty array is falsy (JSON Logic's one rule change).

    Objects are always truthy, even empty ones; ``0``, ``""``, ``null``, ``false`` and ``[]`` are
    falsy.
    """
    if value is True:
        return True
    if value is False or value is None:
        return False
    cls = value.__class__
    if cls is dict:
        return True
    if cls is list or cls is str or cls is int:
        return bool(value)
    if cls is float:
        return value == value and value != 0.0  # NaN is falsy
    if isinstance(value, Mapping):
        return True
    return bool(value)


# JavaScript's StrWhiteSpaceChar: what Number(" 12 ") strips before parsing.
_JS_WHITESPACE: Final = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_INTEGER_RE: Final = re.compile(r"[+-]?[0-9]+")
_DECIMAL_RE: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RADIX_RE: Final = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_INFINITY: Final = {"Infinity": math.inf, "+Infinity": math.inf, "-Infinity": -math.inf}


def _string_to_number(text: str) -> int | float:
    """``Number(text)`` in JavaScript, raising NaN where JavaScript would produce NaN."""
    text = text.strip(_JS_WHITESPACE)
    if not text:
        return 0
    if _INTEGER_RE.fullmatch(text):
        return int(text)
    if _DECIMAL_RE.fullmatch(text):
        return float(text)
    if _RADIX_RE.fullmatch(text):
        return int(text, 0)
    if text in _INFINITY:
        return _INFINITY[text]
    raise nan_error()


def to_number(value: Any) -> int | float:
    """``Number(value)`` for JSON values: null is 0, booleans are 0/1, strings are parsed.

    Arrays and objects raise NaN rather than going through JavaScript's string conversion, as the
    suites require (``{"+": [[1], 1]}`` is an error, not 2).
    """
    cls = value.__class__
    if cls is int or cls is float:
        return value
    if cls is bool:
        return 1 if value else 0
    if value is None:
        return 0
    if cls is str:
        return _string_to_number(value)
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, str):
        return _string_to_number(str(value))
    raise nan_error()


def _format_number(number: int | float) -> str:
    """JavaScript's Number::toString: ``2.0`` is ``"2"``, ``1e-7`` is ``"1e-7"``."""
    if isinstance(number, int):
        return str(int(number))
    if number != number:
        return "NaN"
    if number in (math.inf, -math.inf):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    # repr gives the shortest digits that round-trip, as ECMAScript asks for.
    _, digit_tuple, exponent = Decimal(repr(abs(number))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    k = len(digits)
    n = len(digit_tuple) + int(exponent)  # value = 0.<digits> * 10**n
    prefix = "-" if number < 0 else ""
    if k <= n <= 21:
        return prefix + digits + "0" * (n - k)
    if 0 < n <= 21:
        return prefix + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return prefix + "0." + "0" * (-n) + digits
    power = n - 1
    body = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{prefix}{body}e{'+' if power >= 0 else '-'}{abs(power)}"


def to_string(value: Any) -> str:
    """``String(value)`` in JavaScript, with null as the empty string (as ``cat`` wants)."""
    cls = value.__class__
    if cls is str:
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if cls is int or cls is float:
        return _format_number(value)
    if isinstance(value, list | tuple):
        return ",".join(to_string(item) for item in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    if isinstance(value, Real):
        return _format_number(value)  # type: ignore[arg-type]
    return str(value)


def _json_kind(value: Any) -> str:
    """The JSON type of a value: ``1 === true`` is false although ``1 == True`` in Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Real):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def strict_equals(a: Any, b: Any) -> bool:
    """``===``: same JSON type and same value. Arrays and objects compare by structure."""
    ca = a.__class__
    if ca is b.__class__ and (ca is str or ca is int or ca is bool or a is None):
        return a == b
    kind = _json_kind(a)
    if kind != _json_kind(b):
        return False
    if kind == "array":
        return len(a) == len(b) and all(strict_equals(x, y) for x, y in zip(a, b, strict=True))
    if kind == "object":
        return a.keys() == b.keys() and all(strict_equals(a[k], b[k]) for k in a)
    return bool(a == b)


def _is_container(value: Any) -> bool:
    return isinstance(value, list | tuple | Mapping)


def number_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Coerce two operands of an ordering comparison the way the suites expect.

    Two strings compare as strings (so ISO dates order correctly); otherwise both become
    numbers, null counting as 0. Arrays, objects and non-numeric strings raise NaN.
    """
    if a.__class__ is str and b.__class__ is str:
        return a, b
    if _is_container(a) or _is_container(b):
        raise nan_error()
    return to_number(a), to_number(b)


def loose_equals(a: Any, b: Any) -> bool:
    """``==``: numbers and numeric strings compare by value, ``null == 0`` is true.

    Departing from JavaScript, ``null`` never equals a string, so a missing field compared with a
    word is simply false rather than an error; comparing arrays or objects raises NaN.
    """
    ca, cb = a.__class__, b.__class__
    if ca is cb and (ca is str or ca is int or ca is float or ca is bool):
        return a == b
    if a is None or b is None:
        if a is None and b is None:
            return True
        other = b if a is None else a
        if isinstance(other, str):
            return False
    x, y = number_pair(a, b)
    return bool(x == y)


def _array_index(key: Any) -> int | None:
    """The array index a JavaScript property key names, or None (``"01"`` and ``-1`` name none)."""
    if key.__class__ is int:
        return key if key >= 0 else None
    if isinstance(key, str):
        if key.isdigit() and key.isascii() and (key == "0" or key[0] != "0"):
            return int(key)
        return None
    if isinstance(key, float) and key.is_integer() and key >= 0:
        return int(key)
    return None


def lookup(container: Any, key: Any) -> Any:
    """``container[key]`` with JavaScript property semantics; :data:`MISSING` when absent.

    Object keys are strings (``1`` reads key ``"1"``); arrays take non-negative integer indexes,
    given as numbers or canonical digit strings. Anything else holds no properties.
    """
    if container.__class__ is dict and key.__class__ is str:
        return container.get(key, MISSING)
    if isinstance(container, Mapping):
        if key.__class__ is not str:
            key = to_string(key) if key is not None else "null"
        return container.get(key, MISSING)
    if isinstance(container, list | tuple):
        index = _array_index(key)
        if index is None or index >= len(container):
            return MISSING
        return container[index]
    return MISSING
