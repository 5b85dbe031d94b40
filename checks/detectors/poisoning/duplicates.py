"""(b) Near-duplicate rows with different labels: the same input taught two answers.

Rows are compared in the shared compact space (standardised, log-compressed). Exact copies are
grouped by hashing; the remaining distinct rows are paired when their RMS difference per feature
is within `duplicate_tolerance` and within a tenth of the typical nearest-neighbour distance (so
dense, low-dimensional data does not turn ordinary neighbours into "duplicates"). Candidate pairs
come from sorting rows along a few random directions (see `_near_pairs`) and are confirmed in
full space; a tree or all-pairs search costs far more at 100k rows and 50 features.
"""

from __future__ import annotations

import numpy as np

from checks.detectors.poisoning.context import Context
from checks.findings import Finding, Severity

NN_FRACTION = 0.1  # near-duplicates must be this much closer than the median nearest-neighbour distance
PROJECTED_DIMS = 8
SWEEPS = 3  # random directions along which rows are sorted to find candidate pairs
WINDOW = 128  # rows compared with each row along each direction
GROUPS_SHOWN = 50  # conflicting groups listed in evidence (every row is still in `rows`)


def find_conflicting_duplicates(ctx: Context) -> list[Finding]:
    """One finding listing every row in a near-duplicate group that carries more than one label."""
    tolerance = effective_tolerance(ctx)
    group = duplicate_groups(ctx.compact, tolerance, seed=ctx.config.seed)
    ctx.checkpoint("conflicting_duplicates: grouped")
    conflicting = _conflicting(group, ctx.labels)
    if not conflicting.any():
        return []
    rows = np.flatnonzero(conflicting)
    ctx.claimed.update(rows.tolist())
    return [_finding(ctx, group, rows, tolerance)]


def effective_tolerance(ctx: Context) -> float:
    """RMS tolerance: the configured one, capped by a tenth of the median nearest-row distance."""
    _, distances = ctx.neighbours
    nearest = distances[:, 0] / np.sqrt(ctx.X.shape[1])
    positive = nearest[nearest > 0]
    typical = float(np.median(positive)) if len(positive) else ctx.config.duplicate_tolerance
    return min(ctx.config.duplicate_tolerance, NN_FRACTION * typical)


def duplicate_groups(space: np.ndarray, tolerance: float, *, seed: int = 0) -> np.ndarray:
    """Group id per row: rows within `tolerance` (RMS per feature) of each other, transitively."""
    d = space.shape[1]
    keys = np.ascontiguousarray(np.round(space, 9) + 0.0)
    keys = keys.view(np.dtype((np.void, keys.dtype.itemsize * d))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    distinct = space[first]
    left, right = _near_pairs(distinct, tolerance * np.sqrt(d), seed)
    return _components(len(distinct), left, right)[inverse.ravel()]


def _near_pairs(points: np.ndarray, radius: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of distinct rows within `radius`, confirmed in full space.

    Candidates: rows sorted along SWEEPS random directions, each compared with the next WINDOW rows
    in that order, first in an 8-dimensional random projection (twice the radius, which misses a
    true pair with probability ~3e-5), then in full. Exhaustive up to WINDOW + 1 distinct rows;
    beyond, a pair is found when few rows fall between its two rows along some direction, which
    holds for copies with a small jitter and can miss pairs near the tolerance in very large data.
    """
    n, d = points.shape
    if n < 2 or radius <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    projected = points
    if d > PROJECTED_DIMS:  # E|W'x|^2 = |x|^2
        projected = points @ rng.normal(scale=1 / np.sqrt(PROJECTED_DIMS), size=(d, PROJECTED_DIMS))
    directions = rng.normal(size=(d, SWEEPS))
    keys = points @ (directions / np.linalg.norm(directions, axis=0))
    limit = (2 * radius) ** 2 if d > PROJECTED_DIMS else radius**2
    left, right = [], []
    for sweep in range(SWEEPS):
        order = np.argsort(keys[:, sweep], kind="stable")
        ranked = projected[order].astype(np.float32)
        for offset in range(1, min(WINDOW, n - 1) + 1):
            gap = ranked[offset:] - ranked[:-offset]
            close = np.flatnonzero(np.einsum("ij,ij->i", gap, gap) <= limit)
            left.append(order[close])
            right.append(order[close + offset])
    a, b = np.concatenate(left), np.concatenate(right)
    a, b = np.minimum(a, b), np.maximum(a, b)
    pairs = np.unique(np.stack([a, b], axis=1), axis=0) if len(a) else np.empty((0, 2), dtype=np.int64)
    close = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1) <= radius
    return pairs[close, 0], pairs[close, 1]


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected-component id (its smallest member) per node, by min-label propagation."""
    parent = np.arange(n)
    while len(left):
        low = np.minimum(parent[left], parent[right])
        updated = parent.copy()
        np.minimum.at(updated, left, low)
        np.minimum.at(updated, right, low)
        updated = updated[updated]
        if np.array_equal(updated, parent):
            break
        parent = updated
    return parent


def _conflicting(group: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows whose group carries more than one label."""
    size = group.max() + 1
    low = np.full(size, labels.max() + 1)
    high = np.full(size, -1)
    np.minimum.at(low, group, labels)
    np.maximum.at(high, group, labels)
    return low[group] != high[group]


def _consensus(ctx: Context, members: np.ndarray) -> int:
    """The label a group most likely deserves: summed probabilities, else the majority label."""
    if ctx.probabilities is not None:
        return int(ctx.probabilities[members, : ctx.k].sum(axis=0).argmax())
    return int(np.bincount(ctx.labels[members], minlength=ctx.k).argmax())


def _finding(ctx: Context, group: np.ndarray, rows: np.ndarray, tolerance: float) -> Finding:
    cfg = ctx.config
    share = len(rows) / ctx.n
    if share >= cfg.duplicate_high_fraction:
        severity = Severity.HIGH
    elif share >= cfg.duplicate_medium_fraction:
        severity = Severity.MEDIUM
    else:
        severity = Severity.LOW
    by_group = rows[np.argsort(group[rows], kind="stable")]
    ids, starts = np.unique(group[by_group], return_index=True)
    members = np.split(by_group, starts[1:])
    groups, suspected = [], []
    for member_rows in members:
        consensus = _consensus(ctx, member_rows)
        suspected.extend(member_rows[ctx.labels[member_rows] != consensus].tolist())
        if len(groups) < GROUPS_SHOWN:
            groups.append(
                {
                    "rows": ctx.rows(member_rows),
                    "labels": sorted({ctx.class_name(c) for c in ctx.labels[member_rows]}),
                    "likely_label": ctx.class_name(consensus),
                }
            )
    return ctx.finding(
        "conflicting_duplicates",
        severity,
        f"{len(rows)} rows in {len(ids)} groups of near-identical rows carry different labels",
        {
            "rows": ctx.rows(rows),
            "group_count": len(ids),
            "groups": groups,
            "suspected_rows": ctx.rows(np.asarray(suspected, dtype=int)),
            "tolerance_rms": round(tolerance, 6),
            "share": round(share, 6),
        },
        "Review each group and keep one correctly labelled copy (suspected_rows are the copies whose "
        "label disagrees with the detection model); drop the others and retrain. Many such groups "
        "point at copied rows with forged labels: trace where they entered the source.",
    )
