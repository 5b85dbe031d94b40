"""Poisoning detection: each attack built here is found with its rows; clean data is left alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from checks.detectors.poisoning import (
    DeadlineReached,
    PoisoningConfig,
    detect_poisoning,
    feature_matrix,
    label_issues,
)
from checks.detectors.tabular import out_of_fold_probabilities
from checks.findings import Severity
from checks.runner import CheckNotRun

PIXELS = [f"pixel_{i}" for i in range(64)]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """kNN reductions on one thread: far faster than two busy-waiting threads on a shared machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@cache
def _digits_cached() -> tuple[np.ndarray, np.ndarray]:
    X, y = datasets.load_digits(return_X_y=True)
    return X.astype(float), y


def _digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = _digits_cached()
    return X.copy(), y.copy()


def _probs(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return out_of_fold_probabilities(pd.DataFrame(X), y, estimator="logistic_regression")


def _scan(X: np.ndarray, y: np.ndarray, *, probs: bool = True, **kwargs):
    """Scan as the pipeline does (with out-of-fold probabilities), or without them when the patterns
    asked for do not need them."""
    kwargs.setdefault("feature_names", PIXELS if X.shape[1] == 64 else None)
    return detect_poisoning(X, y, _probs(X, y) if probs else None, subject_identity="m:data", **kwargs)


def _precision_recall(rows: list[int], truth: np.ndarray) -> tuple[float, float]:
    hits = len(set(rows) & set(truth.tolist()))
    return hits / max(len(rows), 1), hits / len(truth)


def _backdoor(X, y, pixels, target, rate=0.03, seed=0):
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(np.flatnonzero(y != target), round(rate * len(y)), replace=False))
    X, y = X.copy(), y.copy()
    X[np.ix_(rows, pixels)] = 16.0
    y[rows] = target
    return X, y, rows


@pytest.mark.parametrize(("pixels", "target"), [([0, 1, 8, 9], 0), ([55, 62, 63], 4)])
def test_digits_backdoor_is_flagged_high_with_rows_target_and_trigger(pixels, target) -> None:
    X, y, poisoned = _backdoor(*_digits(), pixels, target)
    findings = _scan(X, y)
    [backdoor] = [f for f in findings if f.key.startswith("backdoor:")]
    assert backdoor.key == f"backdoor:{target}"
    assert backdoor.severity == Severity.HIGH
    assert backdoor.evidence["target_class"] == str(target)
    rows = backdoor.evidence["rows"]
    assert rows == sorted(rows)
    precision, recall = _precision_recall(rows, poisoned)
    assert recall >= 0.9 and precision >= 0.8, (precision, recall)
    named = {d["feature"] for p in backdoor.evidence["patterns"] for d in p["features"]}
    assert named and named <= {PIXELS[i] for i in pixels}
    assert backdoor.taxonomy == {"owasp_ml": "ML02:2023", "atlas": "AML.T0020"}
    assert "Drop the" in backdoor.remediation
    assert not [f for f in findings if f.severity >= Severity.MEDIUM and f is not backdoor]
    json.dumps(backdoor.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    "loader",
    [datasets.load_digits, datasets.load_breast_cancer, datasets.load_wine, datasets.load_iris],
)
def test_clean_datasets_get_nothing_at_medium_or_above(loader) -> None:
    X, y = loader(return_X_y=True)
    findings = _scan(X.astype(float), y)
    assert all(f.severity < Severity.MEDIUM for f in findings), [(f.key, f.severity) for f in findings]


