"""(b) Near-duplicate rows with different labels: the same input taught two answers.

Rows are compared in the shared compact space (standardised, log-compressed). Exact copies are
grouped by hashing; the remaining distinct rows are paired when their RMS difference per feature
is within `duplicate_tolerance` and within a tenth of the typical nearest-neighbour distance (so
dense, low-dimensional data does not turn ordinary neighbours into "duplicates"). Candidate pairs
come from sorting rows along a few random directions (see `_near_pairs`) and are confirmed in
full space; a tree or all-pairs search costs far more at 100k rows and 50 features.

Identical inputs also carry different labels naturally when the features cannot decide the label
(categorical or low-dimensional data, where most rows sit in large groups of identical rows). So
the rows of the groups are compared with what the label probabilities expect (`Disagreement`):
each row disagrees with its group's consensus label c with probability 1 - p(c), p being the
detection model's out-of-fold probabilities (the kNN vote without them). Small groups (at most
SMALL_GROUP rows, where copies sit) and larger ones are tested apart, so the noise of large natural
groups does not drown a few forged pairs. A stratum is beyond natural noise when its observed
disagreement exceeds the expectation by EXCESS_Z standard deviations and by a factor EXCESS_RATIO
(which absorbs a moderately miscalibrated model on large data), in at least `min_group_rows` rows
(an overconfident model makes one natural conflict look impossible). The finding names the conflicting
rows of such strata, claims them from the later patterns, and takes its severity from their share;
otherwise it is low, names every conflicting row, and claims none.

Copied rows with forged labels exceed the expectation: each copy contradicts an original whose
label the data confirm. A pair's own probabilities are diluted by the pair itself (about 0.8 at 5%
copies on digits), so one forged pair is not evidence on its own; a few are. Copies added to
groups whose labels are already mixed look like natural noise (known limit; they also teach the
model little it did not already doubt).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from checks.detectors.poisoning.context import Context, neighbour_vote
from checks.findings import Finding, Severity

NN_FRACTION = 0.1  # near-duplicates must be this much closer than the median nearest-neighbour distance
PROJECTED_DIMS = 8
SWEEPS = 3  # random directions along which rows are sorted to find candidate pairs
WINDOW = 128  # rows compared with each row along each direction
GROUPS_SHOWN = 50  # conflicting groups listed in evidence (every row is still in `rows`)
SMALL_GROUP = 4  # groups of at most this many rows are tested apart from larger ones
EXCESS_Z = 3.0  # observed disagreement must exceed the expected by this many standard deviations
EXCESS_RATIO = 1.5  # ... and be at least this multiple of the expected (natural data: 0.9-1.1)


def find_conflicting_duplicates(ctx: Context) -> list[Finding]:
    """One finding listing the rows of near-duplicate groups that carry more than one label: those
    of the strata beyond natural noise (severity by their share), else all of them (low)."""
    tolerance = effective_tolerance(ctx)
    group = duplicate_groups(ctx.compact, tolerance, seed=ctx.config.seed)
    ctx.checkpoint("conflicting_duplicates: grouped")
    conflicting = _conflicting(group, ctx.labels)
    if not conflicting.any():
        return []
    probabilities = _label_probabilities(ctx)
    small = np.bincount(group)[group] <= SMALL_GROUP
    strata = [
        (name, stratum, Disagreement.of(group[stratum], ctx.labels[stratum], probabilities[stratum]))
        for name, stratum in ((f"2-{SMALL_GROUP}", small), (f"{SMALL_GROUP + 1}+", ~small))
    ]
    excessive = np.zeros(ctx.n, dtype=bool)
    for _, stratum, disagreement in strata:
        if disagreement.excessive(ctx.config.min_group_rows):
            excessive |= stratum
    if excessive.any():  # natural disagreement is left to the later patterns
        rows = np.flatnonzero(conflicting & excessive)
        ctx.claimed.update(rows.tolist())
    else:
        rows = np.flatnonzero(conflicting)
    return [_finding(ctx, group, rows, tolerance, probabilities, strata)]


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


@dataclass(frozen=True)
class Disagreement:
    """Rows of multi-row groups whose label differs from their group's consensus: the count
    observed, and the mean and variance of that count if each row's label were drawn from its
    probabilities (a sum of independent Bernoulli(1 - p(consensus)) variables)."""

    groups: int
    observed: int
    expected: float
    variance: float

    @classmethod
    def of(cls, group: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> Disagreement:
        shared = np.bincount(group)[group] > 1
        ids, member_of = np.unique(group[shared], return_inverse=True)
        member_of = member_of.ravel()
        p = probabilities[shared]
        summed = np.zeros((len(ids), p.shape[1]))
        np.add.at(summed, member_of, p)
        consensus = summed.argmax(axis=1)[member_of]
        other = 1.0 - p[np.arange(len(p)), consensus]
        return cls(
            groups=len(ids),
            observed=int((labels[shared] != consensus).sum()),
            expected=float(other.sum()),
            variance=float((other * (1.0 - other)).sum()),
        )

    @property
    def z(self) -> float:
        """Excess over the expectation in standard deviations (continuity-corrected)."""
        return (self.observed - 0.5 - self.expected) / max(np.sqrt(self.variance), 1e-9)

    def excessive(self, min_rows: int) -> bool:
        """More disagreement than label noise explains (see module doc)."""
        return bool(
            self.observed >= min_rows and self.z >= EXCESS_Z and self.observed >= EXCESS_RATIO * self.expected
        )


def _label_probabilities(ctx: Context) -> np.ndarray:
    """Each row's class probabilities: the detection model's, else the kNN vote of its neighbours
    (share of each class among its `neighbors` nearest rows, floored at 1e-3)."""
    if ctx.probabilities is not None:
        return ctx.probabilities[:, : ctx.k]
    spare, _ = ctx.neighbours
    return neighbour_vote(ctx.labels, spare[:, : ctx.config.neighbors], ctx.k)


def _conflicting(group: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows whose group carries more than one label."""
    size = group.max() + 1
    low = np.full(size, labels.max() + 1)
    high = np.full(size, -1)
    np.minimum.at(low, group, labels)
    np.maximum.at(high, group, labels)
    return low[group] != high[group]


