"""(c) Targeted label flipping, and the combined label-issue ranking it rests on.

`label_issues` ranks rows by how much more another class fits them than their given label, where
"fits" is the mean of the detection model's out-of-fold probabilities and a kNN vote on the
features; it flags as many rows as cleanlab's confident-joint estimate of wrong labels (from the
model's probabilities), then repeats the kNN vote without the flagged rows as neighbours. The two
sources err on different rows, so the combination ranks flips better than either (bench/RESULTS.md).

`find_targeted_flips` counts flagged rows per (look-alike class a -> given class b). Random noise
spreads over pairs and natural confusion runs both ways; a targeted flip piles up in one direction.
A pair is reported when it holds at least `flip_min_rate` of class a (and `min_group_rows` rows),
at least `flip_ratio` times (its reverse, adjusted for class sizes, plus one) and, with three or
more classes, `flip_ratio` times (the median other pair plus one); and when its rows are confidently
class a (median margin >= 0.5), as a random sample of class a is and border cases are not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from checks.detectors.poisoning.context import (
    Context,
    compact_scale,
    impute_median,
    nearest_reference,
    neighbour_vote,
    sample_reference,
)
from checks.findings import Finding

MIN_MARGIN = 0.5  # median margin of a pair's rows: natural confusion at a class border sits lower


@dataclass
class LabelIssues:
    """Per row: flagged as mislabelled, the best other class, and its margin over the given label."""

    flagged: np.ndarray
    suggested: np.ndarray
    margin: np.ndarray
    estimated_count: int


def label_issues(
    features: np.ndarray,
    labels: np.ndarray,
    pred_probs: np.ndarray | None,
    *,
    neighbors: int = 10,
    reference_rows: int = 10_000,
    seed: int = 0,
    count: int | None = None,
) -> LabelIssues:
    """Mislabelled rows from out-of-fold probabilities combined with a kNN vote (see module doc).

    Args:
        features: numeric feature matrix (rows, columns); non-finite cells take the column median.
        labels: encoded labels 0..k-1.
        pred_probs: out-of-fold class probabilities (rows, k) of the detection model; None to use
            the kNN vote alone.
        neighbors: k of the kNN vote.
        reference_rows: the kNN compares with at most this many rows (fewer above 10k rows, see
            `sample_reference`); every row is scored.
        count: how many rows to flag at most (positive margins only); None for cleanlab's
            off-diagonal estimate.
    """
    labels = np.asarray(labels, dtype=int)
    n = len(labels)
    space = compact_scale(impute_median(np.array(features, dtype=float)))
    reference = sample_reference(labels, reference_rows, seed)
    spare, _ = nearest_reference(space, reference, np.arange(n), 2 * neighbors)
    return issues_from_neighbours(labels, pred_probs, spare, neighbors, count)


def issues_from_neighbours(
    labels: np.ndarray,
    pred_probs: np.ndarray | None,
    spare: np.ndarray,
    neighbors: int,
    count: int | None = None,
) -> LabelIssues:
    """`label_issues` given each row's 2k nearest reference rows (self excluded), nearest first."""
    from cleanlab.count import num_label_issues

    k = int(labels.max()) + 1
    knn = neighbour_vote(labels, spare[:, :neighbors], k)
    model = pred_probs[:, :k] if pred_probs is not None else knn
    if count is None:
        count = int(num_label_issues(labels, model, estimation_method="off_diagonal"))
    margin, _ = _margin((model + knn) / 2, labels)
    first = _top(margin, count)
    # second pass: the kNN vote no longer listens to rows the first pass found suspicious
    kept = np.where(first[spare], -1, spare)
    order = np.argsort(kept < 0, axis=1, kind="stable")[:, :neighbors]
    cleaner = neighbour_vote(labels, np.take_along_axis(kept, order, axis=1), k)
    margin, suggested = _margin((model + cleaner) / 2, labels)
    return LabelIssues(_top(margin, count), suggested, margin, count)


def _margin(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best other class's score minus the given label's score, and that class."""
    rows = np.arange(len(labels))
    others = scores.copy()
    others[rows, labels] = -np.inf
    suggested = others.argmax(axis=1)
    return others[rows, suggested] - scores[rows, labels], suggested


def _top(margin: np.ndarray, count: int) -> np.ndarray:
    """The `count` largest positive margins."""
    flagged = np.zeros(len(margin), dtype=bool)
    flagged[np.argsort(-margin, kind="stable")[:count]] = True
    return flagged & (margin > 0)


def find_targeted_flips(ctx: Context) -> list[Finding]:
    """One high finding per (source -> given) class pair whose flips are concentrated."""
    spare, _ = ctx.neighbours
    issues = issues_from_neighbours(ctx.labels, ctx.probabilities, spare, ctx.config.neighbors)
    ctx.checkpoint("targeted_flip: ranked")
    flagged = issues.flagged.copy()
    flagged[list(ctx.claimed)] = False
    ctx.progress["label_issues"] = int(flagged.sum())
    pairs = np.zeros((ctx.k, ctx.k), dtype=int)
    np.add.at(pairs, (issues.suggested[flagged], ctx.labels[flagged]), 1)
    looks_like = np.bincount(ctx.labels[~flagged], minlength=ctx.k)
    looks_like += np.bincount(issues.suggested[flagged], minlength=ctx.k)
    findings = []
    for source, given in zip(*np.nonzero(pairs), strict=True):
        rows = np.flatnonzero(flagged & (issues.suggested == source) & (ctx.labels == given))
        if (
            _concentrated(ctx, pairs, looks_like, source, given)
            and np.median(issues.margin[rows]) >= MIN_MARGIN
        ):
            findings.append(_finding(ctx, source, given, rows, pairs, looks_like, issues.margin))
    return findings


def _concentrated(ctx: Context, pairs: np.ndarray, sizes: np.ndarray, a: int, b: int) -> bool:
    """Enough of class a, far more than the reverse direction, and (with 3+ classes) far more than
    a typical other pair."""
    cfg = ctx.config
    count = pairs[a, b]
    if count < max(cfg.min_group_rows, cfg.flip_min_rate * sizes[a]):
        return False
    expected_reverse = pairs[b, a] * sizes[a] / max(sizes[b], 1)
    if count < cfg.flip_ratio * (expected_reverse + 1):
        return False
    others = ~np.eye(len(pairs), dtype=bool)
    others[a, b] = others[b, a] = False
    return not others.any() or count >= cfg.flip_ratio * (np.median(pairs[others]) + 1)


def _finding(
    ctx: Context,
    source: int,
    given: int,
    rows: np.ndarray,
    pairs: np.ndarray,
    sizes: np.ndarray,
    margin: np.ndarray,
) -> Finding:
    a, b = ctx.class_name(source), ctx.class_name(given)
    order = rows[np.argsort(ctx.positions[rows])]
    return ctx.finding(
        f"targeted_flip:{a}->{b}",
        ctx.config.flip_severity,
        f"Targeted label flipping: {len(rows)} rows that look like class {a!r} are labelled {b!r} "
        f"({len(rows) / max(sizes[source], 1):.1%} of {a!r}; {pairs[given, source]} the other way)",
        {
            "rows": ctx.rows(rows),
            "source_class": a,
            "given_class": b,
            "flipped": len(rows),
            "reverse": int(pairs[given, source]),
            "source_class_rows": int(sizes[source]),
            "margin": np.round(margin[order], 4).tolist(),
        },
        f"Relabel the listed rows as {a!r} (or drop them) and retrain; find who or what changed "
        f"labels from {a!r} to {b!r} in the source, since a one-directional pattern is rarely accidental.",
    )
