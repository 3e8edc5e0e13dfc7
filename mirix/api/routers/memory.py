"""Memory search, retrieval, listing, per-item edits, history and bulk import."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from mirix.api.deps import CurrentActor, Server
from mirix.errors import NotFoundError, UnprocessableError
from mirix.schemas.common import IdStr
from mirix.schemas.memory import (
    FIELDS_MODEL,
    PATCH_MODEL,
    HistoryEntry,
    ImportRequest,
    ImportResponse,
    RetrieveConversationRequest,
)
from mirix.schemas.tags import check_stored_tags
from mirix.search.filters import validate_filter_tags
from mirix.services.actor import Actor
from mirix.services.memory.kinds import SEARCHABLE, MemoryKind, kind_named
from mirix.services.memory.retrieval import Retrieval, core_section, parse_date
from mirix.services.memory.search import METHODS, SearchQuery
from mirix.services.memory.views import component_item, core_item, patch_item, search_item

router = APIRouter(prefix="/memory", tags=["memory"])

Limit = Annotated[int, Query(ge=1, le=1000)]


def parse_json_tags(raw: str | None, name: str = "filter_tags") -> Any:
    """Query-string filters arrive as JSON text."""
    if raw is None or not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise UnprocessableError(f"Invalid {name} JSON") from None


def split_scope(tags: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Separate a ``scope`` entry (which narrows the read scopes) from the tag filter, then check
    the filter. MIRIX clients may also send ``read_scopes``; the client's own scopes apply instead."""
    if tags is None:
        return None, None
    if not isinstance(tags, dict):
        raise UnprocessableError("filter_tags must be a JSON object")
    scope = tags.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise UnprocessableError("filter_tags.scope must be one scope name")
    rest = validate_filter_tags({k: v for k, v in tags.items() if k not in ("scope", "read_scopes")})
    return rest or None, scope


def memory_kinds(memory_type: str) -> tuple[MemoryKind, ...]:
    if memory_type.strip().lower() == "all":
        return SEARCHABLE
    try:
        kind = kind_named(memory_type)
    except KeyError:
        kind = None
    if kind is None or kind not in SEARCHABLE:
        names = ", ".join(k.name for k in SEARCHABLE)
        raise UnprocessableError(f"memory_type must be one of {names} or all")
    return (kind,)


def _field(search_field: str) -> str | None:
    return None if search_field in ("", "null", "None") else search_field


class SearchParams(BaseModel):
    """The query parameters /memory/search and /memory/search_all_users share (MIRIX's names).

    A model read as ``Query()`` rather than a dataclass under ``Depends()``: FastAPI calls a class
    dependency in a worker thread, one thread hop per search."""

    memory_type: str = "all"
    search_field: str = "null"
    search_method: str = Field("hybrid", description="bm25, embedding, hybrid (default), string_match, fuzzy_match")
    limit: int = Field(10, ge=1, le=1000)
    filter_tags: str | None = Field(None, description="JSON object, see the filter grammar")
    similarity_threshold: float | None = Field(None, ge=0, le=2)
    start_date: str | None = None
    end_date: str | None = None
    include_core_memory: bool = False


async def _search_body(
    server: Server, actor: Actor, query: str, params: SearchParams, user_id: str | None, block_tags: Any = None
) -> dict[str, Any]:
    """Run the search and shape MIRIX's response; ``user_id=None`` searches the whole organization.

    The body holds JSON types only, so the search routes return it as a ``JSONResponse`` directly:
    FastAPI's generic encoder would walk every value of every hit again (~1 ms per request)."""
    kinds = memory_kinds(params.memory_type)
    if params.search_method not in METHODS:
        raise UnprocessableError(f"search_method must be one of {', '.join(METHODS)}")
    tags, scope = split_scope(parse_json_tags(params.filter_tags))
    hits = await server.search.search(
        actor,
        SearchQuery(
            query=query,
            kinds=kinds,
            method=params.search_method,
            field=None if len(kinds) > 1 else _field(params.search_field),
            limit=params.limit,
            user_id=user_id,
            filter_tags=tags,
            scope=scope,
            similarity_threshold=params.similarity_threshold,
            start=parse_date(params.start_date, "start_date"),
            end=parse_date(params.end_date, "end_date"),
        ),
    )
    results = [search_item(hit.kind, hit.row, hit.score, with_user=user_id is None) for hit in hits]
    if params.include_core_memory:
        blocks = await server.blocks.for_user(actor, user_id, limit=params.limit or 50, tags=block_tags)
        results += [core_item(block) for block in blocks]
    dates = None
    if params.start_date is not None or params.end_date is not None:
        dates = {"start": params.start_date, "end": params.end_date}
    return {
        "success": True,
        "query": query,
        "memory_type": params.memory_type,
        "search_field": params.search_field,
        "search_method": params.search_method,
        "date_range": dates,
        "results": results,
        "count": len(results),
        "filter_tags": tags,
    }


