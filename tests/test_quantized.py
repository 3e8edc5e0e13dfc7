"""Pruning with int8 codes never changes what a float32 scan ranks first."""

from __future__ import annotations

import numpy as np
import pytest

from mirix.search.quantized import Query, best, quantize, scan


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def _coded(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.empty(matrix.shape, dtype=np.int8)
    table = np.empty((3, len(matrix)), dtype=np.float32)
    quantize(matrix, codes, table)
    return codes, table


def _best(matrix: np.ndarray, query: np.ndarray, k: int, rows: np.ndarray | None = None):
    codes, table = _coded(matrix)
    probe = Query(query)
    dots = np.empty(len(matrix), dtype=np.float32)
    scan(codes, probe, dots)
    return best(matrix, table, dots, probe, k, rows)


@pytest.mark.parametrize(("n", "dim"), [(1, 384), (7, 384), (5000, 384), (800, 1536)])
def test_the_same_rows_and_scores_as_a_float32_scan(n, dim):
    rng = np.random.default_rng(n)
    matrix = _unit(rng.standard_normal((n, dim)))
    for _ in range(10):
        query = _unit(rng.standard_normal(dim))
        exact = matrix @ query
        for k in (1, 10, 60, n + 5):
            found, scores = _best(matrix, query, k)
            expected = np.argsort(-exact, kind="stable")[:k]
            assert found.tolist() == expected.tolist()
            assert scores == pytest.approx(exact[expected], abs=1e-6)


def test_only_the_rows_asked_for():
    rng = np.random.default_rng(3)
    matrix = _unit(rng.standard_normal((3000, 384)))
    query = _unit(rng.standard_normal(384))
    rows = np.flatnonzero(np.arange(3000) % 3 == 1)
    found, _ = _best(matrix, query, 25, rows)
    exact = matrix @ query
    assert found.tolist() == rows[np.argsort(-exact[rows], kind="stable")[:25]].tolist()
    assert _best(matrix, query, 0)[0].size == 0


def test_near_ties_below_the_codes_resolution_are_ranked_by_the_exact_scores():
    """Rows closer to each other than one int8 step: the codes cannot tell them apart, the float32
    scores must. Each row nudges a shared direction by a different tiny amount."""
    rng = np.random.default_rng(5)
    base = _unit(rng.standard_normal(384))
    nudges = rng.standard_normal((2000, 384)) * 1e-4
    matrix = _unit(base + nudges)
    query = _unit(base + rng.standard_normal(384) * 1e-3)
    exact = matrix @ query
    found, scores = _best(matrix, query, 50)
    kth = np.sort(exact)[-50]
    assert len(found) == 50 and (exact[found] >= kth - 1e-7).all()
    assert list(scores) == sorted(scores, reverse=True)


def test_vectors_that_are_not_unit_length_and_zero_vectors():
    rng = np.random.default_rng(9)
    matrix = (rng.standard_normal((500, 64)) * rng.uniform(0.1, 5, (500, 1))).astype(np.float32)
    matrix[::50] = 0
    query = (rng.standard_normal(64) * 3).astype(np.float32)
    exact = matrix @ query
    found, scores = _best(matrix, query, 20)
    assert found.tolist() == np.argsort(-exact, kind="stable")[:20].tolist()
    assert scores == pytest.approx(exact[found], rel=1e-5)


@pytest.mark.parametrize("k", [1, 5, 60, 300])
def test_kth_largest_with_and_without_the_sample_narrowing_it_down(k):
    from mirix.search.quantized import _kth_largest

    rng = np.random.default_rng(k)
    spread = rng.standard_normal(20000).astype(np.float32)
    strided = spread.copy()
    strided[::16] += 100  # the sample holds all the largest values: its guess is too high to use
    tiny = spread[:50]  # too few values for a sample
    for values in (spread, strided, tiny):
        assert _kth_largest(values, min(k, len(values))) == np.sort(values)[-min(k, len(values))]
