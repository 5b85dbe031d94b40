"""Label noise (mislabelled or flipped-label poisoning) from out-of-fold probabilities, via cleanlab.

cleanlab's confident joint on the detection model's probabilities estimates the noise rate (which
alone decides blocking) and, through cleanlab's filter, how many rows to flag. Given the features,
*which* rows comes from `poisoning.label_issues`, the model's probabilities averaged with a kNN
vote, topped up from cleanlab's own rows when the vote doubts fewer: the two err on different
rows, which lifts the minimum F1 on 5% random flips of digits from 0.877 to 0.926
(bench/RESULTS.md, section 2).
"""

from __future__ import annotations

import numpy as np

from checks.detectors.poisoning.context import check_probabilities
from checks.findings import Finding, Severity

VERSION = "3"
CHECK = "label_noise"
TAXONOMY = {"owasp_ml": "ML02:2023", "atlas": "AML.T0020"}


def find_label_noise(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    subject_identity: str,
    max_noise_rate: float = 0.05,
    severity: str | Severity = "high",
    row_positions: np.ndarray | None = None,
    subject: dict | None = None,
    features: np.ndarray | None = None,
) -> list[Finding]:
    """Flag rows whose given label disagrees with confident out-of-fold predictions.

    Args:
        labels: encoded labels (0..k-1), one per row.
        pred_probs: out-of-fold class probabilities, shape (rows, k).
        max_noise_rate: the estimated fraction of wrong labels above which the finding blocks.
        severity: severity of the finding when the estimate exceeds `max_noise_rate`; below it,
            flagged rows are reported at low severity for review.
        row_positions: file-order position of each row (defaults to 0..n-1).
        features: numeric feature matrix (rows, columns), NaN allowed; when given, the rows are
            chosen with the kNN vote too (module doc). None uses cleanlab's filter alone.

    Returns one finding, or none when no row is flagged and the estimate is within the limit. Its
    `evidence.rows` lists the flagged rows ascending; `label_quality` holds the model's probability
    of the given label for each. An estimate above the limit blocks even with no row to name.
    """
    from cleanlab.count import compute_confident_joint, estimate_joint
    from cleanlab.filter import find_label_issues

    labels = np.asarray(labels)
    n = len(labels)
    check_probabilities(np.asarray(pred_probs, dtype=float))
    if features is not None and features.shape[0] != n:
        raise ValueError(f"{features.shape[0]} feature rows for {n} labels")
    if n == 0:
        return []
    joint = compute_confident_joint(labels, pred_probs)
    flagged = find_label_issues(labels, pred_probs, confident_joint=joint, n_jobs=1)
    suggested = pred_probs.argmax(axis=1)
    if features is not None and features.shape[1] and flagged.any():
        flagged, suggested = _with_knn_vote(features, labels, pred_probs, flagged)
    # cleanlab's own estimate (num_label_issues, off-diagonal), from the joint computed above
    joint_distribution = estimate_joint(labels, pred_probs, confident_joint=joint)
    noise_rate = float(np.rint((1.0 - joint_distribution.trace()) * n)) / n
    blocking = noise_rate > max_noise_rate
    if not flagged.any() and not blocking:
        return []
    positions = np.arange(n) if row_positions is None else np.asarray(row_positions)
    idx = np.flatnonzero(flagged)
    quality = pred_probs[idx, labels[idx]]
    sev = Severity.parse(severity) if blocking else Severity.LOW
    title = (
        f"Estimated label noise {noise_rate:.1%} exceeds {max_noise_rate:.1%}: "
        f"{len(idx)} rows look mislabelled"
        if blocking
        else f"{len(idx)} rows look mislabelled (estimated noise {noise_rate:.1%}, "
        f"within {max_noise_rate:.1%})"
    )
    return [
        Finding(
            check=CHECK,
            severity=sev,
            title=title,
            stage="data",
            subject_identity=subject_identity,
            # above the limit is the weakness; within it a review list (a fix turns one into the other)
            key="label_issues" if blocking else "label_issues_review",
            subject=subject or {},
            evidence={
                "noise_rate": round(float(noise_rate), 6),
                "max_noise_rate": max_noise_rate,
                "flagged": len(idx),
                "rows": positions[idx].tolist(),
                "label_quality": np.round(quality, 6).tolist(),
                "suggested_label_codes": suggested[idx].tolist(),
            },
            taxonomy=TAXONOMY,
            remediation="Review the listed rows (lowest label_quality first); relabel or drop them, "
            "and trace how they entered the source before retraining.",
        )
    ]


def _with_knn_vote(
    features: np.ndarray, labels: np.ndarray, pred_probs: np.ndarray, cleanlab_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """As many rows as cleanlab flagged, chosen by `label_issues`; when the vote doubts fewer, the
    rest are cleanlab's rows with the lowest label quality, so every listed row is doubted by one
    of the two and the finding always names as many rows as cleanlab counted. Also returns each
    row's suggested label code (the vote's for its rows, the model's otherwise)."""
    from checks.detectors.poisoning.flips import label_issues

    count = int(cleanlab_rows.sum())
    issues = label_issues(features, labels, pred_probs, count=count)
    chosen = issues.flagged.copy()
    rest = np.flatnonzero(cleanlab_rows & ~chosen)
    by_quality = rest[np.argsort(pred_probs[rest, labels[rest]], kind="stable")]
    chosen[by_quality[: count - int(chosen.sum())]] = True
    suggested = np.where(issues.flagged, issues.suggested, pred_probs.argmax(axis=1))
    return chosen, suggested
