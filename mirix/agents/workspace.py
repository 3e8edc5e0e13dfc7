"""What one memory job works on: the items shown to its agents, and the writes they asked for.

Agents refer to existing items only by the numbers they were shown (``[3]``), so a tool call can
touch nothing outside the user's own, visible memories. Writes are collected here and applied in
one transaction together with the job's completion, so a job either has all its effects or none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mirix.db.models.memory import MemoryMixin
from mirix.services.memory.kinds import EPISODIC, KNOWLEDGE_VAULT, PROCEDURAL, RESOURCE, SEMANTIC, MemoryKind
from mirix.timezones import parse_iso

#: The field that names an item, for spotting duplicates.
IDENTITY_FIELD = {
    EPISODIC.name: "summary",
    SEMANTIC.name: "name",
    PROCEDURAL.name: "summary",
    RESOURCE.name: "title",
    KNOWLEDGE_VAULT.name: "secret_value",
}
_SPACE = re.compile(r"\W+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.lower()).strip()


class ToolFailure(Exception):
    """A tool call that cannot be carried out; the message goes back to the model."""


@dataclass
class Shown:
    """Items of one type shown to the agents, by prompt number."""

    kind: MemoryKind
    items: dict[int, MemoryMixin] = field(default_factory=dict)

    def add(self, row: MemoryMixin) -> int:
        for number, shown in self.items.items():
            if shown.id == row.id:
                return number
        number = len(self.items) + 1
        self.items[number] = row
        return number


@dataclass
class Update:
    kind: MemoryKind
    row: MemoryMixin
    changes: dict[str, Any]
    operation: str


@dataclass
class Workspace:
    user_id: str
    occurred_at: datetime
    shown: dict[str, Shown]
    blocks: dict[str, Any]  # label -> Block (the user's blocks in the write scope)
    block_values: dict[str, str] = field(default_factory=dict)  # label -> new value
    inserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    updates: dict[str, Update] = field(default_factory=dict)  # memory id -> update
    retired: dict[str, Update] = field(default_factory=dict)  # memory id -> soft delete (episodic replace)

    # --- helpers ---------------------------------------------------------------------------------

    def item(self, kind: MemoryKind, number: Any) -> MemoryMixin:
        shown = self.shown.setdefault(kind.name, Shown(kind))
        if not isinstance(number, int) or number not in shown.items:
            known = ", ".join(f"[{n}]" for n in shown.items) or "none"
            raise ToolFailure(f"There is no {kind.name} memory [{number}]; the numbers shown are: {known}.")
        return shown.items[number]

    def _clean(self, kind: MemoryKind, raw: Any, *, partial: bool) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise ToolFailure(f"Each {kind.name} item must be an object with fields {', '.join(kind.fields)}.")
        item: dict[str, Any] = {}
        for name in kind.fields:
            if name not in raw or raw[name] is None:
                continue
            value = raw[name]
            if name in kind.list_fields:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ToolFailure(f"'{name}' must be a list of strings.")
            elif not isinstance(value, str):
                value = str(value)
            if name == "sensitivity" and value not in ("low", "medium", "high"):
                raise ToolFailure("'sensitivity' must be low, medium or high.")
            item[name] = value
        if kind is EPISODIC and raw.get("occurred_at"):
            item["occurred_at"] = parse_time(raw["occurred_at"], "occurred_at")
        if not partial:
            identity = IDENTITY_FIELD[kind.name]
            if not str(item.get(identity, "")).strip():
                raise ToolFailure(f"Each {kind.name} item needs a non-empty '{identity}'.")
        elif not item:
            raise ToolFailure(f"Give at least one field to change ({', '.join(kind.fields)}).")
        return item

    # --- memory tools ----------------------------------------------------------------------------

    def insert(self, kind: MemoryKind, raw_items: Any) -> str:
        if not isinstance(raw_items, list) or not raw_items:
            raise ToolFailure("'items' must be a non-empty list.")
        cleaned = [self._clean(kind, raw, partial=False) for raw in raw_items]
        identity = IDENTITY_FIELD[kind.name]
        existing = {
            normalise(getattr(row, identity)): n for n, row in self.shown.get(kind.name, Shown(kind)).items.items()
        }
        pending = {normalise(str(item[identity])) for item in self.inserts.get(kind.name, [])}
        stored, notes = 0, []
        for item in cleaned:
            key = normalise(str(item[identity]))
            if key in pending:
                notes.append(f"'{item[identity][:60]}' was already stored in this update")
                continue
            if key in existing:
                number = existing[key]
                row = self.shown[kind.name].items[number]
                if all(getattr(row, f) == v for f, v in item.items() if f in kind.fields):
                    notes.append(f"'{item[identity][:60]}' is already memory [{number}]")
                    continue
                raise ToolFailure(
                    f"'{item[identity][:60]}' already exists as {kind.name} memory [{number}]; "
                    f"update [{number}] instead of inserting a copy."
                )
            item.setdefault("occurred_at", self.occurred_at)
            self.inserts.setdefault(kind.name, []).append(item)
            pending.add(key)
            stored += 1
        message = f"Stored {stored} new {kind.name} memor{'y' if stored == 1 else 'ies'}."
        return message + (" Skipped: " + "; ".join(notes) + "." if notes else "")

    def update(self, kind: MemoryKind, raw_updates: Any, operation: str = "update") -> str:
        if not isinstance(raw_updates, list) or not raw_updates:
            raise ToolFailure("'updates' must be a non-empty list.")
        planned = []
        for raw in raw_updates:
            if not isinstance(raw, dict):
                raise ToolFailure("Each update must be an object with 'item' and the fields to change.")
            row = self.item(kind, raw.get("item"))
            planned.append((row, self._clean(kind, {k: v for k, v in raw.items() if k != "item"}, partial=True)))
        for row, changes in planned:
            self._change(kind, row, changes, operation)
        return f"Updated {len(planned)} {kind.name} memor{'y' if len(planned) == 1 else 'ies'}."

    def merge_episode(self, number: Any, details: Any, summary: Any = None) -> str:
        row = self.item(EPISODIC, number)
        if not isinstance(details, str) or not details.strip():
            raise ToolFailure("'details' must be the new text to add.")
        current = self.updates.get(row.id)
        base = (current.changes.get("details") if current else None) or row.details
        changes = {"details": f"{base}\n{details.strip()}" if base else details.strip()}
        if isinstance(summary, str) and summary.strip():
            changes["summary"] = summary.strip()
        self._change(EPISODIC, row, changes, "merge")
        return f"Merged into episodic memory [{number}]."

    def replace_episodes(self, numbers: Any, new_items: Any) -> str:
        if not isinstance(numbers, list) or not numbers:
            raise ToolFailure("'items' must list the numbers of the events to replace.")
        rows = [self.item(EPISODIC, n) for n in numbers]
        if not isinstance(new_items, list):
            raise ToolFailure("'new_items' must be a list of events.")
        cleaned = [self._clean(EPISODIC, raw, partial=False) for raw in new_items]
        for row in rows:
            self.retired[row.id] = Update(EPISODIC, row, {}, "replace")
        for item in cleaned:
            item.setdefault("occurred_at", self.occurred_at)
            self.inserts.setdefault(EPISODIC.name, []).append(item)
        return f"Replaced {len(rows)} event(s) with {len(cleaned)} new one(s)."

    def _change(self, kind: MemoryKind, row: MemoryMixin, changes: dict[str, Any], operation: str) -> None:
        if row.id in self.retired:
            raise ToolFailure(f"{kind.name} memory {row.id} is being replaced in this update.")
        current = self.updates.get(row.id)
        merged = {**(current.changes if current else {}), **changes}
        self.updates[row.id] = Update(kind, row, merged, operation if current is None else current.operation)

    # --- core memory -----------------------------------------------------------------------------

    def core_value(self, label: str) -> str:
        if label in self.block_values:
            return self.block_values[label]
        block = self.blocks.get(label)
        if block is None:
            known = ", ".join(sorted(self.blocks)) or "none"
            raise ToolFailure(f"There is no core memory block '{label}'; blocks: {known}.")
        return block.value

    def core_write(self, label: Any, value: str) -> str:
        if not isinstance(label, str):
            raise ToolFailure("'label' must be a block label such as 'human'.")
        self.core_value(label)
        limit = self.blocks[label].limit
        if len(value) > limit:
            raise ToolFailure(
                f"Block '{label}' would hold {len(value)} characters, above its limit of {limit}; "
                "rewrite it more concisely with core_memory_rewrite."
            )
        self.block_values[label] = value
        return f"Core memory '{label}' now holds {len(value)}/{limit} characters."

    # --- what the prompt shows -------------------------------------------------------------------

    def describe(self, kind_name: str) -> str:
        shown = self.shown.get(kind_name)
        if shown is None or not shown.items:
            return "(no existing memories of this kind look relevant)"
        return "\n".join(f"[{n}] {render(shown.kind, row)}" for n, row in shown.items.items())

    def written(self) -> bool:
        return bool(self.inserts or self.updates or self.retired or self.block_values)


def render(kind: MemoryKind, row: MemoryMixin) -> str:
    """One line per existing item, as an agent sees it (never the secret value of the vault)."""
    if kind is EPISODIC:
        return f"{row.occurred_at:%Y-%m-%d %H:%M} | {row.actor} | {row.summary} — {row.details}"
    if kind is KNOWLEDGE_VAULT:
        return f"{row.caption} ({row.entry_type}, {row.sensitivity}, from {row.source})"
    parts = [kind.text_of(row, f) for f in kind.fields if f not in ("source", "resource_type", "entry_type")]
    return " — ".join(p for p in parts if p)[:2000]


def parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ToolFailure(f"'{name}' must be an ISO 8601 date or time.")
    try:
        return parse_iso(value)
    except ValueError:
        raise ToolFailure(f"'{name}' must be an ISO 8601 date or time, not {value!r}.") from None
