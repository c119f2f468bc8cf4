"""TOML files users write (scoring policies, listing rules): read with clean refusals.

:func:`parse_toml` turns bytes into the document, refusing text that is not UTF-8 or not
TOML, and a document nested deeper than :data:`MAX_DEPTH` (``tomllib`` recurses, so
2,000 nested arrays would end in a ``RecursionError``) with one message. The types
:data:`Number`, :data:`Integer` and :data:`Boolean` keep TOML's booleans, numbers and
strings apart: pydantic's lax mode reads ``true`` as 1, ``1`` as true, ``"0.8"`` as 0.8
and ``2.0`` as 2.

>>> parse_toml(b"a = [[1]]", "x.toml", ValueError, "not valid TOML")
{'a': [[1]]}
>>> parse_toml(b"a = " + b"[" * 40 + b"]" * 40, "x.toml", ValueError, "not valid TOML")
Traceback (most recent call last):
...
ValueError: x.toml: nested too deeply: more than 32 levels of tables and arrays
"""

from __future__ import annotations

import math
import tomllib
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["MAX_DEPTH", "Boolean", "Integer", "Number", "parse_toml"]

#: The deepest nesting of tables and arrays accepted (a rule or policy needs three).
MAX_DEPTH = 32


def _depth(document: dict[str, Any]) -> int:
    """How deeply tables and arrays nest in ``document`` (itself depth 1), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def parse_toml(
    raw: bytes, source: str, error: type[Exception], invalid: str = "not valid TOML"
) -> dict[str, Any]:
    """The TOML document in ``raw``; refused with ``error("SOURCE: ...")`` when it is not
    UTF-8 (``invalid``: the parser's reason), not TOML, or nested too deeply. A UTF-8
    byte-order mark opening the file (some editors save one) is read as nothing, as in
    a data folder's tables (docs/contract.md section 1).

    >>> parse_toml(b"\\xef\\xbb\\xbfa = 1\\r\\n", "x.toml", ValueError)
    {'a': 1}
    """
    too_deep = f"{source}: nested too deeply: more than {MAX_DEPTH} levels of tables and arrays"
    try:
        document = tomllib.loads(raw.decode("utf-8").removeprefix("\ufeff"))
    except RecursionError:
        raise error(too_deep) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{source}: {invalid}: {exc}") from None
    if _depth(document) > MAX_DEPTH:
        raise error(too_deep)
    return document


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not a boolean ({str(value).lower()})")
    return value


def _a_number(value: Any) -> Any:
    """``value`` when TOML wrote it as a finite number (not a boolean, a string, nan or inf).

    >>> _a_number(1), _a_number(0.5)
    (1, 0.5)
    >>> _a_number("0.8")
    Traceback (most recent call last):
    ...
    ValueError: expected a number, not the text '0.8'
    """
    _not_a_boolean(value)
    if not isinstance(value, int | float):
        raise ValueError(f"expected a number, not {_kind_of(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, not {value}")
    return value


def _an_integer(value: Any) -> Any:
    """``value`` when TOML wrote it as a whole number (``3``, not ``3.0`` or ``"3"``).

    >>> _an_integer(3)
    3
    >>> _an_integer(2.0)
    Traceback (most recent call last):
    ...
    ValueError: expected a whole number, not 2.0
    """
    _not_a_boolean(value)
    if not isinstance(value, int):
        shown = str(value) if isinstance(value, float) else _kind_of(value)
        raise ValueError(f"expected a whole number, not {shown}")
    return value


def _kind_of(value: Any) -> str:
    """How a refusal names a value that is no number: a text quoted, else its type."""
    return f"the text {value!r}" if isinstance(value, str) else f"a {type(value).__name__}"


def _a_boolean(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, not {value!r}")
    return value


#: a float field that takes only a finite TOML number: not ``true``/``false``, a string,
#: ``nan`` or ``inf`` (an integer is still a number)
Number = Annotated[float, BeforeValidator(_a_number)]
#: an int field that takes only a TOML integer: not ``true``/``false``, ``2.0`` or ``"2"``
Integer = Annotated[int, BeforeValidator(_an_integer)]
#: a bool field that takes only ``true``/``false`` (not 1, 0 or "yes")
Boolean = Annotated[bool, BeforeValidator(_a_boolean)]
