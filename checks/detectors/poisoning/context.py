"""What every poisoning pattern shares: validated inputs, one scaled space, one neighbour query,
the finding builder and the cooperative deadline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from checks.detectors.poisoning.config import CHECK, TAXONOMY, DeadlineReached, PoisoningConfig
from checks.findings import Finding, Severity


def compact_scale(X: np.ndarray) -> np.ndarray:
    """Standardise each column, then compress magnitudes with sign·log1p(|z|).

    A column's scale is floored at 1% of the median column's standard deviation, so a (nearly)
    constant column does not turn a tiny jitter into a large distance; compression keeps gross
    outliers far but stops one sparse column (a tiny standard deviation) dominating every distance.
    """
    std = X.std(axis=0)
    positive = std[std > 1e-12]
    floor = 0.01 * float(np.median(positive)) if len(positive) else 1.0
    z = (X - X.mean(axis=0)) / np.maximum(std, floor)
    return np.sign(z) * np.log1p(np.abs(z))


KNN_BUDGET = 100_000_000  # distance evaluations (rows x reference rows) of the shared kNN query
MIN_REFERENCE = 1_000
CHUNK = 2048  # query rows per distance block (a 2048 x reference float32 matrix)


def reference_size(n: int, cap: int) -> int:
    """Reference rows for a kNN over n rows: all of them when small; fewer as n grows, so that the
    query costs about KNN_BUDGET distance evaluations (1,000 reference rows at 100k rows)."""
    return min(n, cap, max(MIN_REFERENCE, KNN_BUDGET // max(n, 1)))


MIN_CLASS_REFERENCE = 20  # rows of each class (or all of a smaller class) in a sampled reference


def sample_reference(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Sorted reference rows for the shared kNN: every row when small (reference_size), else a seeded
    uniform sample topped up to MIN_CLASS_REFERENCE rows per class, so a rare class still has
    neighbours of its own and its rows are not outvoted into looking mislabelled."""
    n = len(labels)
    size = reference_size(n, cap)
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.choice(n, size, replace=False)] = True
    for code in np.unique(labels):
        members = np.flatnonzero(labels == code)
        missing = min(MIN_CLASS_REFERENCE, len(members)) - int(chosen[members].sum())
        if missing > 0:
            chosen[rng.choice(members[~chosen[members]], missing, replace=False)] = True
    return np.flatnonzero(chosen)


def neighbour_vote(labels: np.ndarray, neighbours: np.ndarray, k: int) -> np.ndarray:
    """Share of each class among the valid (>= 0) neighbours, floored at 1e-3 and renormalised."""
    valid = neighbours >= 0
    votes = np.zeros((len(neighbours), k))
    rows = np.repeat(np.arange(len(neighbours)), valid.sum(axis=1))
    np.add.at(votes, (rows, labels[neighbours[valid]]), 1.0)
    votes = np.maximum(votes / np.maximum(votes.sum(axis=1, keepdims=True), 1.0), 1e-3)
    return votes / votes.sum(axis=1, keepdims=True)


