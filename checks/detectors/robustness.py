"""Evasion robustness: black-box attacks within an ε-box on numeric features → robust accuracy.

Works for any fitted model exposing ``predict_proba`` and ``classes_`` (typically a scikit-learn
Pipeline over a DataFrame of raw features); it only queries the model, never refits it. The attack
suite runs on a seeded holdout subsample (at least 500 rows, or all rows when fewer); a row is
robust when the model classifies it correctly and no attack in the suite changes that:

1. ``noise``: uniform random points in the box (``noise_trials`` per row);
2. ``boundary``: decision-based; move each feature as far as the box allows towards the
   nearest holdout rows the model assigns to another class (``boundary_neighbours`` per row);
3. ``greedy``: score-based coordinate search; try every numeric feature at both box edges,
   then push the most damaging features together (prefixes of 1, 2, 4, … features), for
   ``greedy_rounds`` rounds.

The box is ``x ± epsilon · std`` per numeric feature (std and [min, max] from the reference rows,
usually the training data), clipped to the observed [min, max]; integer columns stay integral;
text, categorical and boolean features are never changed. Cheap attacks run first and later ones
only attack the rows still standing, with batched ``predict_proba`` calls. The attacks are
heuristics, so robust accuracy is an upper bound: a stronger attack can only lower it.

Also home to the helpers the model-stage attacks share (sampling, Wilson interval, deadline).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from checks.findings import Finding, Severity, evaluation_finding
from checks.runner import CheckNotRun, DeadlineReached

VERSION = "2"
CHECK = "robustness"
TAXONOMY = {"owasp_ml": "ML01:2023", "atlas": "AML.T0043"}
MIN_SAMPLE_ROWS = 500  # issue 5: model checks run on at least this many rows (or all when fewer)
Z95 = 1.959963984540054  # two-sided 95% normal quantile
REMEDIATION = (
    "Validate inputs at serving time (reject or clip values outside the observed training ranges); "
    "retrain with adversarial or noise augmentation within epsilon of the training rows; prefer "
    "smoother models (stronger regularisation, larger min_samples_leaf, monotonic constraints where "
    "the domain implies them); coarsen or drop the features listed in evidence.sensitive_features "
    "(feature squeezing). Rescan and compare robust accuracy."
)
_finding = functools.partial(evaluation_finding, CHECK, TAXONOMY, remediation=REMEDIATION)


# -- shared by the model-stage attacks ---------------------------------------------------------------


@dataclass
class Deadline:
    """A cooperative deadline on the ``time.monotonic()`` clock (None: no deadline)."""

    check: str
    at: float | None
    progress: dict[str, Any]

    def ensure(self) -> None:
        """Raise DeadlineReached, with a copy of the progress so far, once the deadline has passed."""
        if self.at is not None and time.monotonic() >= self.at:
            self.progress["stopped_at_deadline"] = True
            raise DeadlineReached(self.check, dict(self.progress))


@dataclass
class ModelCheckResult:
    """Findings of one model-stage check plus the measurements its check metadata shows."""

    findings: list[Finding]
    measurements: dict[str, Any] = field(default_factory=dict)


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (sensible near 0 and 1, unlike Wald)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6))


def check_sample_rows(sample_rows: int) -> None:
    if sample_rows < MIN_SAMPLE_ROWS:
        raise ValueError(f"sample_rows must be at least {MIN_SAMPLE_ROWS} (got {sample_rows})")


def subsample(frame: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    """`size` rows drawn without replacement, kept in frame order (all rows when there are fewer)."""
    if len(frame) <= size:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size, replace=False))]


def labelled(frame: pd.DataFrame, label: str, what: str) -> pd.DataFrame:
    """The rows that have a label; a missing label column is a clear error naming the input."""
    if label not in frame.columns:
        raise ValueError(f"{what}: label column {label!r} not found")
    return frame[frame[label].notna()]


def true_class_index(model: Any, labels: pd.Series) -> np.ndarray:
    """Column of each label in ``predict_proba`` (-1 when the model has no such class).

    Labels are compared as strings, as the evaluation stage does, with integral floats written as
    integers so that a label read back as 1.0 still matches class 1.
    """
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise ValueError("the model exposes no classes_; a classifier with predict_proba is required")
    column = {_class_key(c): i for i, c in enumerate(classes)}
    return np.array([column.get(_class_key(v), -1) for v in labels], dtype=int)


def known_classes(model: Any, rows: pd.DataFrame, label: str, what: str) -> tuple[pd.DataFrame, int]:
    """The rows whose label is one of the model's classes, and how many are not.

    Raises ValueError when none is: the labels and the model's classes do not match (say "yes"/"no"
    against an encoded 0/1), so nothing could be measured and the check must not pass.
    """
    known = true_class_index(model, rows[label]) >= 0
    if len(rows) and not known.any():
        seen = sorted({_class_key(v) for v in rows[label]})[:5]
        classes = [_class_key(c) for c in model.classes_][:5]
        raise ValueError(
            f"{what}: no label ({', '.join(seen)}) is one of the model's classes ({', '.join(classes)})"
        )
    return rows[known], int((~known).sum())


def _class_key(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def probabilities(model: Any, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(frame), dtype=float)


# -- the perturbation box -----------------------------------------------------------------------------


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric, non-boolean columns: the only ones an attack may change."""
    return [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]


