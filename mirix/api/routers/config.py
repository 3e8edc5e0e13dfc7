from __future__ import annotations

from fastapi import APIRouter

from mirix.api.deps import CurrentActor, Server
from mirix.schemas.config import PublicEmbeddingConfig, PublicLLMConfig

router = APIRouter(prefix="/config", tags=["config"])


@router.get("/llm", response_model=list[PublicLLMConfig], summary="LLM configurations this server offers by default")
async def list_llm_configs(server: Server, actor: CurrentActor):
    s = server.settings
    if s.llm_model is None:
        return []
    return [
        PublicLLMConfig(
            model=s.llm_model,
            model_endpoint_type=s.llm_endpoint_type,
            model_endpoint=s.llm_endpoint,
            context_window=s.llm_context_window,
        )
    ]


@router.get(
    "/embedding",
    response_model=list[PublicEmbeddingConfig],
    summary="Embedding configurations this server offers by default",
)
async def list_embedding_configs(server: Server, actor: CurrentActor):
    s = server.settings
    return [
        PublicEmbeddingConfig(
            embedding_endpoint_type=s.embedding_endpoint_type,
            embedding_model=s.embedding_model,
            embedding_dim=s.embedding_dim,
            embedding_endpoint=s.embedding_endpoint,
        )
    ]
