"""How memory rows look on the wire, per endpoint — MIRIX's shapes, derived from the declarations."""

from __future__ import annotations

from typing import Any

from mirix.db.models.memory import MemoryMixin
from mirix.services.memory.kinds import EPISODIC, KNOWLEDGE_VAULT, PROCEDURAL, RESOURCE, SEMANTIC, MemoryKind


def tags(row: MemoryMixin) -> dict[str, Any]:
    """filter_tags as callers know them: the scope is one of the tags."""
    return {**(row.filter_tags or {}), "scope": row.scope}


def search_item(kind: MemoryKind, row: MemoryMixin, score: float, *, with_user: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {"memory_type": kind.name, "id": row.id}
    if kind is EPISODIC:
        timestamp = row.occurred_at.isoformat()
        item.update(
            timestamp=timestamp,
            occurred_at=timestamp,
            event_type=row.event_type,
            actor=row.actor,
            summary=row.summary,
            details=row.details,
        )
    elif kind is RESOURCE:
        item.update(resource_type=row.resource_type, title=row.title, summary=row.summary, content=row.content[:200])
    elif kind is KNOWLEDGE_VAULT:
        item.update(
            entry_type=row.entry_type,
            source=row.source,
            sensitivity=row.sensitivity,
            secret_value=row.secret_value,
            caption=row.caption,
        )
    else:
        item.update({field: getattr(row, field) for field in kind.fields})
    item.update(filter_tags=tags(row), score=score)
    if with_user:
        item["user_id"] = row.user_id
    return item


def component_item(kind: MemoryKind, row: MemoryMixin) -> dict[str, Any]:
    item: dict[str, Any] = {"id": row.id}
    if kind is EPISODIC:
        item["occurred_at"] = row.occurred_at.isoformat()
    item.update({field: getattr(row, field) for field in kind.fields})
    item.update(filter_tags=tags(row), created_at=row.created_at.isoformat(), updated_at=row.updated_at.isoformat())
    return item


#: The compact fields retrieval puts into a prompt, per type (MIRIX's retrieve shapes).
RETRIEVAL_FIELDS: dict[str, tuple[str, ...]] = {
    SEMANTIC.name: ("name", "summary", "details"),
    RESOURCE.name: ("title", "summary", "resource_type"),
    PROCEDURAL.name: ("entry_type", "summary", "steps"),
    KNOWLEDGE_VAULT.name: ("caption",),
}


def retrieval_item(kind: MemoryKind, row: MemoryMixin) -> dict[str, Any]:
    if kind is EPISODIC:
        return {
            "id": row.id,
            "timestamp": row.occurred_at.isoformat(),
            "event_type": row.event_type,
            "summary": row.summary,
            "details": row.details,
        }
    return {"id": row.id, **{field: getattr(row, field) for field in RETRIEVAL_FIELDS[kind.name]}}


def patch_item(kind: MemoryKind, row: MemoryMixin) -> dict[str, Any]:
    return {"id": row.id, **{field: getattr(row, field) for field in kind.fields if field != "secret_value"}}


def core_item(block: Any) -> dict[str, Any]:
    """A core block among search results."""
    return {
        "memory_type": "core",
        "id": block.id,
        "user_id": block.user_id,
        "label": block.label,
        "value": block.value,
        "scope": block.scope,
    }
