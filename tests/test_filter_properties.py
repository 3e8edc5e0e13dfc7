"""Randomized property test of the ``filter_tags`` grammar (mirix/search/filters.py) over HTTP.

A small reference evaluator below states the grammar's documented semantics in plain Python. Random
documents are imported as memories of all five kinds; for random filters (nested up to three filter
objects deep) the ids ``GET /memory/search`` returns must be exactly the documents the reference
accepts. The suite runs once on SQLite and once on PostgreSQL against the same reference, so passing
on both shows the two dialects agree with each other, not just with themselves.

The reference follows the module docstring, including where SQL or Python would do otherwise:

* equality is JSON-typed: ``"1"`` is not ``1``, ``true`` is not ``1`` (Python's ``True == 1`` is not
  used), numbers compare numerically (``1 == 1.0``), ``null`` means "present and null";
* ``$ne``, ``$nin``, ``$exists: false`` and ``$not`` match rows where the key is missing (SQL's
  three-valued logic would drop them);
* ``$contains`` needs a stored array; a stored string never "contains" anything;
* ranges compare numbers with stored numbers only and strings with stored strings only, by code point
  (not by any locale's collation); booleans are not numbers; any other stored type never matches.
"""

from __future__ import annotations

import json
import operator
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mirix.search.filters import MAX_CONDITIONS
from mirix.server.server import AsyncServer
from mirix.services.memory.kinds import SEARCHABLE
from tests.support import Tenant
from tests.test_filters import CASES, ROWS

SEED = 20240501
N_DOCUMENTS = 150
N_FILTERS = 300
MAX_FILTER_DEPTH = 3  # filter objects, the top level counting as one

# --- the reference ----------------------------------------------------------------------------------

MISSING = object()

RANGES: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(stored: Any, value: Any) -> bool:
    """Equality of a stored JSON value with a filter scalar, JSON-typed."""
    if value is None:
        return stored is None
    if isinstance(value, bool):
        return isinstance(stored, bool) and stored == value
    if isinstance(value, str):
        return isinstance(stored, str) and stored == value
    return is_number(stored) and stored == value


