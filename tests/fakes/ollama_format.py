"""Ollama embedding endpoints: ``/api/embed`` (current) and ``/api/embeddings`` (legacy)."""

from __future__ import annotations

from typing import Any


def embed_inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input", "")
    return [raw] if isinstance(raw, str) else [str(item) for item in raw]


def render_embed(vectors: list[list[float]], model: str, prompt_tokens: int) -> dict[str, Any]:
    # Durations are nanoseconds in Ollama's API; fixed values keep responses deterministic.
    return {
        "model": model,
        "embeddings": vectors,
        "total_duration": 1_000_000,
        "load_duration": 0,
        "prompt_eval_count": prompt_tokens,
    }


def render_legacy(vector: list[float]) -> dict[str, Any]:
    return {"embedding": vector}


def render_error(message: str) -> dict[str, Any]:
    return {"error": message}
