"""Poisoning and backdoor detection on training data (check `poisoning`).

Four patterns, one finding per pattern (and target class or class pair), each naming its rows:

- `backdoor:<target>`: rows sharing a rare feature pattern and one label while looking like
  other classes otherwise (high: blocks by default);
- `conflicting_duplicates`: near-identical rows with different labels more often than the label
  probabilities expect (medium; high when many); as often as expected, natural noise (low);
- `targeted_flip:<a>-><b>`: label flips piled up from one class onto another (high);
- `outliers`: rows far from all others (low, for review).

Label-consistency methods see flips but rank backdoor rows clean; the backdoor pattern has its own
feature-level test. Everything reuses the detection model's out-of-fold probabilities and fits
only kNN models on at most `reference_rows` rows, so the check stays within seconds at 100k rows.
Pure numpy / scikit-learn / cleanlab: no Dagster or MLflow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from checks.detectors.poisoning.backdoor import find_backdoors
from checks.detectors.poisoning.config import (
    CHECK,
    PATTERNS,
    TAXONOMY,
    VERSION,
    DeadlineReached,
    PoisoningConfig,
)
from checks.detectors.poisoning.context import Context, build_context
from checks.detectors.poisoning.duplicates import find_conflicting_duplicates
from checks.detectors.poisoning.features import feature_matrix
from checks.detectors.poisoning.flips import LabelIssues, find_targeted_flips, label_issues
from checks.detectors.poisoning.outliers import find_outliers
from checks.findings import Finding
from checks.runner import CheckNotRun

__all__ = [
    "CHECK",
    "PATTERNS",
    "TAXONOMY",
    "VERSION",
    "DeadlineReached",
    "LabelIssues",
    "PoisoningConfig",
    "detect_poisoning",
    "feature_matrix",
    "label_issues",
]

# Order matters: rows named by a backdoor or a duplicate group are not counted again as flips or outliers.
_DETECTORS: dict[str, Callable[[Context], list[Finding]]] = {
    "backdoor": find_backdoors,
    "conflicting_duplicates": find_conflicting_duplicates,
    "targeted_flip": find_targeted_flips,
    "outliers": find_outliers,
}


def detect_poisoning(
    features: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray | None,
    *,
    subject_identity: str,
    feature_names: Sequence[str] | None = None,
    classes: Sequence[Any] | None = None,
    row_positions: np.ndarray | Sequence[int] | None = None,
    subject: dict[str, Any] | None = None,
    config: PoisoningConfig | None = None,
    patterns: Sequence[str] = PATTERNS,
    progress: dict[str, Any] | None = None,
    deadline: Callable[[], bool] | None = None,
) -> list[Finding]:
    """Scan labelled training rows for poisoning; returns findings of check `poisoning`.

    Args:
        features: numeric matrix (rows, columns) in original units (pattern values are reported
            in them), e.g. from `feature_matrix(prepared.features)`; non-finite cells are
            replaced by the column median.
        labels: encoded labels 0..k-1, one per row.
        probabilities: the detection model's out-of-fold class probabilities (rows, k); None lets
            targeted-flip detection use its kNN vote alone.
        subject_identity: stable identity for fingerprints (model name plus dataset name).
        feature_names: one per column (default x0, x1, ...).
        classes: class value per label code, used in finding keys and titles (default the codes).
        row_positions: 0-based file-order position of each row (default 0..n-1).
        config: thresholds (PoisoningConfig defaults when None).
        patterns: which of PATTERNS to run, e.g. to split them across several checks.
        progress: filled with the stage reached and counts, for a caller's timeout record.
        deadline: called between stages; once it returns True, DeadlineReached is raised.

    Raises CheckNotRun (with an info finding) when there are too few rows or a single class, and
    ValueError when the inputs' shapes disagree.
    """
    unknown = sorted(set(patterns) - set(PATTERNS))
    if unknown:
        raise ValueError(f"unknown poisoning patterns {unknown} (expected some of {list(PATTERNS)})")
    ctx = build_context(
        features,
        labels,
        probabilities,
        feature_names=feature_names,
        classes=classes,
        row_positions=row_positions,
        subject_identity=subject_identity,
        subject=subject,
        config=config or PoisoningConfig(),
        progress=progress,
        deadline=deadline,
    )
    ctx.progress.update(rows=ctx.n, features=ctx.X.shape[1], patterns_done=[])
    if ctx.n < 2 * ctx.config.min_group_rows or ctx.k < 2 or ctx.X.shape[1] == 0:
        raise CheckNotRun(
            ctx.finding(
                "not_run",
                "info",
                f"Poisoning scan needs at least {2 * ctx.config.min_group_rows} labelled rows, two "
                f"classes and a feature; got {ctx.n} rows, {ctx.k} classes, {ctx.X.shape[1]} features",
                {"row_count": ctx.n, "classes": ctx.k, "features": ctx.X.shape[1]},
                "None needed for a toy dataset; otherwise collect more labelled rows.",
            )
        )
    findings: list[Finding] = []
    for name, detector in _DETECTORS.items():
        if name in patterns:
            ctx.checkpoint(name)
            findings.extend(detector(ctx))
            ctx.progress["patterns_done"].append(name)
    ctx.progress["stage"] = "done"
    return findings