def nearest_reference(
    space: np.ndarray, reference: np.ndarray, queries: np.ndarray, k: int, columns: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest reference rows (sorted indices) of each query row, never the row itself:
    (indices, distances), nearest first.

    Brute force in float32 blocks (one matrix product and one partial sort per block): faster
    than a tree in tens of dimensions, and single-threaded apart from the matrix product.
    `columns` (a boolean mask) restricts the distance to some features without copying `space`.
    """
    k = min(k, len(reference) - 1)
    columns = np.ones(space.shape[1], dtype=bool) if columns is None else columns
    points = np.asarray(space[np.ix_(reference, columns)], dtype=np.float32)
    squared = np.einsum("ij,ij->i", points, points)
    indices = np.empty((len(queries), k), dtype=np.int64)
    distances = np.empty((len(queries), k), dtype=np.float64)
    for start in range(0, len(queries), CHUNK):
        rows = queries[start : start + CHUNK]
        block = np.asarray(space[np.ix_(rows, columns)], dtype=np.float32)
        partial = block @ points.T  # |q - r|^2 - |q|^2 = |r|^2 - 2 q.r, computed in place
        partial *= -2
        partial += squared[None, :]
        slot = np.minimum(np.searchsorted(reference, rows), len(reference) - 1)
        own = np.flatnonzero(reference[slot] == rows)
        partial[own, slot[own]] = np.inf  # a row is never its own neighbour
        near = np.argpartition(partial, k - 1, axis=1)[:, :k]
        near_d2 = np.take_along_axis(partial, near, axis=1) + np.einsum("ij,ij->i", block, block)[:, None]
        order = np.argsort(near_d2, axis=1, kind="stable")
        indices[start : start + len(rows)] = reference[np.take_along_axis(near, order, axis=1)]
        near_d2 = np.take_along_axis(near_d2, order, axis=1)
        distances[start : start + len(rows)] = np.sqrt(np.maximum(near_d2, 0))
    return indices, distances


@dataclass
class Context:
    """Inputs of one poisoning scan plus what the patterns compute once and share."""

    X: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray | None
    feature_names: list[str]
    class_names: list[str]
    positions: np.ndarray
    config: PoisoningConfig
    subject_identity: str
    subject: dict[str, Any]
    progress: dict[str, Any] = field(default_factory=dict)
    deadline: Callable[[], bool] | None = None
    claimed: set[int] = field(default_factory=set)  # rows already named by an earlier pattern

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def k(self) -> int:
        return int(self.labels.max()) + 1 if self.n else 0

    @cached_property
    def compact(self) -> np.ndarray:
        return compact_scale(self.X)

    @cached_property
    def reference(self) -> np.ndarray:
        """Rows the shared kNN compares against: all rows, or a seeded subsample (sample_reference)."""
        return sample_reference(self.labels, self.config.reference_rows, self.config.seed)

    @cached_property
    def neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """2k nearest reference rows of every row in the compact space (spares let a second pass
        skip rows found suspicious without another query)."""
        self.checkpoint("neighbours")
        return nearest_reference(self.compact, self.reference, np.arange(self.n), 2 * self.config.neighbors)

    def checkpoint(self, stage: str) -> None:
        """Record the stage reached; raise DeadlineReached once the caller's budget is spent."""
        self.progress["stage"] = stage
        if self.deadline is not None and self.deadline():
            raise DeadlineReached("poisoning", dict(self.progress))

    def class_name(self, code: int) -> str:
        return str(self.class_names[code])

    def feature(self, column: int) -> str:
        return str(self.feature_names[column])

    def rows(self, indices: np.ndarray | Sequence[int]) -> list[int]:
        """File-order positions of row indices, ascending."""
        return sorted(int(p) for p in self.positions[np.asarray(indices, dtype=int)])

    def finding(
        self, key: str, severity: str | Severity, title: str, evidence: dict[str, Any], remediation: str
    ) -> Finding:
        return Finding(
            check=CHECK,
            severity=severity,
            title=title,
            stage="data",
            subject_identity=self.subject_identity,
            key=key,
            subject=self.subject,
            evidence=evidence,
            taxonomy=dict(TAXONOMY),
            remediation=remediation,
        )


def build_context(
    features: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray | None,
    *,
    feature_names: Sequence[str] | None,
    classes: Sequence[Any] | None,
    row_positions: np.ndarray | Sequence[int] | None,
    subject_identity: str,
    subject: dict[str, Any] | None,
    config: PoisoningConfig,
    progress: dict[str, Any] | None,
    deadline: Callable[[], bool] | None,
) -> Context:
    """Validate shapes (ValueError naming the mismatch) and impute non-finite cells by column median."""
    X = np.array(features, dtype=float, copy=True)
    y = np.asarray(labels, dtype=int)
    if X.ndim != 2 or X.shape[0] != len(y):
        raise ValueError(f"features must be a (rows, columns) matrix with one row per label; got {X.shape}")
    if len(y) and (y.min() < 0):
        raise ValueError("labels must be encoded as 0..k-1")
    k = int(y.max()) + 1 if len(y) else 0
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=float)
        if probabilities.shape[0] != len(y) or probabilities.shape[1] < k:
            raise ValueError(
                f"probabilities must be (rows, classes) = ({len(y)}, >={k}); got {probabilities.shape}"
            )
        check_probabilities(probabilities)
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} feature names for {X.shape[1]} feature columns")
    class_names = [str(c) for c in classes] if classes is not None else [str(c) for c in range(k)]
    if len(class_names) < k:
        raise ValueError(f"{len(class_names)} class names for label codes up to {k - 1}")
    positions = np.arange(len(y)) if row_positions is None else np.asarray(row_positions, dtype=int)
    if len(positions) != len(y):
        raise ValueError(f"{len(positions)} row positions for {len(y)} rows")
    impute_median(X)
    return Context(
        X,
        y,
        probabilities,
        names,
        class_names,
        positions,
        config,
        subject_identity,
        subject or {},
        progress if progress is not None else {},
        deadline,
    )


def check_probabilities(probabilities: np.ndarray) -> None:
    """ValueError unless every row is a probability distribution (finite, >= 0, sums to 1): NaN
    margins compare false everywhere, so bad probabilities would silently hide flipped labels."""
    if probabilities.size and (
        not np.isfinite(probabilities).all()
        or probabilities.min() < 0
        or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    ):
        raise ValueError("probabilities must be finite, non-negative and sum to 1 in every row")


def impute_median(X: np.ndarray) -> np.ndarray:
    """Replace non-finite cells in place by their column's median (0 for an all-missing column)."""
    bad = ~np.isfinite(X)
    if bad.any():
        X[bad] = np.nan
        medians = np.nanmedian(np.where(np.isnan(X).all(axis=0), 0.0, X), axis=0)
        X[bad] = np.take(medians, np.nonzero(bad)[1])
    return X
