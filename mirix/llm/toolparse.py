"""Tolerant tool-call parsing.

Models (local ones especially) emit almost-JSON: fenced, wrapped in template tokens, single-quoted,
with trailing commas, or cut off by the token limit. A repair pass fixes what can be fixed
unambiguously; what still fails becomes a ToolCall with ``arguments=None`` and an ``error``, so the
agent loop can tell the model instead of crashing. Models that write a tool call as plain text
(``{"name": ..., "arguments": {...}}``) while tools were offered get it turned into a real call.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from mirix.llm.types import ToolCall

_FENCE = re.compile(r"```[ \t]*[\w-]*[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_SPECIAL_TOKENS = re.compile(r"<\|[^<>|\s]{1,40}\|>|\[/?TOOL_CALLS\]|\[/?TOOL_REQUEST\]")
_TAGS = re.compile(r"</?(?:tool_calls?|function_calls?|functioncall|tool_code)>", re.I)
_TOOL_CALL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.S | re.I)
_PY_CONSTANTS = {"True": "true", "False": "false", "None": "null"}
_JSON_CONSTANTS = frozenset({"true", "false", "null"})
_NAME_KEYS = ("name", "tool_name", "tool", "function_name")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input", "kwargs")
_MAX_ERROR_SNIPPET = 200


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def make_tool_call(
    call_id: str | None,
    name: str,
    raw: str | Mapping[str, Any] | None,
    *,
    provider_data: Mapping[str, Any] | None = None,
) -> ToolCall:
    """A ToolCall from whatever the provider sent as arguments (JSON text, an object, or nothing)."""
    arguments, error, repaired = parse_arguments(raw)
    if isinstance(raw, str):
        raw_text = raw
    else:
        raw_text = json.dumps(dict(raw) if raw is not None else {}, ensure_ascii=False)
    if error is not None:
        error = f"could not parse the arguments of tool call {name!r}: {error}"
    return ToolCall(
        id=call_id or new_call_id(),
        name=name,
        arguments=arguments,
        raw_arguments=raw_text,
        error=error,
        repaired=repaired,
        provider_data=provider_data,
    )


def parse_arguments(raw: str | Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, str | None, bool]:
    """(arguments, error, repaired). Empty input means no arguments; a non-object is an error."""
    if raw is None:
        return {}, None, False
    if isinstance(raw, Mapping):
        return dict(raw), None, False
    text = raw.strip()
    if not text:
        return {}, None, False
    repaired = False
    ok, value = _loads(text)
    if not ok:
        ok, value = loads_lenient(text)
        repaired = ok
    if ok and isinstance(value, str):
        # Double-encoded arguments ("{\"a\": 1}") are a known quirk of some servers.
        inner_ok, inner = _loads(value.strip())
        if inner_ok and isinstance(inner, dict):
            value, repaired = inner, True
    if not ok:
        return None, f"not valid JSON: {_snippet(text)}", False
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}: {_snippet(text)}", False
    return value, None, repaired


def loads_lenient(text: str) -> tuple[bool, Any]:
    """Parse almost-JSON: (True, value) after repair, or (False, None)."""
    cleaned = strip_wrappers(text)
    start = _first_bracket(cleaned)
    if start < 0:
        return False, None
    body = cleaned[start:]
    for candidate in _repairs(body):
        ok, value = _loads(candidate)
        if ok:
            return True, value
    try:
        # Python-literal dicts ({'a': True}) are common from code-trained models; literal_eval runs no code.
        value = ast.literal_eval(body.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False, None
    return True, value


def strip_wrappers(text: str) -> str:
    """Remove chat-template tokens, tool-call tags and code fences around a payload."""
    text = _SPECIAL_TOKENS.sub(" ", text)
    text = _TAGS.sub(" ", text)
    fenced = _FENCE.search(text)
    if fenced is not None:
        text = fenced.group(1)
    return text.strip()


def extract_tool_calls(text: str, tool_names: Collection[str]) -> tuple[list[ToolCall], str] | None:
    """Tool calls written as plain text, with the text that remains; None if the text holds none.

    Only calls naming an offered tool count, and a payload must consist of nothing but calls,
    so ordinary JSON in an answer is left alone.
    """
    if not text or not tool_names:
        return None
    for pattern in (_TOOL_CALL_BLOCK, _FENCE):
        calls: list[ToolCall] = []
        remainder = text
        for match in pattern.finditer(text):
            found = _calls_in(match.group(1), tool_names)
            if found:
                calls.extend(found)
                remainder = remainder.replace(match.group(0), " ", 1)
        if calls:
            return calls, _tidy(remainder)
    bare = _SPECIAL_TOKENS.sub(" ", _TAGS.sub(" ", text)).strip()
    if bare[:1] in ("{", "["):
        found = _calls_in(bare, tool_names)
        if found:
            return found, ""
    return None


def _calls_in(payload: str, tool_names: Collection[str]) -> list[ToolCall] | None:
    payload = payload.strip()
    ok, value = _loads(payload)
    if not ok:
        ok, value = loads_lenient(payload)
    if not ok:
        return None
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        shaped = _call_shape(item)
        if shaped is None or shaped[0] not in tool_names:
            return None
        name, arguments = shaped
        calls.append(make_tool_call(None, name, arguments))
    return calls or None


def _call_shape(item: Any) -> tuple[str, str | Mapping[str, Any] | None] | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):  # {"type": "function", "function": {...}}
        item = item["function"]
    name = next((item[k] for k in _NAME_KEYS if isinstance(item.get(k), str)), None)
    if name is None:
        return None
    arguments = next((item[k] for k in _ARGUMENT_KEYS if k in item), None)
    if arguments is not None and not isinstance(arguments, str | dict):
        return None
    extra = set(item) - set(_NAME_KEYS) - set(_ARGUMENT_KEYS) - {"type", "id"}
    if extra:  # an object with other keys is data that happens to have a "name", not a call
        return None
    return name, arguments


def _loads(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def _first_bracket(text: str) -> int:
    positions = [p for p in (text.find("{"), text.find("[")) if p >= 0]
    return min(positions) if positions else -1


def _snippet(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_SNIPPET else text[:_MAX_ERROR_SNIPPET] + "..."


def _tidy(text: str) -> str:
    return re.sub(r"[ \t]+\n", "\n", _SPECIAL_TOKENS.sub(" ", text)).strip()


def _repairs(text: str) -> list[str]:
    """Candidate repairs of ``text``, most faithful first: the normalised text closed where it
    stopped, then cut back to each of its last few complete elements (for truncated output)."""
    out, stack, cut_points = _normalise(text)
    candidates = [_close(out, stack)]
    for length, open_stack in reversed(cut_points[-3:]):
        candidates.append(_close(out[:length], open_stack))
    return candidates


def _normalise(text: str) -> tuple[list[str], list[str], list[tuple[int, list[str]]]]:
    """One pass over almost-JSON: single quotes → double, Python constants → JSON, unquoted keys quoted,
    raw control characters in strings escaped, trailing commas dropped, text after the value ignored.

    Returns the output so far, the closers still open, and (length, open closers) at each comma.
    """
    out: list[str] = []
    stack: list[str] = []
    cut_points: list[tuple[int, list[str]]] = []
    quote: str | None = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                if i + 1 < n:
                    nxt = text[i + 1]
                    # JSON has no \' escape, and a double-quoted string needs none.
                    out.append("'" if nxt == "'" else ch + nxt)
                i += 2
                continue
            if ch == quote:
                out.append('"')
                quote = None
            elif ch == '"':
                out.append('\\"')
            elif ch in "\n\r\t":
                out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
            else:
                out.append(ch)
            i += 1
            continue
        if ch in "\"'":
            quote = ch
            out.append('"')
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
            out.append(ch)
        elif ch in "}]":
            _drop_trailing_comma(out)
            if stack and stack[-1] == ch:
                stack.pop()
                out.append(ch)
                if not stack:
                    break
        elif ch == ",":
            cut_points.append((len(out), list(stack)))
            out.append(ch)
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            rest = text[j:].lstrip()
            if word in _PY_CONSTANTS:
                out.append(_PY_CONSTANTS[word])
            elif word not in _JSON_CONSTANTS and rest.startswith(":") and stack and stack[-1] == "}":
                out.append(f'"{word}"')
            else:
                out.append(word)
            i = j
            continue
        else:
            out.append(ch)
        i += 1
    if quote is not None:
        out.append('"')
    return out, stack, cut_points


def _close(out: list[str], stack: list[str]) -> str:
    text = "".join(out).rstrip()
    while text.endswith(","):
        text = text[:-1].rstrip()
    if text.endswith(":"):
        text += " null"
    return text + "".join(reversed(stack))


def _drop_trailing_comma(out: list[str]) -> None:
    k = len(out) - 1
    while k >= 0 and out[k].isspace():
        k -= 1
    if k >= 0 and out[k] == ",":
        del out[k]
