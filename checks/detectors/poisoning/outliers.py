"""(d) Outliers: rows far from every other row, for review (low severity by default).

Score: log distance to the 5th nearest reference row in the compact space, as a robust z-score
(median and MAD over the rows at a positive distance). Log distances make the threshold
scale-free; the compact space keeps one sparse column from making its rare non-zero rows look
like outliers.
Rows with five identical reference rows (distance 0, recomputed in float64: the shared float32
query leaves up to ~1e-3 of rounding noise on zero distances) are never outliers and are left out
of the median and spread: in categorical or low-dimensional data most rows tie, the MAD of all
rows is 0 and the others scored ~1e10 (or the rounding noise inflated the spread and hid real
outliers). When the MAD of the other rows is 0 too (they tie at one distance), the spread is
1.2533 x their mean absolute deviation (the standard deviation, for normal data); when that is 0,
or fewer than two rows are at a positive distance, nothing is an outlier.
A tight cluster of identical extreme rows is not isolated, so this pattern misses it; the backdoor
(label-pure groups) and duplicate patterns are the ones that see such clusters.
"""

from __future__ import annotations

import numpy as np

from checks.detectors.poisoning.context import Context
from checks.findings import Finding

NEIGHBOUR = 5  # the k-th nearest row whose distance is scored
EXTREME = np.log1p(5.0)  # compact value of a cell 5 standard deviations out
MIN_SPREAD = 1e-6  # a smaller spread of log distances (a ratio of 1.000001) is no spread at all
BLOCK = 8192  # rows per float64 distance block


def outlier_scores(ctx: Context) -> np.ndarray:
    """Robust z-score of each row's log distance to its 5th nearest reference row; -inf for rows
    at distance 0, and for every row when the distances have no spread (see module doc)."""
    indices, _ = ctx.neighbours
    column = min(NEIGHBOUR, indices.shape[1]) - 1
    distance = np.empty(ctx.n)
    for start in range(0, ctx.n, BLOCK):
        block = slice(start, start + BLOCK)
        gap = ctx.compact[block] - ctx.compact[indices[block, column]]
        distance[block] = np.sqrt(np.einsum("ij,ij->i", gap, gap))
    score = np.full(ctx.n, -np.inf)
    apart = distance > 0
    if apart.sum() < 2:
        return score
    log = np.log(distance[apart])
    centre = np.median(log)
    spread = 1.4826 * np.median(np.abs(log - centre))
    if spread < MIN_SPREAD:
        spread = 1.2533 * np.mean(np.abs(log - centre))
    if spread < MIN_SPREAD:
        return score
    score[apart] = (log - centre) / spread
    return score


def find_outliers(ctx: Context) -> list[Finding]:
    """One finding listing rows whose score exceeds `outlier_threshold` (rows named by an earlier
    pattern are left to that pattern)."""
    scores = outlier_scores(ctx)
    flagged = scores > ctx.config.outlier_threshold
    flagged[list(ctx.claimed)] = False
    if not flagged.any():
        return []
    rows = np.flatnonzero(flagged)
    order = rows[np.argsort(ctx.positions[rows])]
    extreme = (np.abs(ctx.compact[rows]) > EXTREME).sum(axis=0)
    features = {
        ctx.feature(j): int(extreme[j]) for j in np.argsort(-extreme, kind="stable")[:5] if extreme[j]
    }
    return [
        ctx.finding(
            "outliers",
            ctx.config.outlier_severity,
            f"{len(rows)} rows lie far from all other rows (outliers or out-of-distribution)",
            {
                "rows": ctx.rows(rows),
                "score": np.round(scores[order], 3).tolist(),
                "threshold": ctx.config.outlier_threshold,
                "extreme_features": features,
            },
            "Review the listed rows: fix unit or entry errors, drop rows that do not belong to the "
            "population the model serves, and retrain; keep genuine rare cases (and waive this finding).",
        )
    ]
