"""``filter_tags`` queries compiled to one SQL condition with the same answer on SQLite and PostgreSQL.

A filter is a JSON object; its entries are ANDed. An entry is either a field condition or a combinator:

* ``{"key": scalar}`` - the value stored at ``key`` equals ``scalar``. Equality is JSON-typed: the string
  ``"1"`` is not the number ``1``, ``true`` is not ``1``, numbers compare numerically (``1 == 1.0``), and
  ``null`` means "the key is present with JSON null".
* ``{"key": {"$op": value, ...}}`` - every operator must hold:
  ``$eq``; ``$ne`` (also true when the key is missing); ``$in`` / ``$nin`` (a list of scalars; an empty
  ``$in`` matches nothing, an empty ``$nin`` everything; ``$nin`` also matches a missing key);
  ``$contains`` (the stored value is an array with an element equal to the scalar, JSON-typed as above);
  ``$exists`` (``true``/``false``; a key holding null exists); ``$gt $gte $lt $lte`` with a number or a
  string: numbers compare numerically with stored numbers only, strings by code point with stored
  strings only; a stored value of any other type never matches.
* ``{"$and": [filter, ...]}``, ``{"$or": [filter, ...]}`` (non-empty lists) and ``{"$not": filter}``,
  wherever a filter is expected. Negations match rows where the negated filter does not match,
  missing keys included.

Keys are single top-level keys (a dot is a literal character, not a path) matching ``KEY_PATTERN``.
Keys and values only ever reach the database as bound parameters. A row whose tags are not a JSON
object has no keys. Malformed filters raise `FilterError`, whose message is meant for the API caller.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, false, func, literal, or_, select, true, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from mirix.errors import UnprocessableError

__all__ = ["FilterError", "KEY_PATTERN", "MAX_CONDITIONS", "MAX_DEPTH", "compile_filter_tags", "validate_filter_tags"]

KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
MAX_DEPTH = 8  # the top-level filter is depth 1; each $and/$or element or $not operand adds one
MAX_CONDITIONS = 50  # field comparisons in total; every value of a $in/$nin list counts as one
_INT64 = 2**63

_FIELD_OPS = ("$eq", "$ne", "$in", "$nin", "$contains", "$exists", "$gt", "$gte", "$lt", "$lte")
_COMBINATORS = ("$and", "$or", "$not")
_RANGE_SQL: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}

Scalar = str | int | float | bool | None


class FilterError(UnprocessableError, ValueError):
    """A malformed ``filter_tags`` query. The message is shown to the caller (HTTP 422)."""


# --- parsing: JSON → a small tree of positive leaves under and/or/not ---------------------------------


@dataclass(frozen=True)
class _Leaf:
    key: str
    op: str  # "eq", "in", "contains", "exists" or one of _RANGE_SQL
    value: Any  # a scalar; a tuple of scalars for "in"; unused for "exists"


@dataclass(frozen=True)
class _Bool:
    op: str  # "and", "or", "not"
    children: tuple[_Node, ...]


_Node = _Leaf | _Bool


def _not(node: _Node) -> _Node:
    return _Bool("not", (node,))


def _kind(value: Any) -> str:
    """What a caller sent, in JSON words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    return "an array" if isinstance(value, list | tuple) else f"a {type(value).__name__}"


