"""Exact top-k by dot product, scanning int8 codes of the vectors instead of the float32 vectors.

A scan over float32 vectors is memory-bound: 10k memories with two embedded fields are 30 MB of
float32, more than the last-level cache, so every search streams them from RAM and evicts what
the rest of the server was using. Their int8 codes are a quarter of that, and the integer dot
products run in SIMD kernels (``numkong``).

The codes only approximate the scores, so they are used to prune, never to rank. Each row
``x ≈ scale·c`` keeps ``error = ‖x − scale·c‖`` and ``norm = ‖scale·c‖``, and the query
``q ≈ t·d`` likewise. Then, by Cauchy–Schwarz,

    |x·q − scale·t·(c·d)|  ≤  error·‖q‖ + norm·‖q − t·d‖

so every row's true score lies within a known interval. The ``k``-th highest lower end is a score
that ``k`` rows are sure to reach; a row whose upper end falls below it cannot be among the best
``k``. Only the rows left are scored again in float32 and ranked, so the result is the one a full
float32 scan gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Added to every bound: float32 rounding in a dot product of a few thousand terms, in the codes'
#: scores and in the bound itself stays well below this.
SLACK = 1e-4
#: Rows of the per-vector table: x ≈ scale·codes, error = ‖x − scale·codes‖, norm = ‖scale·codes‖.
SCALE, ERROR, NORM = 0, 1, 2
_CHUNK_ROWS = 4096


def quantize(rows: np.ndarray, codes: np.ndarray, table: np.ndarray) -> None:
    """Write the int8 codes of float32 ``rows`` into ``codes`` (shaped like ``rows``) and their
    scale, error and norm into ``table`` (shape ``(3, len(rows))``)."""
    import numpy as np

    for start in range(0, len(rows), _CHUNK_ROWS):  # in chunks: the temporaries are row-sized
        part = slice(start, start + _CHUNK_ROWS)
        chunk = rows[part]
        peak = np.abs(chunk).max(axis=1) if chunk.shape[1] else np.zeros(len(chunk), dtype=np.float32)
        scale = np.where(peak > 0, peak / 127, 1).astype(np.float32)
        steps = np.clip(np.rint(chunk / scale[:, None]), -127, 127)
        codes[part] = steps
        restored = steps * scale[:, None]
        table[SCALE, part] = scale
        table[ERROR, part] = np.linalg.norm(chunk - restored, axis=1)
        table[NORM, part] = np.linalg.norm(restored, axis=1)


class Query:
    """A query vector with its int8 codes, for ``scan`` and ``best``."""

    def __init__(self, vector: np.ndarray) -> None:
        import numpy as np

        self.vector = np.ascontiguousarray(vector, dtype=np.float32)
        self.codes = np.empty((1, len(self.vector)), dtype=np.int8)
        table = np.empty((3, 1), dtype=np.float32)
        quantize(self.vector[None, :], self.codes, table)
        self.scale, self.error = float(table[SCALE, 0]), float(table[ERROR, 0])
        self.norm = float(np.linalg.norm(self.vector))


def load_kernels() -> None:
    """Import the SIMD kernels (~0.1 s, holding the GIL) before serving rather than during the
    first vector search."""
    import numkong  # noqa: F401


def scan(codes: np.ndarray, query: Query, out: np.ndarray) -> None:
    """``out[i] = codes[i] · query.codes`` (exact integers, held as float32). Releases the GIL."""
    import numkong

    numkong.cdist(query.codes, codes, metric="dot", out=out.reshape(1, -1))


def best(
    matrix: np.ndarray,
    table: np.ndarray,
    dots: np.ndarray,
    query: Query,
    k: int,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``matrix`` (only those in ``rows``, if given) with the highest float32 dot
    product with the query, best first, as (row indices, scores); ``dots`` is ``scan``'s output."""
    import numpy as np

    if rows is not None:
        table, dots = table[:, rows], dots[rows]
    n = len(dots)
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
    # One bound for all rows (the largest row error): a little looser than per-row bounds, but
    # it leaves a single pass over the rows after the partition.
    bound = float(table[ERROR].max()) * query.norm + float(table[NORM].max()) * query.error + SLACK
    approx = dots * table[SCALE]  # the codes' scores, divided by the query's scale
    kth = _kth_largest(approx, k)
    candidates = np.flatnonzero(approx >= kth - 2 * bound / query.scale)
    if rows is not None:
        candidates = rows[candidates]
    scores = matrix[candidates] @ query.vector
    order = np.argsort(-scores, kind="stable")[:k]
    return candidates[order], scores[order]


def _kth_largest(values: np.ndarray, k: int) -> float:
    """The ``k``-th largest of ``values``. A partition of all of them is the slow part of a
    search, so a sample's guess first narrows them down: every value above the guess is kept,
    so when at least ``k`` are, the answer is among them."""
    import numpy as np

    n = len(values)
    step = 16
    if n >= 64 * step and k * 4 * step <= n:
        sample = values[::step]
        rank = 2 * k // step + 1  # about twice the values needed end up above this guess
        guess = np.partition(sample, len(sample) - rank)[len(sample) - rank]
        above = values[values >= guess]
        if len(above) >= k:
            return float(np.partition(above, len(above) - k)[len(above) - k])
    return float(np.partition(values, n - k)[n - k])