@router.get("/search", summary="Search one user's memories")
async def search(
    server: Server,
    actor: CurrentActor,
    params: Annotated[SearchParams, Query()],
    user_id: IdStr | None = None,
    query: Annotated[str, Query(max_length=4000)] = "",
):
    body = await _search_body(server, actor, query, params, user_id or actor.default_user_id)
    body.pop("filter_tags")
    return JSONResponse(body)


@router.get("/search_all_users", summary="Search the memories of every user of the organization")
async def search_all_users(
    server: Server,
    actor: CurrentActor,
    params: Annotated[SearchParams, Query()],
    query: Annotated[str, Query(max_length=4000)],
    client_id: str | None = None,
    org_id: str | None = None,
    block_filter_tags: str | None = None,
):
    # MIRIX let these parameters pick another client or organization to search; here they can
    # only name the caller's own.
    if client_id not in (None, actor.client_id) or org_id not in (None, actor.organization_id):
        raise NotFoundError("Client or organization not found")
    block_tags = validate_filter_tags(parse_json_tags(block_filter_tags, "block_filter_tags"))
    body = await _search_body(server, actor, query, params, None, block_tags)
    return JSONResponse(
        {
            **body,
            "client_id": actor.client_id,
            "organization_id": actor.organization_id,
            "read_scopes": list(actor.read_scopes),
        }
    )


def _retrieval_body(retrieval: Retrieval, **extra: Any) -> dict[str, Any]:
    start, end = retrieval.date_range or (None, None)
    return {
        "success": True,
        **extra,
        "date_range": {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None}
        if retrieval.date_range
        else None,
        "memories": retrieval.memories,
    }


@router.post("/retrieve/conversation", summary="Memories relevant to a conversation, ready for a prompt")
async def retrieve_conversation(server: Server, actor: CurrentActor, body: RetrieveConversationRequest):
    user_id = body.user_id or actor.default_user_id
    tags, scope = split_scope(body.filter_tags)
    timezone = await server.users.timezone_of(actor, user_id)
    topics, temporal_text = await server.conversation_topics(actor, body.messages)
    retrieval = await server.retriever.for_conversation(
        actor,
        user_id,
        timezone,
        body.messages,
        body.limit,
        tags,
        parse_date(body.start_date, "start_date"),
        parse_date(body.end_date, "end_date"),
        topics=topics,
        temporal_text=temporal_text,
    )
    return _retrieval_body(retrieval, topics=retrieval.topics, temporal_expression=retrieval.temporal_expression)