class _Parser:
    def __init__(self) -> None:
        self.conditions = 0

    def filter(self, obj: Any, where: str, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise FilterError(f"filter_tags is nested deeper than {MAX_DEPTH} levels (at {where})")
        if not isinstance(obj, Mapping):
            raise FilterError(f"{where} must be a filter object, not {_kind(obj)}")
        if not obj:
            raise FilterError(f"{where} is an empty filter object")
        parts = [self._entry(key, value, f"{where}.{key}", depth) for key, value in obj.items()]
        return parts[0] if len(parts) == 1 else _Bool("and", tuple(parts))

    def _entry(self, key: Any, value: Any, where: str, depth: int) -> _Node:
        if isinstance(key, str) and key.startswith("$"):
            if key == "$not":
                return _not(self.filter(value, where, depth + 1))
            if key in ("$and", "$or"):
                if not isinstance(value, list | tuple) or not value:
                    raise FilterError(f"{where} must be a non-empty array of filter objects")
                items = (self.filter(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
                return _Bool(key[1:], tuple(items))
            if key in _FIELD_OPS:
                example = json.dumps({"key": {key: "..."}})
                raise FilterError(f"Operator '{key}' cannot stand in place of a key (at {where}); write {example}")
            raise FilterError(f"Unknown filter_tags operator {_show(key)}; supported here: {', '.join(_COMBINATORS)}")
        key = _check_key(key, where)
        if not isinstance(value, Mapping):
            self._count(1, where)
            return _Leaf(key, "eq", _scalar(value, where, hint=" (use $in to match any of several values)"))
        if not value:
            raise FilterError(f"Condition for '{key}' is an empty object (at {where}); use an operator such as $eq")
        if not all(isinstance(op, str) and op.startswith("$") for op in value):
            raise FilterError(
                f"Nested objects are not supported in filter_tags (at {where}); "
                f"a condition object holds only operators: {', '.join(_FIELD_OPS)}"
            )
        parts = [self._operator(key, op, arg, f"{where}.{op}") for op, arg in value.items()]
        return parts[0] if len(parts) == 1 else _Bool("and", tuple(parts))

    def _operator(self, key: str, op: str, arg: Any, where: str) -> _Node:
        if op in _COMBINATORS:
            raise FilterError(
                f"'{op}' combines filters and cannot appear inside the condition for '{key}' (at {where}); "
                f'put it around field conditions, e.g. {{"{op}": ...}} at the filter level'
            )
        if op not in _FIELD_OPS:
            raise FilterError(f"Unknown filter_tags operator {_show(op)}; supported: {', '.join(_FIELD_OPS)}")
        if op in ("$in", "$nin"):
            if not isinstance(arg, list | tuple):
                raise FilterError(f"The value of {op} must be an array of scalars, not {_kind(arg)} (at {where})")
            self._count(max(1, len(arg)), where)
            values = tuple(_scalar(v, f"{where}[{i}]") for i, v in enumerate(arg))
            leaf = _Leaf(key, "in", values)
            return leaf if op == "$in" else _not(leaf)
        self._count(1, where)
        if op == "$exists":
            if not isinstance(arg, bool):
                raise FilterError(f"The value of $exists must be true or false, not {_kind(arg)} (at {where})")
            leaf = _Leaf(key, "exists", None)
            return leaf if arg else _not(leaf)
        if op in _RANGE_SQL:
            if isinstance(arg, bool) or not isinstance(arg, int | float | str):
                raise FilterError(f"The value of {op} must be a number or a string, not {_kind(arg)} (at {where})")
            return _Leaf(key, op, _scalar(arg, where))
        value = _scalar(arg, where)
        if op == "$contains":
            return _Leaf(key, "contains", value)
        return _Leaf(key, "eq", value) if op == "$eq" else _not(_Leaf(key, "eq", value))

    def _count(self, n: int, where: str) -> None:
        self.conditions += n
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(f"filter_tags has more than {MAX_CONDITIONS} conditions (at {where})")


def _show(text: str, limit: int = 70) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise FilterError(f"filter_tags keys must be strings, not {_kind(key)} (at {where})")
    if not KEY_PATTERN.fullmatch(key):  # fullmatch: re's "$" would accept a trailing newline
        raise FilterError(f"Invalid filter_tags key {_show(key)}: keys are 1 to 64 characters from A-Z a-z 0-9 _ . : -")
    return key


def _scalar(value: Any, where: str, hint: str = "") -> Scalar:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise FilterError(f"Integer out of the 64-bit range (at {where})")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"Numbers must be finite (at {where})")
        return value
    if isinstance(value, str):
        # PostgreSQL's jsonb cannot hold NUL, and lone surrogates are not UTF-8: reject both everywhere.
        if "\x00" in value:
            raise FilterError(f"Strings must not contain NUL characters (at {where})")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FilterError(f"Strings must be valid Unicode (at {where})") from None
        return value
    raise FilterError(f"Expected a string, number, boolean or null at {where}, not {_kind(value)}{hint}")


def _parse(tags: Any) -> _Node | None:
    if tags is None:
        return None
    if not isinstance(tags, Mapping):
        raise FilterError(f"filter_tags must be a JSON object, not {_kind(tags)}")
    return _Parser().filter(tags, "filter_tags", 1) if tags else None


def validate_filter_tags(tags: Any) -> dict[str, Any]:
    """Check the shape of a filter (see the module docstring) and return it as a dict; ``None`` → ``{}``."""
    _parse(tags)
    return dict(tags or {})


# --- compiling: one leaf builder per dialect; and/or/not are shared --------------------------------------


def compile_filter_tags(column: Any, tags: Mapping[str, Any] | None, dialect: str) -> ColumnElement[bool] | None:
    """The SQL condition for ``tags`` over the JSON ``column``; ``None`` when there is nothing to filter.

    ``dialect`` is ``"sqlite"`` or ``"postgresql"``. Raises `FilterError` for a malformed filter.
    """
    builders: dict[str, Callable[[Any], Callable[[_Leaf], ColumnElement[bool]]]] = {
        "sqlite": _sqlite_leaf,
        "postgresql": _postgres_leaf,
    }
    if dialect not in builders:
        raise ValueError(f"compile_filter_tags supports sqlite and postgresql, not {dialect!r}")
    tree = _parse(tags)
    return None if tree is None else _emit(tree, builders[dialect](column))


def _emit(node: _Node, leaf: Callable[[_Leaf], ColumnElement[bool]]) -> ColumnElement[bool]:
    if isinstance(node, _Leaf):
        if node.op == "in":
            return or_(*(leaf(_Leaf(node.key, "eq", v)) for v in node.value)) if node.value else false()
        return leaf(node)
    parts = [_emit(child, leaf) for child in node.children]
    if node.op == "not":
        # A leaf is NULL where the column is NULL; IS NOT TRUE keeps such rows out of the positive
        # side, so that NULL behaves exactly like false all the way up.
        return parts[0].is_not(true())
    return and_(*parts) if node.op == "and" else or_(*parts)


def _sqlite_leaf(column: Any) -> Callable[[_Leaf], ColumnElement[bool]]:
    def typed_equal(json_type: Any, sql_value: Any, value: Scalar) -> ColumnElement[bool]:
        # json_type() tells true/false/integer apart where the SQL value of true is just 1.
        if value is None or isinstance(value, bool):
            return json_type == json.dumps(value)
        if isinstance(value, str):
            return and_(json_type == "text", sql_value == literal(value))
        return and_(json_type.in_(["integer", "real"]), sql_value == literal(value))

    def build(leaf: _Leaf) -> ColumnElement[bool]:
        path = literal(f'$."{leaf.key}"')  # keys cannot hold '"' (KEY_PATTERN); still bound
        json_type, value = func.json_type(column, path), func.json_extract(column, path)
        if leaf.op == "exists":
            return json_type.is_not(None)
        if leaf.op == "eq":
            return typed_equal(json_type, value, leaf.value)
        if leaf.op == "contains":
            elements = func.json_each(column, path).table_valued("value", "type")
            match = select(literal(1)).select_from(elements)
            match = match.where(typed_equal(elements.c.type, elements.c.value, leaf.value))
            return and_(json_type == "array", match.exists())
        wanted = "text" if isinstance(leaf.value, str) else ("integer", "real")
        type_ok = json_type == wanted if isinstance(wanted, str) else json_type.in_(wanted)
        return and_(type_ok, _RANGE_SQL[leaf.op](value, literal(leaf.value)))

    return build


def _postgres_leaf(column: Any) -> Callable[[_Leaf], ColumnElement[bool]]:
    tags = type_coerce(column, JSONB)

    def jsonb(value: Any) -> Any:
        return cast(literal(json.dumps(value)), JSONB)

    def build(leaf: _Leaf) -> ColumnElement[bool]:
        # Equality and $contains are jsonb containment (@>): a GIN index on the column serves them.
        # Containment compares numbers numerically and keeps JSON types apart, as the grammar wants.
        if leaf.op == "eq":
            return tags.contains(jsonb({leaf.key: leaf.value}))
        if leaf.op == "contains":
            return tags.contains(jsonb({leaf.key: [leaf.value]}))
        if leaf.op == "exists":
            # `?` alone would also match a string element of a top-level array.
            return and_(func.jsonb_typeof(tags) == "object", tags.has_key(leaf.key))
        stored = tags[leaf.key]
        compare = _RANGE_SQL[leaf.op]
        if isinstance(leaf.value, str):
            # Byte order of UTF-8 = code point order = SQLite's BINARY collation.
            text = stored.astext.collate("C")
            return and_(func.jsonb_typeof(stored) == "string", compare(text, literal(leaf.value)))
        # jsonb compares numbers numerically and never fails on other types, unlike a ::numeric cast.
        return and_(func.jsonb_typeof(stored) == "number", compare(stored, jsonb(leaf.value)))

    return build
