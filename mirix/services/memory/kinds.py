"""What each memory type is made of, declared once; the manager, search and API are generic.

Adding a field or a type means changing a declaration here (and a migration), not copying code.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirix.db.models.memory import (
    EpisodicMemory,
    KnowledgeVaultItem,
    MemoryMixin,
    ProceduralMemory,
    RawMemory,
    ResourceMemory,
    SemanticMemory,
)


@dataclass(frozen=True)
class MemoryKind:
    name: str
    model: type[MemoryMixin]
    id_prefix: str
    #: Fields the caller writes and reads, besides the common ones.
    fields: tuple[str, ...]
    #: Full-text indexed fields in weight order (at most four: PostgreSQL has weights A-D).
    text_fields: tuple[str, ...]
    #: BM25 weight per text field.
    text_weights: tuple[float, ...]
    #: Fields that get a vector each.
    embedded_fields: tuple[str, ...]
    #: Fields a caller may name as ``search_field`` (what MIRIX's /memory/fields lists).
    search_fields: tuple[str, ...]
    #: Fields a PATCH may change.
    editable_fields: tuple[str, ...]
    #: Fields holding lists of strings (joined for search and embedding).
    list_fields: tuple[str, ...] = ()
    #: A field whose value is put in front of every embedded text (``actor: text``): questions
    #: name people, and a turn's text alone often does not.
    embedding_context_field: str | None = None

    @property
    def table(self) -> str:
        return self.model.__tablename__

    @property
    def fts_table(self) -> str:
        return f"{self.table}_fts"

    def embedding_text(self, item: MemoryMixin | dict, field: str) -> str:
        """The text embedded for ``field``: the field's text, prefixed by the context field if any."""
        text = self.text_of(item, field)
        if self.embedding_context_field and text.strip():
            context = self.text_of(item, self.embedding_context_field).strip()
            if context:
                return f"{context}: {text}"
        return text

    def text_of(self, item: MemoryMixin | dict, field: str) -> str:
        value = item.get(field) if isinstance(item, dict) else getattr(item, field)
        if field in self.list_fields:
            return "\n".join(str(step) for step in value or [])
        return value or ""


EPISODIC = MemoryKind(
    name="episodic",
    model=EpisodicMemory,
    id_prefix="ep",
    fields=("event_type", "actor", "summary", "details"),
    text_fields=("summary", "details", "actor", "event_type"),
    text_weights=(1.0, 1.0, 0.5, 0.2),
    embedded_fields=("summary", "details"),
    embedding_context_field="actor",
    search_fields=("summary", "details"),
    editable_fields=("event_type", "actor", "summary", "details"),
)
SEMANTIC = MemoryKind(
    name="semantic",
    model=SemanticMemory,
    id_prefix="sem",
    fields=("name", "summary", "details", "source"),
    text_fields=("name", "summary", "details", "source"),
    text_weights=(1.5, 1.0, 1.0, 0.2),
    embedded_fields=("name", "summary", "details"),
    search_fields=("name", "summary", "details"),
    editable_fields=("name", "summary", "details", "source"),
)
PROCEDURAL = MemoryKind(
    name="procedural",
    model=ProceduralMemory,
    id_prefix="proc",
    fields=("entry_type", "summary", "steps"),
    text_fields=("summary", "steps", "entry_type"),
    text_weights=(1.0, 1.0, 0.2),
    embedded_fields=("summary", "steps"),
    search_fields=("summary", "steps"),
    editable_fields=("entry_type", "summary", "steps"),
    list_fields=("steps",),
)
RESOURCE = MemoryKind(
    name="resource",
    model=ResourceMemory,
    id_prefix="res",
    fields=("title", "summary", "resource_type", "content"),
    text_fields=("title", "summary", "content", "resource_type"),
    text_weights=(1.5, 1.0, 1.0, 0.2),
    embedded_fields=("summary",),
    search_fields=("summary", "content"),
    editable_fields=("title", "summary", "resource_type", "content"),
)
KNOWLEDGE_VAULT = MemoryKind(
    name="knowledge_vault",
    model=KnowledgeVaultItem,
    id_prefix="kv",
    fields=("entry_type", "source", "sensitivity", "secret_value", "caption"),
    # Secret values are deliberately not copied into a full-text index.
    text_fields=("caption", "source", "entry_type"),
    text_weights=(1.0, 0.5, 0.2),
    embedded_fields=("caption",),
    search_fields=("caption", "secret_value"),
    editable_fields=("entry_type", "source", "sensitivity", "secret_value", "caption"),
)
RAW = MemoryKind(
    name="raw",
    model=RawMemory,
    id_prefix="raw_mem",
    fields=("context",),
    text_fields=("context",),
    text_weights=(1.0,),
    embedded_fields=("context",),
    search_fields=("context",),
    editable_fields=("context",),
)

#: The five memory types the agents write and search covers, in MIRIX's order.
SEARCHABLE: tuple[MemoryKind, ...] = (EPISODIC, SEMANTIC, PROCEDURAL, RESOURCE, KNOWLEDGE_VAULT)
ALL_KINDS: dict[str, MemoryKind] = {kind.name: kind for kind in (*SEARCHABLE, RAW)}


def kind_named(name: str) -> MemoryKind:
    """The declaration for ``name``; accepts MIRIX's spellings (``knowledge``, ``episodic_memory``)."""
    key = name.strip().lower().removesuffix("_memory")
    key = {"knowledge": "knowledge_vault", "raw_memory": "raw"}.get(key, key)
    try:
        return ALL_KINDS[key]
    except KeyError:
        raise KeyError(name) from None