def _finding(
    ctx: Context,
    group: np.ndarray,
    rows: np.ndarray,
    tolerance: float,
    probabilities: np.ndarray,
    strata: list[tuple[str, np.ndarray, Disagreement]],
) -> Finding:
    cfg = ctx.config
    share = len(rows) / ctx.n
    beyond = any(d.excessive(cfg.min_group_rows) for _, _, d in strata)
    if not beyond:
        severity = Severity.LOW
    elif share >= cfg.duplicate_high_fraction:
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
        consensus = int(probabilities[member_rows].sum(axis=0).argmax())
        suspected.extend(member_rows[ctx.labels[member_rows] != consensus].tolist())
        if len(groups) < GROUPS_SHOWN:
            groups.append(
                {
                    "rows": ctx.rows(member_rows),
                    "labels": sorted({ctx.class_name(c) for c in ctx.labels[member_rows]}),
                    "likely_label": ctx.class_name(consensus),
                }
            )
    title = f"{len(rows)} rows in {len(ids)} groups of near-identical rows carry different labels"
    if not beyond:
        title += ", no more often than the label probabilities expect (natural label noise)"
    return ctx.finding(
        "conflicting_duplicates",
        severity,
        title,
        {
            "rows": ctx.rows(rows),
            "group_count": len(ids),
            "groups": groups,
            "suspected_rows": ctx.rows(np.asarray(suspected, dtype=int)),
            "tolerance_rms": round(tolerance, 6),
            "share": round(share, 6),
            "beyond_natural_noise": beyond,
            "disagreement": [
                {
                    "group_rows": name,
                    "groups": d.groups,
                    "disagreeing_rows": d.observed,
                    "expected_disagreeing_rows": round(d.expected, 2),
                    "excess_z": round(float(d.z), 2),
                    "beyond_natural_noise": d.excessive(cfg.min_group_rows),
                }
                for name, _, d in strata
                if d.groups
            ],
        },
        _REMEDIATION if beyond else _NATURAL,
    )


_REMEDIATION = (
    "Review each group and keep one correctly labelled copy (suspected_rows are the copies whose "
    "label disagrees with the detection model); drop the others and retrain. Many such groups "
    "point at copied rows with forged labels: trace where they entered the source."
)
_NATURAL = (
    "The features do not decide the label for these rows: identical inputs disagree about as often "
    "as the detection model's probabilities expect, as natural label noise does. Nothing to drop; "
    "add features that separate the outcomes if the model should, or waive this finding."
)
