"""Tolerant tool-call parsing: repairs of almost-JSON arguments and tool calls written as text."""

from __future__ import annotations

import pytest

from mirix.llm.toolparse import extract_tool_calls, make_tool_call, parse_arguments

TOOLS = {"trigger_memory_update", "finish"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"memory_types": ["episodic"]}', {"memory_types": ["episodic"]}),
        ("", {}),
        ("   ", {}),
        (None, {}),
        ({"already": "parsed"}, {"already": "parsed"}),
    ],
)
def test_valid_arguments_are_not_marked_repaired(raw: object, expected: dict) -> None:
    arguments, error, repaired = parse_arguments(raw)  # type: ignore[arg-type]
    assert (arguments, error, repaired) == (expected, None, False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # code fences, with and without a language tag
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        # chat-template tokens and tags around the payload
        ('<|tool_call|>{"a": 1}<|/tool_call|>', {"a": 1}),
        ('<tool_call>{"a": 1}</tool_call>', {"a": 1}),
        ('<|python_tag|>{"a": 1}<|eom_id|>', {"a": 1}),
        ('[TOOL_CALLS] {"a": 1}', {"a": 1}),
        # trailing commas
        ('{"a": [1, 2,], "b": 2,}', {"a": [1, 2], "b": 2}),
        # single quotes, including a double quote inside and an escaped single quote
        ("{'a': 'it says \"hi\"', 'b': 'don\\'t'}", {"a": 'it says "hi"', "b": "don't"}),
        # Python constants
        ("{'flag': True, 'other': False, 'nothing': None}", {"flag": True, "other": False, "nothing": None}),
        # unquoted keys
        ('{name: "x", count: 2}', {"name": "x", "count": 2}),
        # raw newlines inside strings
        ('{"text": "line one\nline two"}', {"text": "line one\nline two"}),
        # truncated: open string, open list, open object
        ('{"memory_types": ["episodic"', {"memory_types": ["episodic"]}),
        ('{"note": "cut off in the mid', {"note": "cut off in the mid"}),
        ('{"a": {"b": [1, 2', {"a": {"b": [1, 2]}}),
        ('{"a": 1, "b":', {"a": 1, "b": None}),
        # truncated in a key: cut back to the last complete member
        ('{"a": 1, "b', {"a": 1}),
        ('{"a": 1, "bee": tr', {"a": 1}),
        # text before and after the object
        ('Arguments: {"a": 1} hope that helps', {"a": 1}),
        # double-encoded
        ('"{\\"a\\": 1}"', {"a": 1}),
    ],
)
def test_almost_json_is_repaired(raw: str, expected: dict) -> None:
    arguments, error, repaired = parse_arguments(raw)
    assert error is None
    assert arguments == expected
    assert repaired


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"memory_types": [episodic]}', "not valid JSON"),
        ("no json here at all", "not valid JSON"),
        ("[1, 2, 3]", "expected a JSON object"),
        ("42", "expected a JSON object"),
        ('"just a string"', "expected a JSON object"),
    ],
)
def test_unrepairable_arguments_report_an_error(raw: str, message: str) -> None:
    arguments, error, repaired = parse_arguments(raw)
    assert arguments is None and not repaired
    assert error is not None and message in error


def test_make_tool_call_keeps_raw_text_and_names_the_tool_in_errors() -> None:
    good = make_tool_call("call_1", "finish", '{"a": 1,}')
    bad = make_tool_call(None, "finish", "{oops")
    from_object = make_tool_call("toolu_1", "finish", {"b": [1]})

    assert (good.arguments, good.repaired, good.raw_arguments, good.ok) == ({"a": 1}, True, '{"a": 1,}', True)
    assert bad.arguments is None and not bad.ok
    assert bad.error is not None and "'finish'" in bad.error
    assert bad.id.startswith("call_") and bad.raw_arguments == "{oops"
    assert from_object.raw_arguments == '{"b": [1]}' and from_object.arguments == {"b": [1]}


def test_very_long_garbage_is_truncated_in_the_error() -> None:
    _, error, _ = parse_arguments("x" * 5000)
    assert error is not None and len(error) < 300


# -- tool calls written as plain text ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "finish", "arguments": {"ok": true}}',
        '  {"name": "finish", "parameters": {"ok": true}}  ',
        '```json\n{"name": "finish", "arguments": {"ok": true}}\n```',
        '<tool_call>\n{"name": "finish", "arguments": {"ok": true}}\n</tool_call>',
        '<|tool_call|>{"name": "finish", "arguments": {"ok": true}}',
        '{"type": "function", "function": {"name": "finish", "arguments": "{\\"ok\\": true}"}}',
        "{'name': 'finish', 'arguments': {'ok': True}}",
    ],
)
def test_a_single_text_tool_call_is_recovered(text: str) -> None:
    found = extract_tool_calls(text, TOOLS)
    assert found is not None
    calls, remainder = found
    assert [(c.name, c.arguments) for c in calls] == [("finish", {"ok": True})]
    assert remainder == ""
    assert calls[0].id.startswith("call_")


def test_a_list_of_text_tool_calls_is_recovered() -> None:
    text = '[{"name": "trigger_memory_update", "arguments": {"memory_types": ["core"]}}, {"name": "finish"}]'
    found = extract_tool_calls(text, TOOLS)
    assert found is not None
    calls, _ = found
    assert [(c.name, c.arguments) for c in calls] == [
        ("trigger_memory_update", {"memory_types": ["core"]}),
        ("finish", {}),
    ]


def test_several_hermes_blocks_keep_the_surrounding_prose() -> None:
    text = (
        "Let me do both.\n"
        '<tool_call>{"name": "trigger_memory_update", "arguments": {"memory_types": ["episodic"]}}</tool_call>\n'
        '<tool_call>{"name": "finish", "arguments": {}}</tool_call>'
    )
    found = extract_tool_calls(text, TOOLS)
    assert found is not None
    calls, remainder = found
    assert [c.name for c in calls] == ["trigger_memory_update", "finish"]
    assert remainder == "Let me do both."


def test_text_tool_call_with_broken_arguments_carries_the_error() -> None:
    found = extract_tool_calls('{"name": "finish", "arguments": "{not json"}', TOOLS)
    assert found is not None
    (call,), _ = found
    assert call.name == "finish" and call.arguments is None and call.error


@pytest.mark.parametrize(
    "text",
    [
        "Just an answer, no tools.",
        '{"name": "unknown_tool", "arguments": {}}',  # not an offered tool
        '{"name": "Alice", "age": 30}',  # data that happens to have a name
        'Here is JSON: {"name": "finish", "arguments": {}}',  # prose around unfenced JSON is left alone
        '```json\n{"results": [1, 2]}\n```',
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert extract_tool_calls(text, TOOLS) is None


def test_no_tools_offered_means_no_recovery() -> None:
    assert extract_tool_calls('{"name": "finish", "arguments": {}}', set()) is None