@dataclass
class Box:
    """Per-row bounds [low, high] of each numeric feature, and how to rebuild model input."""

    rows: pd.DataFrame  # the attacked rows, features only
    columns: list[str]  # numeric feature names, in the order of the arrays below
    original: np.ndarray  # (rows, features) float values; NaN stays NaN
    low: np.ndarray
    high: np.ndarray

    def frame(self, row_ids: np.ndarray, values: np.ndarray) -> pd.DataFrame:
        """Model input: candidate numeric `values` for the rows `row_ids`, other columns unchanged."""
        data: dict[str, Any] = {}
        position = {c: j for j, c in enumerate(self.columns)}
        for c in self.rows.columns:
            if c in position:
                data[c] = _restore_dtype(values[:, position[c]], self.rows[c].dtype)
            else:
                data[c] = self.rows[c].take(row_ids).reset_index(drop=True)
        return pd.DataFrame(data, columns=self.rows.columns)

    def movable(self, row_ids: np.ndarray) -> np.ndarray:
        """Indices of features that some of these rows can move within their box."""
        width = np.nan_to_num(self.high[row_ids] - self.low[row_ids], nan=0.0)
        return np.flatnonzero((width > 0).any(axis=0))


def _restore_dtype(values: np.ndarray, dtype: Any) -> Any:
    if pd.api.types.is_integer_dtype(dtype):
        return pd.Series(np.round(values)).astype(dtype)
    return values


def build_box(rows: pd.DataFrame, reference: pd.DataFrame, epsilon: float) -> Box:
    """Box of half-width ``epsilon · std`` per numeric feature, clipped to the observed range.

    Statistics come from `reference` (and the attacked rows, so every row lies in its own box).
    Integer columns get integral bounds, so a box narrower than one unit leaves them unchanged.
    """
    columns = numeric_columns(rows)
    original = rows[columns].to_numpy(dtype=float, na_value=np.nan)
    observed = np.vstack([reference[columns].to_numpy(dtype=float, na_value=np.nan), original])
    with np.errstate(all="ignore"):
        spread = np.nan_to_num(np.nanstd(reference[columns].to_numpy(dtype=float, na_value=np.nan), axis=0))
        low = np.maximum(original - epsilon * spread, np.nanmin(observed, axis=0))
        high = np.minimum(original + epsilon * spread, np.nanmax(observed, axis=0))
    integral = np.array([pd.api.types.is_integer_dtype(rows[c].dtype) for c in columns], dtype=bool)
    low[:, integral] = np.ceil(low[:, integral])
    high[:, integral] = np.floor(high[:, integral])
    return Box(rows, columns, original, low, high)


# -- querying the model -------------------------------------------------------------------------------


