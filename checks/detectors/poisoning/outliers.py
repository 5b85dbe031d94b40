"""(d) Outliers: rows far from every other row, for review (low severity by default).

Score: log distance to the 5th nearest reference row in the compact space, as a robust z-score
(median and MAD over all rows). Log distances make the threshold scale-free; the compact space
keeps one sparse column from making its rare non-zero rows look like outliers.
A tight cluster of identical extreme rows is not isolated, so this pattern misses it; the backdoor
(label-pure groups) and duplicate patterns are the ones that see such clusters.
"""

from __future__ import annotations

import numpy as np

from checks.detectors.poisoning.context import Context
from checks.findings import Finding

NEIGHBOUR = 5  # the k-th nearest row whose distance is scored
EXTREME = np.log1p(5.0)  # compact value of a cell 5 standard deviations out


def outlier_scores(ctx: Context) -> np.ndarray:
    """Robust z-score of each row's log distance to its 5th nearest reference row."""
    _, distances = ctx.neighbours
    column = min(NEIGHBOUR, distances.shape[1]) - 1
    score = np.log(distances[:, column] + 1e-12)
    centre = np.median(score)
    spread = 1.4826 * np.median(np.abs(score - centre))
    return (score - centre) / max(spread, 1e-9)


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
