"""Deterministic text embeddings for the fake.

A signed bag-of-words hashing vector (the "hashing trick"), L2-normalised: texts that share
words get a high cosine similarity and unrelated texts are near orthogonal, so retrieval tests
rank results meaningfully without a model. blake2b (not ``hash()``) keeps vectors identical
across processes and runs.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct

DEFAULT_DIMENSION = 384

_TOKEN = re.compile(r"[a-z0-9]+")


def _slot(token: str, dimension: int) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
    number = int.from_bytes(digest, "little")
    return number % dimension, (1.0 if number >> 63 else -1.0)


def embed(text: str, dimension: int = DEFAULT_DIMENSION) -> list[float]:
    """Unit vector of ``dimension`` floats for ``text``.

    Term frequency is damped (1 + log tf) so a repeated word does not dominate. Text without
    any word still gets a fixed unit vector, since real APIs never return zero vectors.
    """
    if dimension < 1:
        raise ValueError("dimension must be positive")
    counts: dict[str, int] = {}
    for token in _TOKEN.findall(text.lower()):
        counts[token] = counts.get(token, 0) + 1
    vector = [0.0] * dimension
    for token, count in counts.items():
        index, sign = _slot(token, dimension)
        vector[index] += sign * (1.0 + math.log(count))
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        vector[0] = 1.0
        return vector
    return [x / norm for x in vector]


def to_base64(vector: list[float]) -> str:
    """OpenAI's ``encoding_format=base64``: little-endian float32 bytes, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