@dataclass
class Oracle:
    """Batched, deadline-aware queries of the model on candidate points of the box."""

    model: Any
    box: Box
    truth: np.ndarray  # predict_proba column of each attacked row's label
    deadline: Deadline
    batch_rows: int
    queries: int = 0

    def proba(self, row_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``predict_proba`` on the candidates, in batches, checking the deadline before each."""
        parts = []
        for start in range(0, len(row_ids), self.batch_rows):
            self.deadline.ensure()
            part = slice(start, start + self.batch_rows)
            parts.append(probabilities(self.model, self.box.frame(row_ids[part], values[part])))
            self.queries += len(parts[-1])
            self.deadline.progress["queries"] = self.queries
        return np.vstack(parts) if parts else np.zeros((0, len(self.model.classes_)))

    def score(self, row_ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Margin (true-class probability minus the best other class) and misclassified flag."""
        return margin_and_wrong(self.proba(row_ids, values), self.truth[row_ids])


def margin_and_wrong(proba: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: p(true) − max p(other), and whether the predicted class (argmax) is not the truth
    (rows whose label is not a model class were left out by `known_classes`)."""
    rows = np.arange(len(truth))
    others = proba.copy()
    others[rows, truth] = -np.inf
    return proba[rows, truth] - others.max(axis=1), proba.argmax(axis=1) != truth


# -- the attacks --------------------------------------------------------------------------------------


def noise_attack(oracle: Oracle, alive: np.ndarray, trials: int, rng: np.random.Generator) -> np.ndarray:
    """Rows (of `alive`) that some uniform random point of their box misclassifies."""
    if trials <= 0 or len(alive) == 0:
        return np.zeros(0, dtype=int)
    row_ids = np.repeat(alive, trials)
    low, high = oracle.box.low[row_ids], oracle.box.high[row_ids]
    values = low + rng.random(low.shape) * (high - low)
    _, wrong = oracle.score(row_ids, values)
    return np.unique(row_ids[wrong])


def boundary_attack(oracle: Oracle, alive: np.ndarray, predicted: np.ndarray, neighbours: int) -> np.ndarray:
    """Decision-based: step each alive row as far as its box allows towards its `neighbours`
    nearest rows that the model assigns to another class (nearest in std-scaled feature space)."""
    box = oracle.box
    if neighbours <= 0 or len(alive) == 0:
        return np.zeros(0, dtype=int)
    with np.errstate(all="ignore"):
        scale = np.nanstd(box.original, axis=0)
        points = np.nan_to_num(
            (box.original - np.nanmean(box.original, axis=0)) / np.where(scale > 0, scale, 1)
        )
    k = min(neighbours, len(points))
    nearest = np.vstack(
        [
            _nearest_other(points, part, oracle.truth[part], predicted, k)
            for part in np.array_split(alive, -(-len(alive) // 512))
        ]
    )
    usable = (nearest >= 0).ravel()
    row_ids = np.repeat(alive, k)[usable]
    targets = box.original[nearest.ravel()[usable]]
    values = np.clip(
        np.where(np.isnan(targets), box.original[row_ids], targets), box.low[row_ids], box.high[row_ids]
    )
    _, wrong = oracle.score(row_ids, values)
    return np.unique(row_ids[wrong])


def _nearest_other(
    points: np.ndarray, rows: np.ndarray, truth: np.ndarray, predicted: np.ndarray, k: int
) -> np.ndarray:
    """For each of `rows`, its `k` nearest points predicted as another class than its label (-1: none)."""
    squared = (points**2).sum(axis=1)
    distance = squared[rows, None] + squared[None, :] - 2 * points[rows] @ points.T
    distance[predicted[None, :] == truth[:, None]] = np.inf
    nearest = np.argpartition(distance, k - 1, axis=1)[:, :k]
    return np.where(np.isfinite(np.take_along_axis(distance, nearest, axis=1)), nearest, -1)


@dataclass
class GreedyState:
    """Current point, margin and the features moved to break each row, for the greedy search."""

    values: np.ndarray  # (alive, features) current candidate of each alive row
    margin: np.ndarray
    broken: set[int] = field(default_factory=set)
    moved: dict[str, int] = field(default_factory=dict)  # feature -> rows it helped break

    def record(self, oracle: Oracle, row_ids: np.ndarray, values: np.ndarray) -> None:
        for row, candidate in zip(row_ids.tolist(), values, strict=True):
            if row in self.broken:
                continue
            self.broken.add(row)
            changed = ~np.isclose(candidate, oracle.box.original[row], equal_nan=True)
            for j in np.flatnonzero(changed):
                name = str(oracle.box.columns[j])
                self.moved[name] = self.moved.get(name, 0) + 1


def greedy_attack(oracle: Oracle, alive: np.ndarray, margin: np.ndarray, rounds: int) -> GreedyState:
    """Score-based coordinate search within the box (see the module docstring).

    `margin` holds the clean margin of each `alive` row; returns the rows broken and the features
    moved to break them.
    """
    state = GreedyState(oracle.box.original[alive].copy(), margin.astype(float).copy())
    for _ in range(rounds if len(alive) else 0):
        standing = np.array([i for i, row in enumerate(alive) if row not in state.broken], dtype=int)
        features = oracle.box.movable(alive[standing]) if len(standing) else np.zeros(0, dtype=int)
        if len(features) == 0:
            break
        gains, edges = _coordinate_scan(oracle, alive, standing, features, state)
        keep = np.array([alive[i] not in state.broken for i in standing], dtype=bool)
        if keep.any():
            _push_prefixes(oracle, alive, standing[keep], features, gains[keep], edges[keep], state)
    return state


def _coordinate_scan(
    oracle: Oracle, alive: np.ndarray, standing: np.ndarray, features: np.ndarray, state: GreedyState
) -> tuple[np.ndarray, np.ndarray]:
    """Move one feature at a time to either edge of the box: each feature's gain (margin lost) and
    the better edge value, for every standing row."""
    box, rows = oracle.box, alive[standing]
    gains = np.full((len(standing), len(features)), -np.inf)
    edges = state.values[standing][:, features].copy()
    chunk = max(1, oracle.batch_rows // len(standing))
    for start in range(0, len(features), chunk):
        block = np.arange(start, min(start + chunk, len(features)))
        for bound in (box.low, box.high):
            values = np.repeat(state.values[standing][None], len(block), axis=0)  # (block, rows, d)
            for b, f in enumerate(block):
                values[b, :, features[f]] = bound[rows, features[f]]
            flat = values.reshape(-1, values.shape[-1])
            row_ids = np.tile(rows, len(block))
            margins, wrong = oracle.score(row_ids, flat)
            state.record(oracle, row_ids[wrong], flat[wrong])
            margins = margins.reshape(len(block), len(standing)).T
            better = state.margin[standing, None] - margins > gains[:, block]
            gains[:, block] = np.where(better, state.margin[standing, None] - margins, gains[:, block])
            edge = bound[rows][:, features[block]]
            edges[:, block] = np.where(better, edge, edges[:, block])
    return np.nan_to_num(gains, neginf=0.0), edges


def _push_prefixes(
    oracle: Oracle,
    alive: np.ndarray,
    standing: np.ndarray,
    features: np.ndarray,
    gains: np.ndarray,
    edges: np.ndarray,
    state: GreedyState,
) -> None:
    """Set the k most damaging features to their worse edge together (k = 1, 2, 4, …, all that
    lowered the margin on their own) and keep the lowest-margin candidate as the next start."""
    rows = alive[standing]
    rank = np.argsort(np.argsort(-gains, axis=1, kind="stable"), axis=1)
    sizes = sorted({min(2**i, len(features)) for i in range(int(np.log2(len(features))) + 2)})
    best_values, best_margin = state.values[standing].copy(), state.margin[standing].copy()
    for k in sizes:
        values = state.values[standing].copy()
        values[:, features] = np.where((rank < k) & (gains > 0), edges, values[:, features])
        margins, wrong = oracle.score(rows, values)
        state.record(oracle, rows[wrong], values[wrong])
        improved = margins < best_margin
        best_values[improved], best_margin[improved] = values[improved], margins[improved]
    state.values[standing], state.margin[standing] = best_values, best_margin


# -- the check ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    min_robust_accuracy: float
    max_accuracy_drop: float
    champion_tolerance: float
    severity: Severity


def evaluate_robustness(
    model: Any,
    holdout: pd.DataFrame,
    label: str,
    *,
    subject_identity: str,
    subject: dict[str, Any] | None = None,
    reference: pd.DataFrame | None = None,
    champion: dict[str, Any] | None = None,
    champion_version: str | None = None,
    epsilon: float = 0.1,
    sample_rows: int = MIN_SAMPLE_ROWS,
    min_robust_accuracy: float = 0.0,
    max_accuracy_drop: float = 0.20,
    champion_tolerance: float = 0.05,
    noise_trials: int = 10,
    boundary_neighbours: int = 5,
    greedy_rounds: int = 1,
    batch_rows: int = 20_000,
    severity: str | Severity = "high",
    seed: int = 0,
    progress: dict[str, Any] | None = None,
    deadline: float | None = None,
) -> ModelCheckResult:
    """Robust accuracy of `model` on a holdout subsample under the attack suite, and its findings.

    Args:
        model: fitted classifier with ``predict_proba`` and ``classes_``, queried only.
        holdout: non-member rows with the `label` column (rows without a label are skipped).
        reference: rows that define feature spread and ranges (the training data); holdout if None.
        champion: the champion's ``measurements`` from this function on the same holdout, seed
            and epsilon; a drop of robust accuracy beyond `champion_tolerance` is a finding.
        epsilon: box half-width as a fraction of each numeric feature's standard deviation.
        min_robust_accuracy: absolute floor on robust accuracy (0 disables it).
        max_accuracy_drop: largest allowed clean minus robust accuracy on the sample.
        severity: severity of those findings (a champion regression uses it too).
        progress: the runner's coverage record, updated as the attacks go.
        deadline: ``time.monotonic()`` value at which to stop; raises DeadlineReached.

    Raises CheckNotRun (info finding) when no numeric feature can move within the box, and
    ValueError when no holdout label is one of the model's classes (rows with an unknown label are
    left out and counted in `unknown_label_rows`).
    Returns findings and measurements: sample size, clean and robust accuracy with 95% Wilson
    intervals, the drop (rows flipped / sample) with its interval, rows broken per attack, queries.
    The measurements are also written into `progress`.
    """
    check_sample_rows(sample_rows)
    started = time.monotonic()
    progress = {} if progress is None else progress
    rows = labelled(holdout, label, "holdout")
    if len(rows) == 0:
        raise ValueError("holdout: no labelled rows to attack")
    rows, unknown = known_classes(model, rows, label, "holdout")
    sample = subsample(rows, sample_rows, np.random.default_rng([seed, 0]))
    progress.update(
        population_rows=len(rows), unknown_label_rows=unknown, sample_size=len(sample), attacks_done=[]
    )
    features = sample.drop(columns=[label])
    reference = features if reference is None else reference.drop(columns=[label], errors="ignore")
    box = build_box(features, reference[features.columns], epsilon)
    if not box.columns or not box.movable(np.arange(len(sample))).size:
        key, what = (
            ("no_numeric_features", "No numeric feature to perturb")
            if not box.columns
            else ("no_movable_features", f"No numeric feature can move within epsilon {epsilon:g}")
        )
        title = f"{what}; robustness not measured"
        raise CheckNotRun(_finding(Severity.INFO, key, title, subject_identity, subject or {}, {}))
    oracle = Oracle(
        model, box, true_class_index(model, sample[label]), Deadline(CHECK, deadline, progress), batch_rows
    )
    outcome = run_suite(oracle, noise_trials, boundary_neighbours, greedy_rounds, seed)
    measurements = _measure(outcome, oracle, epsilon, seed, time.monotonic() - started)
    measurements["unknown_label_rows"] = unknown
    progress.update(measurements)
    limits = Limits(min_robust_accuracy, max_accuracy_drop, champion_tolerance, Severity.parse(severity))
    findings = _judge(measurements, champion, champion_version, limits, subject_identity, subject or {})
    return ModelCheckResult(findings, measurements)


@dataclass
class SuiteOutcome:
    clean_wrong: np.ndarray  # bool per sample row
    broken_by: dict[str, list[int]]  # attack -> sample rows it broke first (correct on clean input)
    sensitive_features: dict[str, int]  # feature -> rows whose greedy break moved it


def run_suite(oracle: Oracle, noise_trials: int, neighbours: int, rounds: int, seed: int) -> SuiteOutcome:
    """Clean predictions, then each attack on the rows that no earlier attack broke."""
    progress = oracle.deadline.progress
    everyone = np.arange(len(oracle.truth))
    clean = oracle.proba(everyone, oracle.box.original)
    margin, wrong = margin_and_wrong(clean, oracle.truth)
    predicted = clean.argmax(axis=1)
    alive = everyone[~wrong]
    broken_by: dict[str, list[int]] = {}
    sensitive: dict[str, int] = {}
    for name in ("noise", "boundary", "greedy"):
        progress["attacking"] = {"attack": name, "rows": len(alive)}
        if name == "noise":
            broken = noise_attack(oracle, alive, noise_trials, np.random.default_rng([seed, 1]))
        elif name == "boundary":
            broken = boundary_attack(oracle, alive, predicted, neighbours)
        else:
            state = greedy_attack(oracle, alive, margin[alive], rounds)
            broken, sensitive = np.array(sorted(state.broken), dtype=int), state.moved
        broken_by[name] = broken.tolist()
        alive = np.setdiff1d(alive, broken)
        progress["attacks_done"] = [*progress["attacks_done"], name]
        progress["rows_standing"] = len(alive)
    progress.pop("attacking", None)
    return SuiteOutcome(wrong, broken_by, sensitive)


def _measure(
    outcome: SuiteOutcome, oracle: Oracle, epsilon: float, seed: int, seconds: float
) -> dict[str, Any]:
    n = len(outcome.clean_wrong)
    correct = int((~outcome.clean_wrong).sum())
    flipped = sum(len(rows) for rows in outcome.broken_by.values())
    top = sorted(outcome.sensitive_features.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return {
        "check": CHECK,
        "detector_version": VERSION,
        "sample_size": n,
        "epsilon": epsilon,
        "epsilon_unit": "standard deviation of each numeric feature",
        "numeric_features": len(oracle.box.columns),
        "clean_accuracy": round(correct / n, 6),
        "clean_accuracy_ci95": wilson_interval(correct, n),
        "robust_accuracy": round((correct - flipped) / n, 6),
        "robust_accuracy_ci95": wilson_interval(correct - flipped, n),
        "accuracy_drop": round(flipped / n, 6),
        "accuracy_drop_ci95": wilson_interval(flipped, n),
        "broken_by": {name: len(rows) for name, rows in outcome.broken_by.items()},
        "sensitive_features": dict(top),
        "queries": oracle.queries,
        "seed": seed,
        "seconds": round(seconds, 3),
    }


def _judge(
    m: dict[str, Any],
    champion: dict[str, Any] | None,
    champion_version: str | None,
    limits: Limits,
    identity: str,
    subject: dict[str, Any],
) -> list[Finding]:
    """One finding when robust accuracy is below the floor or drops too far from clean accuracy;
    another when it regressed against the champion."""
    findings = []
    reasons = []
    if m["robust_accuracy"] < limits.min_robust_accuracy:
        reasons.append(f"below the minimum {limits.min_robust_accuracy:.3f}")
    if m["accuracy_drop"] > limits.max_accuracy_drop:
        reasons.append(
            f"{m['accuracy_drop']:.3f} below clean accuracy (allowed {limits.max_accuracy_drop:.3f})"
        )
    evidence = {
        **m,
        "min_robust_accuracy": limits.min_robust_accuracy,
        "max_accuracy_drop": limits.max_accuracy_drop,
    }
    if reasons:
        title = (
            f"Robust accuracy {m['robust_accuracy']:.3f} at epsilon {m['epsilon']:g} std "
            f"(clean {m['clean_accuracy']:.3f}): " + "; ".join(reasons)
        )
        findings.append(_finding(limits.severity, "evasion", title, identity, subject, evidence))
    if champion and champion.get("epsilon") == m["epsilon"] and "robust_accuracy" in champion:
        drop = champion["robust_accuracy"] - m["robust_accuracy"]
        if drop > limits.champion_tolerance:
            title = (
                f"Robust accuracy dropped {drop:.3f} vs champion v{champion_version} "
                f"({m['robust_accuracy']:.3f} < {champion['robust_accuracy']:.3f}; "
                f"tolerance {limits.champion_tolerance})"
            )
            evidence = {**evidence, "champion": champion, "champion_version": champion_version, "drop": drop}
            findings.append(
                _finding(limits.severity, "regression_vs_champion", title, identity, subject, evidence)
            )
    return findings