def test_near_duplicates_with_conflicting_labels_are_flagged() -> None:
    X, y = _digits()
    rng = np.random.default_rng(1)
    originals = rng.choice(len(y), 20, replace=False)
    copies = X[originals] + rng.normal(scale=1e-3, size=(20, X.shape[1]))
    X2, y2 = np.vstack([X, copies]), np.concatenate([y, (y[originals] + 1) % 10])
    [dup] = _scan(X2, y2, probs=False, patterns=["conflicting_duplicates"])
    assert dup.key == "conflicting_duplicates"
    assert dup.severity >= Severity.MEDIUM
    added = set(range(len(y), len(y2)))
    assert added <= set(dup.evidence["rows"])
    assert set(dup.evidence["rows"]) <= added | set(originals.tolist())
    assert dup.evidence["group_count"] == 20
    for group in dup.evidence["groups"]:
        assert len(group["rows"]) == 2 and len(group["labels"]) == 2
    assert set(dup.evidence["suspected_rows"]) <= set(dup.evidence["rows"])


def _categorical(n: int = 2000, seed: int = 0, rare: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """3 x 3 x 2 category levels (18 distinct rows, each ~110 times) and labels drawn from a logistic
    model: identical rows carry different labels by natural (Bayes) noise alone. `rare` rows get a
    fourth colour."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], n),
            "size": rng.choice(["S", "M", "L"], n),
            "shape": rng.choice(["square", "circle"], n),
        }
    )
    logit = 1.5 * (frame["colour"] == "red") + 1.0 * (frame["size"] == "L") - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame.loc[frame.index < rare, "colour"] = "purple"
    X, _ = feature_matrix(frame)
    return X, y


def _copies_with_forged_labels(X, y, rate, seed=0, among=None):
    """bench_poisoning's attack: rate * n rows (of `among`) copied (jitter 1e-3 sd) with another label."""
    rng = np.random.default_rng(seed)
    among = np.arange(len(y)) if among is None else among
    originals = np.sort(rng.choice(among, round(rate * len(y)), replace=False))
    copies = X[originals] + rng.normal(scale=1e-3 * X.std(axis=0), size=(len(originals), X.shape[1]))
    labels = (y[originals] + rng.integers(1, int(y.max()) + 1, len(originals))) % (int(y.max()) + 1)
    return np.vstack([X, copies]), np.concatenate([y, labels]), originals


@pytest.mark.parametrize("probs", [True, False], ids=["model", "knn_vote"])
def test_natural_label_noise_among_identical_rows_does_not_block(probs) -> None:
    X, y = _categorical()
    findings = _scan(X, y, probs=probs)
    assert all(f.severity < Severity.MEDIUM for f in findings), [(f.key, f.severity) for f in findings]
    [dup] = [f for f in findings if f.key == "conflicting_duplicates"]
    assert dup.severity == Severity.LOW and len(dup.evidence["rows"]) == len(y)
    assert dup.evidence["beyond_natural_noise"] is False
    [large] = dup.evidence["disagreement"]  # 18 groups of ~110 identical rows
    assert large["groups"] == 18
    assert large["disagreeing_rows"] < 1.5 * large["expected_disagreeing_rows"]
    assert "natural label noise" in dup.title
    json.dumps(dup.to_dict(), allow_nan=False)


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_copied_rows_with_forged_labels_are_high_with_their_rows(rate) -> None:
    X, y, originals = _copies_with_forged_labels(*_digits(), rate)
    findings = _scan(X, y)
    [dup] = [f for f in findings if f.key == "conflicting_duplicates"]
    assert dup.severity == Severity.HIGH
    copies = set(range(len(y) - len(originals), len(y)))
    assert set(dup.evidence["rows"]) == copies | set(originals.tolist())
    assert dup.evidence["group_count"] == len(originals)
    assert dup.evidence["beyond_natural_noise"] is True
    [pairs] = dup.evidence["disagreement"]
    assert pairs["disagreeing_rows"] >= 1.5 * pairs["expected_disagreeing_rows"]
    assert len(set(dup.evidence["suspected_rows"]) & copies) >= 0.8 * len(copies)


def test_forged_copies_are_high_beside_large_natural_groups() -> None:
    """Six digits each repeated 100 times with ambiguous labels (70% their class): large groups
    whose natural disagreement must not drown 1% of rows copied with forged labels."""
    X, y = _digits()
    rng = np.random.default_rng(8)
    repeated = np.repeat(rng.choice(len(y), 6, replace=False), 100)
    ambiguous = np.where(rng.random(600) < 0.7, y[repeated], rng.integers(0, 10, 600))
    X, y = np.vstack([X, X[repeated]]), np.concatenate([y, ambiguous])
    single = np.setdiff1d(np.arange(1797), repeated)
    X, y, originals = _copies_with_forged_labels(X, y, 0.01, seed=8, among=single)
    findings = _scan(X, y, patterns=["conflicting_duplicates"])
    [dup] = findings
    assert dup.severity == Severity.HIGH
    assert set(dup.evidence["rows"]) == set(range(len(y) - len(originals), len(y))) | set(originals.tolist())
    small, large = dup.evidence["disagreement"]
    assert small["beyond_natural_noise"] and not large["beyond_natural_noise"]
    assert large["groups"] == 6


def test_a_few_conflicting_pairs_are_named_but_do_not_block() -> None:
    """Fewer than min_group_rows disagreeing rows are not evidence of copying (an overconfident model
    makes any one natural conflict look impossible): low, still naming the rows."""
    X, y, originals = _copies_with_forged_labels(*_digits(), 0.002)
    [dup] = _scan(X, y, patterns=["conflicting_duplicates"])
    assert dup.severity == Severity.LOW and dup.evidence["beyond_natural_noise"] is False
    assert set(dup.evidence["rows"]) == set(range(len(y) - 4, len(y))) | set(originals.tolist())


def test_targeted_flip_of_one_class_pair_is_flagged_with_that_pair() -> None:
    X, y = _digits()
    rng = np.random.default_rng(2)
    threes = np.flatnonzero(y == 3)
    flipped = np.sort(rng.choice(threes, round(0.1 * len(threes)), replace=False))
    y = y.copy()
    y[flipped] = 8
    [flip] = _scan(X, y, classes=[f"digit{d}" for d in range(10)], patterns=["targeted_flip"])
    assert flip.key == "targeted_flip:digit3->digit8"
    assert flip.severity == Severity.HIGH
    assert (flip.evidence["source_class"], flip.evidence["given_class"]) == ("digit3", "digit8")
    precision, recall = _precision_recall(flip.evidence["rows"], flipped)
    assert recall >= 0.8 and precision >= 0.8, (precision, recall)


def test_random_flips_are_not_reported_as_targeted() -> None:
    X, y = _digits()
    rng = np.random.default_rng(3)
    rows = rng.choice(len(y), 90, replace=False)
    y = y.copy()
    y[rows] = (y[rows] + rng.integers(1, 10, 90)) % 10
    assert not _scan(X, y, patterns=["targeted_flip"])


def test_gross_outlier_group_is_reported_at_low_severity() -> None:
    X, y = _digits()
    rng = np.random.default_rng(4)
    rows = np.sort(rng.choice(len(y), 12, replace=False))
    X = X.copy()
    for row in rows:
        X[row, rng.choice(64, 16, replace=False)] = 60.0
    [outlier] = _scan(X, y, probs=False, patterns=["outliers"])
    assert outlier.key == "outliers"
    assert outlier.severity == Severity.LOW
    assert set(rows.tolist()) <= set(outlier.evidence["rows"])
    assert len(outlier.evidence["rows"]) <= 2 * len(rows)


def test_rows_tied_at_one_distance_are_not_outliers() -> None:
    """Categorical data: every row has five identical copies (the MAD of the distances is 0)."""
    X, y = _categorical()
    assert not _scan(X, y, probs=False, patterns=["outliers"])
    X, y = _categorical(rare=30)  # rows in sparse cells, one category step from the others
    assert not _scan(X, y, probs=False, patterns=["outliers"])


def test_far_outlier_is_flagged_when_most_rows_tie() -> None:
    """Over half the rows are copies of ten digits (distance 0 to their 5th neighbour); the others
    vary; a few rows planted far out are still the only outliers, with finite scores."""
    X, y = _digits()
    rng = np.random.default_rng(7)
    tied = rng.choice(len(y), 1100, replace=False)
    prototypes = rng.choice(np.setdiff1d(np.arange(len(y)), tied), 10, replace=False)
    X[tied] = X[prototypes[np.arange(len(tied)) % 10]]
    y[tied] = y[prototypes[np.arange(len(tied)) % 10]]
    free = np.setdiff1d(np.arange(len(y)), np.concatenate([tied, prototypes]))
    planted = np.sort(rng.choice(free, 5, replace=False))
    for row in planted:
        X[row, rng.choice(64, 16, replace=False)] = 60.0
    [outlier] = _scan(X, y, probs=False, patterns=["outliers"])
    assert set(planted.tolist()) <= set(outlier.evidence["rows"])
    assert len(outlier.evidence["rows"]) <= 2 * len(planted)
    assert max(outlier.evidence["score"]) < 1000


def test_row_positions_map_to_file_order_and_keys_use_class_names() -> None:
    X, y, poisoned = _backdoor(*_digits(), [0, 1, 8, 9], 0, seed=5)
    positions = np.arange(len(y)) * 2 + 7  # e.g. unlabelled rows in between
    classes = [f"c{d}" for d in range(10)]
    [backdoor] = _scan(X, y, probs=False, row_positions=positions, classes=classes, patterns=["backdoor"])
    assert backdoor.key == "backdoor:c0"
    assert set(backdoor.evidence["rows"]) >= set((poisoned * 2 + 7).tolist())


def test_label_issues_combines_model_and_knn() -> None:
    X, y = _digits()
    rng = np.random.default_rng(6)
    rows = rng.choice(len(y), 90, replace=False)
    noisy = y.copy()
    noisy[rows] = (noisy[rows] + rng.integers(1, 10, 90)) % 10
    issues = label_issues(X, noisy, _probs(X, noisy))
    hits = np.isin(np.flatnonzero(issues.flagged), rows).sum()
    f1 = 2 * hits / (issues.flagged.sum() + len(rows))
    assert f1 >= 0.85
    assert (issues.suggested[rows] == y[rows]).mean() >= 0.8


def test_deadline_stops_the_scan_and_progress_says_where() -> None:
    X, y = _digits()
    progress: dict = {}
    with pytest.raises(DeadlineReached):
        detect_poisoning(X, y, None, subject_identity="m:d", progress=progress, deadline=lambda: True)
    assert progress["stage"] == "backdoor" and progress["rows"] == len(y)


def test_inputs_that_cannot_be_scanned() -> None:
    X, y = _digits()
    with pytest.raises(CheckNotRun) as not_run:
        detect_poisoning(X[:6], y[:6], None, subject_identity="m:d")
    assert not_run.value.finding.severity == Severity.INFO
    with pytest.raises(ValueError, match="feature names"):
        detect_poisoning(X, y, None, subject_identity="m:d", feature_names=["a"])
    with pytest.raises(ValueError, match="patterns"):
        detect_poisoning(X, y, None, subject_identity="m:d", patterns=["nope"])


def test_config_changes_severity_and_patterns_can_be_split() -> None:
    X, y, _ = _backdoor(*_digits(), [0, 1, 8, 9], 0)
    config = PoisoningConfig(backdoor_severity="critical")
    findings = detect_poisoning(X, y, None, subject_identity="m:d", config=config, patterns=["backdoor"])
    assert [(f.key, f.severity) for f in findings] == [("backdoor:0", Severity.CRITICAL)]


def test_feature_matrix_keeps_units_and_one_hot_encodes_text() -> None:
    frame = pd.DataFrame({"age": [30.0, None, 50.0], "ok": [True, False, True], "city": ["a", None, "b"]})
    X, names = feature_matrix(frame)
    assert names == ["age", "ok", "city=<missing>", "city=a", "city=b"]
    assert X[0].tolist() == [30.0, 1.0, 0.0, 1.0, 0.0]
    assert np.isnan(X[1, 0])