def condition(stored: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return json_equal(stored, arg)
    if op == "$ne":
        return not json_equal(stored, arg)
    if op == "$in":
        return any(json_equal(stored, v) for v in arg)
    if op == "$nin":
        return not any(json_equal(stored, v) for v in arg)
    if op == "$contains":
        return isinstance(stored, list) and any(json_equal(element, arg) for element in stored)
    if op == "$exists":
        return (stored is not MISSING) == arg
    if isinstance(arg, str):
        return isinstance(stored, str) and RANGES[op](stored, arg)  # str order is code point order
    return is_number(stored) and RANGES[op](stored, arg)


def matches(document: Any, tags: dict[str, Any]) -> bool:
    """Whether stored filter_tags ``document`` satisfy filter ``tags`` (entries are ANDed)."""
    for key, value in tags.items():
        if key == "$and":
            ok = all(matches(document, sub) for sub in value)
        elif key == "$or":
            ok = any(matches(document, sub) for sub in value)
        elif key == "$not":
            ok = not matches(document, value)
        else:
            # A dot is part of the key, not a path; a document that is not an object has no keys.
            stored = document.get(key, MISSING) if isinstance(document, dict) else MISSING
            if isinstance(value, dict):
                ok = all(condition(stored, op, arg) for op, arg in value.items())
            else:
                ok = json_equal(stored, value)
        if not ok:
            return False
    return True


@pytest.mark.parametrize(("tags", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_reference_agrees_with_the_curated_table(tags: dict[str, Any], expected: set[str]) -> None:
    """The reference reproduces test_filters.py's hand-written expectations (which both dialects
    pass), so it can be trusted as the oracle for the random cases."""
    assert {label for label, document in ROWS.items() if matches(document, tags)} == expected


# --- random documents and filters -------------------------------------------------------------------

# "A" and "a" are different keys; "x.y" is one key, not a path. "missing" is never stored.
KEYS = ["a", "A", "b", "n", "tags", "x.y"]
FILTER_KEYS = [*KEYS, "missing"]
STRINGS = ["", "a", "A", "ab", "b", "z", "Z", " a", "1", "10", "2", "true", "null", "é", "😀", "2024-05-01"]
INTS = [-3, -1, 0, 1, 2, 10, 2**40]
FLOATS = [-1.5, -0.0, 0.001, 0.5, 1.0, 2.5, 10.0]
BOOLS = [True, False]
SCALARS: list[Any] = [*STRINGS, *INTS, *FLOATS, *BOOLS, None]
# Stored values a filter can only test for presence (or, in the arrays, element-wise).
ODD_VALUES: list[Any] = [[1, "1", True, None, 2.5], [["a"], {"a": 1}], {"a": 1}, [], [0, False], ["a", "a"]]


def random_value(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.28:
        return rng.choice(STRINGS)
    if r < 0.46:
        return rng.choice(INTS)
    if r < 0.58:
        return rng.choice(FLOATS)
    if r < 0.68:
        return rng.choice(BOOLS)
    if r < 0.88:
        return rng.sample(STRINGS, rng.randint(0, 3))
    if r < 0.94:
        return None
    return rng.choice(ODD_VALUES)


def random_document(rng: random.Random) -> dict[str, Any]:
    return {key: random_value(rng) for key in KEYS if rng.random() < 0.6}


def random_condition(rng: random.Random) -> Any:
    if rng.random() < 0.25:
        return rng.choice(SCALARS)  # {"key": scalar}: implicit $eq
    ops: dict[str, Any] = {}
    for _ in range(rng.choice([1, 1, 1, 2])):
        op = rng.choice(["$eq", "$ne", "$in", "$nin", "$contains", "$exists", *RANGES])
        if op in ("$in", "$nin"):
            ops[op] = [rng.choice(SCALARS) for _ in range(rng.randint(0, 4))]
        elif op == "$exists":
            ops[op] = rng.choice(BOOLS)
        elif op in RANGES:
            ops[op] = rng.choice([*STRINGS, *INTS, *FLOATS])
        else:
            ops[op] = rng.choice(SCALARS)
    return ops


def random_filter(rng: random.Random, depth: int = 1) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    # $or and $not are drawn more often than $and: ANDs of random conditions mostly match nothing.
    for _ in range(rng.choice([1, 1, 1, 2])):
        if depth < MAX_FILTER_DEPTH and rng.random() < 0.45:
            combinator = rng.choice(["$and", "$or", "$or", "$not", "$not"])
            if combinator == "$not":
                tags["$not"] = random_filter(rng, depth + 1)
            else:
                tags[combinator] = [random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]
        else:
            tags[rng.choice(FILTER_KEYS)] = random_condition(rng)
    return tags


def conditions_in(tags: dict[str, Any]) -> int:
    """Field comparisons as filters.py counts them toward MAX_CONDITIONS."""
    total = 0
    for key, value in tags.items():
        if key in ("$and", "$or"):
            total += sum(conditions_in(sub) for sub in value)
        elif key == "$not":
            total += conditions_in(value)
        elif isinstance(value, dict):
            total += sum(max(1, len(arg)) if op in ("$in", "$nin") else 1 for op, arg in value.items())
        else:
            total += 1
    return total


def random_filters(rng: random.Random, count: int) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    while len(filters) < count:
        tags = random_filter(rng)
        if conditions_in(tags) <= MAX_CONDITIONS:
            filters.append(tags)
    return filters


# --- shrinking a disagreement -----------------------------------------------------------------------


def smaller(tags: dict[str, Any]) -> list[dict[str, Any]]:
    """Filters one step simpler than ``tags``, simplest first."""
    out: list[dict[str, Any]] = []
    if len(tags) > 1:
        out += [{key: value} for key, value in tags.items()]
    for key, value in tags.items():

        def swap(new: Any, key: str = key) -> dict[str, Any]:
            return {**tags, key: new}

        if key == "$not":
            out.append(value)
            out += [swap(sub) for sub in smaller(value)]
        elif key in ("$and", "$or"):
            out += list(value)
            if len(value) > 1:
                out += [swap(value[:i] + value[i + 1 :]) for i in range(len(value))]
            for i, sub in enumerate(value):
                out += [swap([*value[:i], s, *value[i + 1 :]]) for s in smaller(sub)]
        elif isinstance(value, dict):
            if len(value) > 1:
                out += [swap({op: arg}) for op, arg in value.items()]
            for op, arg in value.items():
                if op in ("$in", "$nin") and arg:
                    out += [swap({**value, op: arg[:i] + arg[i + 1 :]}) for i in range(len(arg))]
    return out


def show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def examples(documents: list[Any], count: int = 3) -> str:
    """The few smallest documents of a difference: the easiest to read."""
    smallest = sorted(documents, key=lambda d: len(show(d)))[:count]
    return f"{len(documents)} documents, e.g. " + ", ".join(map(show, smallest)) if documents else "none"


# --- the property -----------------------------------------------------------------------------------


async def matching_ids(http: httpx.AsyncClient, tenant: Tenant, tags: dict[str, Any]) -> set[str]:
    # An empty query lists every row that passes the filters (most recent first), whatever the text.
    response = await http.get(
        "/memory/search",
        params={"user_id": "alice", "query": "", "memory_type": "all", "limit": 1000, "filter_tags": json.dumps(tags)},
        headers=tenant.headers,
    )
    assert response.status_code == 200, (tags, response.text)
    return {row["id"] for row in response.json()["results"]}


async def test_random_filters_match_the_reference(http: httpx.AsyncClient, server: AsyncServer, tenant: Tenant):
    rng = random.Random(SEED)
    documents = [random_document(rng) for _ in range(N_DOCUMENTS)]
    # Items without text need no embeddings; spreading them over the kinds covers every table.
    items = [
        {"memory_type": SEARCHABLE[i % len(SEARCHABLE)].name, "user_id": "alice", "filter_tags": document}
        for i, document in enumerate(documents)
    ]
    response = await http.post("/memory/import", json={"items": items}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    stored = dict(zip(response.json()["ids"], documents, strict=True))
    assert await matching_ids(http, tenant, {}) == set(stored)

    def expected(tags: dict[str, Any]) -> set[str]:
        return {memory_id for memory_id, document in stored.items() if matches(document, tags)}

    async def disagrees(tags: dict[str, Any]) -> bool:
        return await matching_ids(http, tenant, tags) != expected(tags)

    filters = random_filters(rng, N_FILTERS)
    failures = []
    selective = 0
    for tags in filters:
        want, got = expected(tags), await matching_ids(http, tenant, tags)
        selective += 0 < len(want) < len(stored)
        if got != want:
            failures.append(tags)

    reports = []
    for tags in failures[:5]:
        minimal = tags
        while True:
            simpler = [c for c in smaller(minimal) if await disagrees(c)]
            if not simpler:
                break
            minimal = min(simpler, key=lambda c: len(json.dumps(c)))
        want, got = expected(minimal), await matching_ids(http, tenant, minimal)
        reports.append(
            f"filter {show(minimal)} (shrunk from {show(tags)})\n"
            f"  returned, not expected: {examples([stored[i] for i in got - want])}\n"
            f"  expected, not returned: {examples([stored[i] for i in want - got])}"
        )
    assert not failures, (
        f"{len(failures)} of {len(filters)} filters disagree with the reference on {server.engine.dialect.name}:\n"
        + "\n".join(reports)
    )
    # The property is only worth something if most filters split the documents.
    assert selective >= len(filters) // 2, f"only {selective} of {len(filters)} filters were selective"