@router.get("/retrieve/topic", summary="Memories about a topic, ready for a prompt")
async def retrieve_topic(
    server: Server,
    actor: CurrentActor,
    user_id: IdStr | None = None,
    topic: Annotated[str, Query(max_length=4000)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    filter_tags: str | None = None,
    use_cache: bool = True,
):
    tags, _ = split_scope(parse_json_tags(filter_tags))
    retrieval = await server.retriever.for_keywords(actor, user_id or actor.default_user_id, topic, limit, tags)
    return _retrieval_body(retrieval, topic=topic)


@router.get("/components", summary="A user's most recent memories of each type")
async def components(
    server: Server,
    actor: CurrentActor,
    user_id: IdStr | None = None,
    memory_type: str = "all",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
):
    user_id = user_id or actor.default_user_id
    wanted = memory_type.strip().lower()
    kinds = SEARCHABLE if wanted in ("all", "core") else memory_kinds(memory_type)
    memories: dict[str, Any] = {}
    if wanted != "core":
        for kind in kinds:
            rows = await server.memories.recent(actor, kind, user_id, limit)
            memories[kind.name] = {
                "total_count": await server.memories.count(actor, kind, user_id),
                "items": [component_item(kind, row) for row in rows],
            }
    if wanted in ("all", "core"):
        memories["core"] = core_section(await server.blocks.for_user(actor, user_id, limit=limit))
    return {"success": True, "user_id": user_id, "memory_type": memory_type, "limit": limit, "memories": memories}


@router.get("/fields", summary="Searchable fields per memory type")
async def fields(actor: CurrentActor):
    result = {kind.name: list(kind.search_fields) for kind in SEARCHABLE}
    result["core"] = ["label", "value"]
    return {"success": True, "fields": result}


@router.post("/import", response_model=ImportResponse, summary="Write typed memories directly, without an LLM")
async def import_memories(server: Server, actor: CurrentActor, body: ImportRequest):
    actor.require_write_scope()
    groups: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for position, item in enumerate(body.items):
        extra = dict(item.model_extra or {})
        try:
            fields_model = FIELDS_MODEL[item.memory_type].model_validate({**extra, "occurred_at": item.occurred_at})
        except ValidationError as exc:
            error = exc.errors()[0]
            raise UnprocessableError(f"items[{position}].{'.'.join(map(str, error['loc']))}: {error['msg']}") from None
        values = fields_model.model_dump(exclude_none=True)
        values["filter_tags"] = check_stored_tags(item.filter_tags, f"items[{position}].filter_tags")
        groups.setdefault((item.memory_type, item.user_id), []).append((position, values))
    ids: list[str] = [""] * len(body.items)
    for (memory_type, user_id), entries in groups.items():
        rows = await server.memories.insert_many(actor, kind_named(memory_type), user_id, [v for _, v in entries])
        for (position, _), row in zip(entries, rows, strict=True):
            ids[position] = row.id
    return ImportResponse(ids=ids, count=len(ids))


def _register_item_routes(kind: MemoryKind) -> None:
    label = kind.name.replace("_", " ").capitalize()
    patch_model = PATCH_MODEL[kind.name]

    async def update_item(
        server: Server,
        actor: CurrentActor,
        memory_id: IdStr,
        body: dict,  # replaced below by the type's own PATCH model
        user_id: IdStr | None = None,
    ):
        changes = body.model_dump(exclude_unset=True)
        row = await server.memories.update(actor, kind, memory_id, changes, user_id=user_id)
        return {"success": True, "message": f"{label} memory {memory_id} updated", "memory": patch_item(kind, row)}

    # Annotations are strings under `from __future__ import annotations`; the per-type body model
    # is a local, so it is set as a real type for FastAPI to read.
    update_item.__annotations__["body"] = Annotated[patch_model, Body()]

    # ``user_id``, where given, must be the item's user: a caller naming the wrong user changes nothing.
    async def delete_item(server: Server, actor: CurrentActor, memory_id: IdStr, user_id: IdStr | None = None):
        await server.memories.delete(actor, kind, memory_id, user_id=user_id)
        return {"success": True, "message": f"{label} memory {memory_id} deleted"}

    async def item_history(server: Server, actor: CurrentActor, memory_id: IdStr, user_id: IdStr | None = None):
        rows = await server.memories.history(actor, kind, memory_id, user_id)
        return {
            "success": True,
            "memory_id": memory_id,
            "history": [HistoryEntry.model_validate(row).model_dump(mode="json") for row in rows],
        }

    path = f"/{kind.name}/{{memory_id}}"
    router.add_api_route(path, update_item, methods=["PATCH"], summary=f"Update a {kind.name} memory")
    router.add_api_route(path, delete_item, methods=["DELETE"], summary=f"Delete a {kind.name} memory")
    router.add_api_route(
        f"{path}/history", item_history, methods=["GET"], summary=f"Every change to a {kind.name} memory"
    )


for _kind in SEARCHABLE:
    _register_item_routes(_kind)
