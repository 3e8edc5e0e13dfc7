"""filter_tags queries (mirix.search.filters): the same rows on SQLite and PostgreSQL, and clear errors.

Every case runs against real ``blocks`` rows on the backend picked by ``MIRIX_TEST_DB``, with one
table of expectations shared by both backends.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from mirix.db.models import Block, Organization
from mirix.errors import UnprocessableError
from mirix.search.filters import MAX_CONDITIONS, FilterError, compile_filter_tags, validate_filter_tags
from mirix.server.server import AsyncServer

INJECTION = "x'); DROP TABLE blocks; --"

# label → filter_tags. Single letters keep the expectation table readable.
ROWS: dict[str, Any] = {
    "A": {"color": "red", "n": 1, "tags": ["a", "b"], "when": "2024-05-01", "scope": "team"},
    "B": {"color": "blue", "n": 2.5, "tags": ["b", "c", 1], "when": "2024-06-15"},
    "C": {"color": "1", "n": "1", "when": "2023-12-31"},
    "D": {"color": "Red", "flag": True, "n": 1.0},
    "E": {"flag": False, "n": 0, "tags": []},
    "F": {"flag": 1, "n": -3, "tags": [1, 2.0, True, "1"]},
    "G": {"color": None, "n": None, "tags": [None, "a"]},
    "H": {},
    "I": {"color": {"red": True}, "meta": {"a": 1}, "tags": [["a"], {"a": 1}]},
    "J": {"a.b": "dot", "a": {"b": "nested"}, "n": 10},
    "K": {"color": "é", "when": "2024-05-01T10:00:00Z", "tags": "a", "n": 100},
    "L": {"color": INJECTION, "n": 9007199254740993},
    # Not an object: it has no keys, although `?` on PostgreSQL would find "color" in it.
    "M": ["color", "n"],
}
ALL = frozenset(ROWS)


def but(*labels: str) -> set[str]:
    return set(ALL - set(labels))


CASES: list[tuple[dict[str, Any], set[str]]] = [
    # scalar equality is JSON-typed
    ({"color": "red"}, {"A"}),
    ({"color": "1"}, {"C"}),
    ({"color": "RED"}, set()),
    ({"n": 1}, {"A", "D"}),
    ({"n": 1.0}, {"A", "D"}),
    ({"n": "1"}, {"C"}),
    ({"n": 0}, {"E"}),
    ({"tags": "a"}, {"K"}),
    ({"flag": True}, {"D"}),
    ({"flag": False}, {"E"}),
    ({"flag": 1}, {"F"}),
    ({"flag": 0}, set()),
    ({"color": None}, {"G"}),
    ({"n": None}, {"G"}),
    ({"missing": None}, set()),
    ({"n": 9007199254740993}, {"L"}),
    ({"n": 9007199254740992}, set()),
    ({"n": 9007199254740992.0}, set()),
    ({"color": "red", "n": 1}, {"A"}),
    ({"color": "red", "n": 2.5}, set()),
    # $eq / $ne ($ne matches missing keys, null and other types)
    ({"color": {"$eq": "blue"}}, {"B"}),
    ({"flag": {"$eq": True}}, {"D"}),
    ({"color": {"$ne": "red"}}, but("A")),
    ({"n": {"$ne": 1}}, but("A", "D")),
    ({"n": {"$ne": None}}, but("G")),
    ({"flag": {"$ne": True}}, but("D")),
    # $in / $nin
    ({"color": {"$in": ["red", "blue", 1]}}, {"A", "B"}),
    ({"n": {"$in": [1, "1"]}}, {"A", "C", "D"}),
    ({"color": {"$in": [None, "é"]}}, {"G", "K"}),
    ({"flag": {"$in": [True, 0]}}, {"D"}),
    ({"color": {"$in": []}}, set()),
    ({"color": {"$nin": []}}, ALL),
    ({"color": {"$nin": ["red", "blue"]}}, but("A", "B")),
    ({"flag": {"$nin": [True, False]}}, but("D", "E")),
    # $contains: arrays only, elements compared like equality
    ({"tags": {"$contains": "a"}}, {"A", "G"}),
    ({"tags": {"$contains": "c"}}, {"B"}),
    ({"tags": {"$contains": 1}}, {"B", "F"}),
    ({"tags": {"$contains": 2}}, {"F"}),
    ({"tags": {"$contains": True}}, {"F"}),
    ({"tags": {"$contains": "1"}}, {"F"}),
    ({"tags": {"$contains": None}}, {"G"}),
    ({"tags": {"$contains": "z"}}, set()),
    ({"color": {"$contains": "red"}}, set()),
    ({"tags": {"$contains": "a", "$exists": True}}, {"A", "G"}),
    # $exists (null counts as present; a top-level array has no keys)
    ({"color": {"$exists": True}}, {"A", "B", "C", "D", "G", "I", "K", "L"}),
    ({"color": {"$exists": False}}, {"E", "F", "H", "J", "M"}),
    ({"flag": {"$exists": True}}, {"D", "E", "F"}),
    ({"n": {"$exists": True}}, but("H", "I", "M")),
    # numeric ranges: stored numbers only
    ({"n": {"$gt": 1}}, {"B", "J", "K", "L"}),
    ({"n": {"$gte": 1}}, {"A", "B", "D", "J", "K", "L"}),
    ({"n": {"$lt": 1}}, {"E", "F"}),
    ({"n": {"$lte": 0}}, {"E", "F"}),
    ({"n": {"$gte": 1, "$lt": 5}}, {"A", "B", "D"}),
    ({"n": {"$gt": 2.4999, "$lte": 2.5}}, {"B"}),
    ({"n": {"$gt": 9007199254740992}}, {"L"}),
    ({"flag": {"$gte": 0}}, {"F"}),
    # string ranges: stored strings only, by code point
    ({"n": {"$gt": "0"}}, {"C"}),
    ({"when": {"$gte": "2024-01-01", "$lt": "2024-06-01"}}, {"A", "K"}),
    ({"when": {"$gt": "2024-05-01"}}, {"B", "K"}),
    ({"when": {"$lte": "2024-05-01"}}, {"A", "C"}),
    ({"color": {"$lt": "a"}}, {"C", "D"}),  # "Red" < "a" by code point, unlike most locales
    ({"color": {"$gte": "é"}}, {"K"}),
    ({"color": {"$gt": "Z"}}, {"A", "B", "K", "L"}),
    # a dot is part of the key, never a path; `scope` is a normal key here
    ({"a.b": "dot"}, {"J"}),
    ({"a.b": {"$exists": True}}, {"J"}),
    ({"a": "nested"}, set()),
    ({"scope": "team"}, {"A"}),
    # values that look like SQL or JSON are just values
    ({"color": INJECTION}, {"L"}),
    ({"color": {"$in": [INJECTION, "' OR '1'='1"]}}, {"L"}),
    ({"color": {"$gt": "' OR 1=1 --"}}, {"A", "B", "C", "D", "K", "L"}),
    ({"color": '"}, "color": "red'}, set()),
    ({"tags": {"$contains": '"]'}}, set()),
    # combinators
    ({"$or": [{"color": "red"}, {"flag": True}]}, {"A", "D"}),
    ({"$or": [{"color": "nope"}]}, set()),
    ({"$and": [{"n": {"$gte": 1}}, {"tags": {"$contains": "b"}}]}, {"A", "B"}),
    ({"$not": {"color": "red"}}, but("A")),
    ({"$not": {"color": {"$exists": True}}}, {"E", "F", "H", "J", "M"}),
    ({"$not": {"$not": {"color": "red"}}}, {"A"}),
    ({"$not": {"color": {"$ne": "red"}}}, {"A"}),
    ({"$not": {"n": {"$gt": 1}}}, but("B", "J", "K", "L")),
    ({"$not": {"$or": [{"n": {"$lt": 1}}, {"n": {"$gte": 5}}]}}, but("E", "F", "J", "K", "L")),
    ({"$not": {"color": "red", "n": 1}}, but("A")),
    ({"color": {"$exists": True}, "$or": [{"n": 1}, {"n": "1"}]}, {"A", "C", "D"}),
    ({"color": {"$ne": "red", "$exists": True}}, {"B", "C", "D", "G", "I", "K", "L"}),
    (
        {"$or": [{"$and": [{"flag": {"$exists": True}}, {"$not": {"flag": True}}]}, {"color": None}]},
        {"E", "F", "G"},
    ),
    ({"$and": [{"$or": [{"n": {"$in": []}}, {"color": "blue"}]}, {"$not": {"tags": {"$nin": []}}}]}, set()),
]


def nested_not(levels: int) -> dict[str, Any]:
    """A filter that is `levels` filter objects deep: $not … $not {"color": "red"}."""
    node: dict[str, Any] = {"color": "red"}
    for _ in range(levels - 1):
        node = {"$not": node}
    return node


@pytest.fixture
async def blocks(server: AsyncServer) -> AsyncServer:
    async with server.sessions.begin() as session:
        session.add(Organization(id="org-filters", name="filters"))
        await session.flush()
        for label, tags in ROWS.items():
            session.add(
                Block(
                    id=f"block-{label}",
                    organization_id="org-filters",
                    label=label,
                    scope="default",
                    value="",
                    filter_tags=tags,
                )
            )
    return server


async def labels(server: AsyncServer, tags: Any) -> set[str]:
    condition = compile_filter_tags(Block.filter_tags, tags, server.engine.dialect.name)
    query = select(Block.label)
    if condition is not None:
        query = query.where(condition)
    async with server.sessions() as session:
        return set(await session.scalars(query))


@pytest.mark.parametrize(("tags", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
async def test_filter_matches(blocks: AsyncServer, tags: dict[str, Any], expected: set[str]) -> None:
    assert await labels(blocks, tags) == expected, tags


async def test_filters_at_the_limits(blocks: AsyncServer) -> None:
    assert await labels(blocks, None) == ALL
    assert await labels(blocks, {}) == ALL
    assert await labels(blocks, nested_not(8)) == but("A")  # seven $not
    many = {"$or": [{"n": {"$in": list(range(-3, MAX_CONDITIONS - 4))}}, {"color": "1"}]}
    assert await labels(blocks, many) == {"A", "C", "D", "E", "F", "J"}


async def test_injection_in_keys_is_rejected_and_nothing_runs(blocks: AsyncServer) -> None:
    for key in ("x'); DROP TABLE users; --", 'a"b', "a') or 1=1 --", "$.color", "color\n"):
        with pytest.raises(FilterError):
            await labels(blocks, {key: 1})
        with pytest.raises(FilterError):
            await labels(blocks, {"$or": [{key: {"$exists": True}}]})
    async with blocks.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Block)) == len(ROWS)
        assert await session.scalar(text("SELECT count(*) FROM users")) == 0


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_user_text_never_reaches_sql_text(dialect: str) -> None:
    tags = {
        "a.b": INJECTION,
        "k:1": {"$in": ["in-value", 7], "$contains": "contained", "$gt": "gt-value", "$exists": True},
        "$or": [{"other-key": None}, {"$not": {"third_key": {"$nin": ["nin-value"]}}}],
    }
    condition = compile_filter_tags(Block.filter_tags, tags, dialect)
    engine_dialect = sqlite.dialect() if dialect == "sqlite" else postgresql.asyncpg.dialect()
    sql = str(select(Block.id).where(condition).compile(dialect=engine_dialect))
    for word in ("a.b", "DROP", "in-value", "contained", "gt-value", "k:1", "other-key", "third_key", "nin-value"):
        assert word not in sql


@pytest.mark.parametrize("tags", [{"color": "red"}, {"tags": {"$contains": "a"}}, {"n": {"$in": [1, "1"]}}])
def test_postgres_equality_and_contains_compile_to_containment(tags: dict[str, Any]) -> None:
    condition = compile_filter_tags(Block.filter_tags, tags, "postgresql")
    sql = str(select(Block.id).where(condition).compile(dialect=postgresql.asyncpg.dialect()))
    assert "@>" in sql and "->" not in sql and "jsonb_typeof" not in sql


def test_postgres_string_ranges_use_code_point_order() -> None:
    # The development cluster is C-collated, so the rows alone would not notice a missing COLLATE.
    condition = compile_filter_tags(Block.filter_tags, {"when": {"$gte": "2024-05-01"}}, "postgresql")
    sql = str(select(Block.id).where(condition).compile(dialect=postgresql.asyncpg.dialect()))
    assert 'COLLATE "C"' in sql


@pytest.mark.postgres_only
async def test_postgres_equality_and_contains_use_a_gin_index(blocks: AsyncServer) -> None:
    async with blocks.engine.connect() as connection:
        # The migrations have no index on filter_tags (yet); a GIN index is what @> can use.
        await connection.exec_driver_sql("CREATE INDEX ix_test_blocks_tags ON blocks USING gin (filter_tags)")
        await connection.exec_driver_sql("SET enable_seqscan = off")  # 13 rows: make the planner show its hand
        for tags in ({"color": "red"}, {"tags": {"$contains": "a"}}, {"color": {"$in": ["red", "blue"]}}):
            query = select(Block.label).where(compile_filter_tags(Block.filter_tags, tags, "postgresql"))
            compiled = query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
            plan = "\n".join((await connection.exec_driver_sql(f"EXPLAIN {compiled}")).scalars())
            assert "ix_test_blocks_tags" in plan and "@>" in plan, plan
            assert set((await connection.execute(query)).scalars()) == await labels(blocks, tags)
        await connection.rollback()


def test_validate_returns_the_filter() -> None:
    tags = {"color": "red", "$or": [{"n": {"$gte": 1}}]}
    assert validate_filter_tags(tags) == tags
    assert validate_filter_tags(None) == {}
    assert validate_filter_tags({}) == {}
    assert compile_filter_tags(Block.filter_tags, None, "sqlite") is None
    assert compile_filter_tags(Block.filter_tags, {}, "postgresql") is None
    assert validate_filter_tags(nested_not(8)) and validate_filter_tags({"k" * 64: 1})
    validate_filter_tags({f"k{i}": i for i in range(MAX_CONDITIONS)})


def test_unknown_dialect_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="sqlite and postgresql") as caught:
        compile_filter_tags(Block.filter_tags, {"a": 1}, "mysql")
    assert not isinstance(caught.value, FilterError)


SUPPORTED = r"supported: \$eq, \$ne, \$in, \$nin, \$contains, \$exists, \$gt, \$gte, \$lt, \$lte$"
SCALAR = "Expected a string, number, boolean or null"

ERRORS: list[tuple[Any, str]] = [
    ([{"color": "red"}], "filter_tags must be a JSON object, not an array"),
    ("color=red", "filter_tags must be a JSON object, not a string"),
    # operators in the wrong place
    ({"color": {"$regex": "r.*"}}, r"^Unknown filter_tags operator '\$regex'; " + SUPPORTED),
    ({"color": {"$eq": 1, "$where": "1"}}, r"Unknown filter_tags operator '\$where'"),
    ({"$regex": "r.*"}, r"Unknown filter_tags operator '\$regex'; supported here: \$and, \$or, \$not"),
    ({"$eq": "red"}, r"Operator '\$eq' cannot stand in place of a key \(at filter_tags.\$eq\)"),
    ({"$or": [{"$in": [1]}]}, r"Operator '\$in' cannot stand in place of a key \(at filter_tags.\$or\[0\].\$in\)"),
    ({"color": {"$or": [{"$eq": 1}]}}, r"'\$or' combines filters and cannot appear inside the condition for 'color'"),
    ({"color": {"$not": {"$eq": 1}}}, r"'\$not' combines filters"),
    ({"color": {"$eq": {"$gt": 1}}}, SCALAR + r" at filter_tags.color.\$eq, not an object"),
    ({"color": {"$in": [{"$gt": 1}]}}, SCALAR + r" at filter_tags.color.\$in\[0\], not an object"),
    # non-scalars where scalars are required
    ({"color": ["red", "blue"]}, SCALAR + r" at filter_tags.color, not an array \(use \$in"),
    ({"color": {"red": True}}, "Nested objects are not supported in filter_tags"),
    ({"color": {"$eq": 1, "red": True}}, "Nested objects are not supported in filter_tags"),
    ({"color": {}}, "Condition for 'color' is an empty object"),
    ({"color": {"$eq": ["red"]}}, SCALAR + r" at filter_tags.color.\$eq, not an array"),
    ({"color": {"$ne": {}}}, SCALAR + r" at filter_tags.color.\$ne, not an object"),
    ({"tags": {"$contains": ["a"]}}, SCALAR + r" at filter_tags.tags.\$contains, not an array"),
    ({"color": {"$in": "red"}}, r"The value of \$in must be an array of scalars, not a string"),
    ({"color": {"$nin": None}}, r"The value of \$nin must be an array of scalars, not null"),
    ({"color": {"$in": [["red"]]}}, SCALAR + r" at filter_tags.color.\$in\[0\], not an array"),
    ({"color": {"$exists": 1}}, r"The value of \$exists must be true or false, not a number"),
    ({"color": {"$exists": "true"}}, r"The value of \$exists must be true or false"),
    ({"n": {"$gt": True}}, r"The value of \$gt must be a number or a string, not a boolean"),
    ({"n": {"$lte": None}}, r"The value of \$lte must be a number or a string, not null"),
    ({"n": {"$lt": [1]}}, r"The value of \$lt must be a number or a string, not an array"),
    ({"n": math.nan}, "Numbers must be finite"),
    ({"n": {"$gt": math.inf}}, "Numbers must be finite"),
    ({"n": 2**63}, "Integer out of the 64-bit range"),
    ({"n": {"$in": [-(2**63) - 1]}}, "Integer out of the 64-bit range"),
    ({"color": "a\x00b"}, "Strings must not contain NUL characters"),
    ({"color": "\ud800"}, "Strings must be valid Unicode"),
    # combinators
    ({"$and": []}, r"filter_tags.\$and must be a non-empty array of filter objects"),
    ({"$or": {"color": "red"}}, r"filter_tags.\$or must be a non-empty array of filter objects"),
    ({"$or": [1]}, r"filter_tags.\$or\[0\] must be a filter object, not a number"),
    ({"$and": [{}]}, r"filter_tags.\$and\[0\] is an empty filter object"),
    ({"$not": []}, r"filter_tags.\$not must be a filter object, not an array"),
    ({"$not": {}}, r"filter_tags.\$not is an empty filter object"),
    ({"$not": "color"}, r"filter_tags.\$not must be a filter object, not a string"),
    # keys
    ({"": 1}, "Invalid filter_tags key '': keys are 1 to 64 characters"),
    ({"k" * 65: 1}, "Invalid filter_tags key 'kkkk"),
    ({"a b": 1}, "Invalid filter_tags key 'a b'"),
    ({"color\n": 1}, r"Invalid filter_tags key 'color\\n'"),
    ({"é": 1}, "Invalid filter_tags key 'é'"),
    ({'a"b': 1}, "Invalid filter_tags key 'a\"b'"),
    ({"x'); DROP TABLE users; --": 1}, 'Invalid filter_tags key "x\'\\); DROP TABLE users; --"'),
    ({"$or": [{"a/b": {"$exists": True}}]}, "Invalid filter_tags key 'a/b'"),
    ({1: "a"}, r"filter_tags keys must be strings, not a number \(at filter_tags.1\)"),
    # size
    (nested_not(9), "filter_tags is nested deeper than 8 levels"),
    ({"$and": [{"$or": [nested_not(7)]}]}, "filter_tags is nested deeper than 8 levels"),
    ({f"k{i}": i for i in range(MAX_CONDITIONS + 1)}, "filter_tags has more than 50 conditions"),
    ({"k": {"$in": list(range(MAX_CONDITIONS + 1))}}, "filter_tags has more than 50 conditions"),
    ({"$or": [{"k": {"$nin": list(range(30))}}, {"j": {"$in": list(range(21))}}]}, "more than 50 conditions"),
]


@pytest.mark.parametrize(("tags", "message"), ERRORS, ids=[str(i) for i in range(len(ERRORS))])
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_invalid_filters_raise_filter_error(tags: Any, message: str, dialect: str) -> None:
    with pytest.raises(FilterError, match=message) as caught:
        validate_filter_tags(tags)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, UnprocessableError)
    assert caught.value.status_code == 422 and caught.value.detail == str(caught.value)
    with pytest.raises(FilterError, match=message):
        compile_filter_tags(Block.filter_tags, tags, dialect)
