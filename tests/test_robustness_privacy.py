"""Model-stage attack checks: evasion robustness and membership inference, on models built here.

"Flagged" means a finding at medium or above (issue 5). Every model is fitted once per module.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from checks.detectors.privacy import evaluate_membership_inference, tpr_at_fpr
from checks.detectors.robustness import (
    MIN_SAMPLE_ROWS,
    DeadlineReached,
    evaluate_robustness,
    wilson_interval,
)
from checks.findings import Severity, dumps_strict
from checks.runner import CheckNotRun

LABEL = "label"
ID = "m"


def _flagged(findings) -> list:
    return [f for f in findings if f.severity >= Severity.MEDIUM]


def _split(X: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    df[LABEL] = y
    train, holdout = train_test_split(df, test_size=0.3, random_state=seed, stratify=y)
    return train, holdout


def _fit(model: Any, train: pd.DataFrame) -> Pipeline:
    return model.fit(train.drop(columns=[LABEL]), train[LABEL])


# -- data and models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noisy() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Label noise gives an unpruned forest something to memorise."""
    X, y = make_classification(2000, 10, n_informative=5, flip_y=0.2, random_state=1)
    return _split(X, y)


@pytest.fixture(scope="module")
def separated() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two far-apart Gaussian blobs: a smooth model has wide margins everywhere."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    X = rng.normal(size=(2000, 4)) + np.where(y[:, None] == 1, 3.0, -3.0)
    return _split(X, y)


@pytest.fixture(scope="module")
def cancelling() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The label lives in a tiny difference of two near-identical features (f1 − f0 = ±0.05)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    base = rng.normal(size=2000)
    X = np.column_stack([base, base + np.where(y == 1, 0.05, -0.05), rng.normal(size=(2000, 2))])
    return _split(X, y)


@pytest.fixture(scope="module")
def stripes() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Label alternates every 0.05 of f0: a tree fits it, but every row sits near an edge."""
    rng = np.random.default_rng(0)
    X = rng.random((2000, 3))
    return _split(X, (np.floor(X[:, 0] * 20) % 2).astype(int))


def _lr(C: float) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))


# -- membership inference --------------------------------------------------------------------------


def test_overfit_forest_is_flagged_for_membership_inference(noisy) -> None:
    train, holdout = noisy
    model = _fit(RandomForestClassifier(100, min_samples_leaf=1, random_state=0, n_jobs=1), train)
    result = evaluate_membership_inference(model, train, holdout, LABEL, subject_identity=ID)
    m = result.measurements
    assert m["attack_auc"] >= 0.7
    low, high = m["attack_auc_ci95"]
    assert low <= m["attack_auc"] <= high
    [finding] = [f for f in result.findings if f.key == "loss_threshold_attack"]
    assert finding.severity == Severity.MEDIUM
    assert finding.taxonomy == {"owasp_ml": "ML04:2023", "atlas": "AML.T0024.000"}
    assert "regularise" in finding.remediation
    assert m["generalization_gap"] > 0.1 and any(f.key == "generalization_gap" for f in result.findings)
    assert m["tpr_at_1pct_fpr"] > 0.05
    json.loads(dumps_strict([f.to_dict() for f in result.findings]))


def test_regularised_logistic_regression_is_not_flagged(noisy) -> None:
    train, holdout = noisy
    model = _fit(_lr(0.1), train)
    result = evaluate_membership_inference(model, train, holdout, LABEL, subject_identity=ID)
    assert result.measurements["attack_auc"] <= 0.6
    assert _flagged(result.findings) == []


def test_membership_samples_take_the_sample_size_or_all_rows_of_each_side(noisy) -> None:
    """Each side is sampled on its own: a small holdout does not shrink the member sample."""
    train, holdout = noisy  # 1400 training rows, 600 holdout rows
    model = _fit(_lr(0.1), train)
    m = evaluate_membership_inference(model, train, holdout, LABEL, subject_identity=ID).measurements
    assert (m["member_sample_size"], m["non_member_sample_size"]) == (1000, 600)
    small = evaluate_membership_inference(model, train, holdout.iloc[:120], LABEL, subject_identity=ID)
    assert (small.measurements["member_sample_size"], small.measurements["non_member_sample_size"]) == (
        1000,
        120,
    )
    with pytest.raises(ValueError, match="at least 500"):
        evaluate_membership_inference(model, train, holdout, LABEL, subject_identity=ID, sample_rows=100)


@pytest.mark.parametrize("holdout", [None, "empty"])
def test_membership_inference_without_holdout_is_not_run(noisy, holdout) -> None:
    train, rows = noisy
    non_members = None if holdout is None else rows.iloc[:0]
    with pytest.raises(CheckNotRun) as raised:
        evaluate_membership_inference(_fit(_lr(0.1), train), train, non_members, LABEL, subject_identity=ID)
    assert raised.value.finding.severity == Severity.MEDIUM
    assert raised.value.finding.key == "no_holdout"
    assert raised.value.finding.check == "membership_inference"


def test_tpr_at_fpr_interpolates_between_roc_points() -> None:
    fpr = np.array([0.0, 0.0, 0.02, 1.0])
    tpr = np.array([0.0, 0.3, 0.5, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.01) == pytest.approx(0.4)
    assert tpr_at_fpr(fpr, tpr, 0.02) == pytest.approx(0.5)


# -- evasion robustness ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "model"),
    [
        ("cancelling", lambda: _lr(1e4)),  # huge weights on a tiny difference of two features
        ("stripes", lambda: DecisionTreeClassifier(random_state=0)),  # tiny margins everywhere
    ],
)
def test_brittle_model_gets_a_robustness_finding(request, data, model) -> None:
    train, holdout = request.getfixturevalue(data)
    result = evaluate_robustness(_fit(model(), train), holdout, LABEL, subject_identity=ID, reference=train)
    m = result.measurements
    assert m["clean_accuracy"] >= 0.9
    assert m["robust_accuracy"] < 0.5
    low, high = m["robust_accuracy_ci95"]
    assert low <= m["robust_accuracy"] <= high
    [finding] = _flagged(result.findings)
    assert finding.key == "evasion" and finding.severity == Severity.HIGH
    assert finding.taxonomy == {"owasp_ml": "ML01:2023", "atlas": "AML.T0043"}
    assert "adversarial" in finding.remediation
    json.loads(dumps_strict(finding.to_dict()))


def test_brittle_features_are_named(cancelling) -> None:
    train, holdout = cancelling
    model = _fit(_lr(1e4), train)
    result = evaluate_robustness(
        model, holdout, LABEL, subject_identity=ID, reference=train, noise_trials=0, boundary_neighbours=0
    )
    assert set(list(result.measurements["sensitive_features"])[:2]) == {"f0", "f1"}


def test_smooth_model_on_separated_data_is_not_flagged(separated) -> None:
    train, holdout = separated
    result = evaluate_robustness(_fit(_lr(0.1), train), holdout, LABEL, subject_identity=ID, reference=train)
    assert result.measurements["robust_accuracy"] >= 0.99
    assert result.findings == []


def test_sample_is_at_least_500_rows_or_all(separated) -> None:
    train, holdout = separated  # 600 holdout rows
    model = _fit(_lr(0.1), train)
    m = evaluate_robustness(
        model, holdout, LABEL, subject_identity=ID, sample_rows=MIN_SAMPLE_ROWS
    ).measurements
    assert m["sample_size"] == MIN_SAMPLE_ROWS
    m = evaluate_robustness(model, holdout.iloc[:80], LABEL, subject_identity=ID).measurements
    assert m["sample_size"] == 80
    with pytest.raises(ValueError, match="at least 500"):
        evaluate_robustness(model, holdout, LABEL, subject_identity=ID, sample_rows=499)


def test_deterministic_with_a_seed(stripes) -> None:
    train, holdout = stripes
    model = _fit(DecisionTreeClassifier(random_state=0), train)

    def run(seed: int) -> dict[str, Any]:
        m = evaluate_robustness(
            model, holdout, LABEL, subject_identity=ID, reference=train, seed=seed, sample_rows=500
        ).measurements
        return {k: v for k, v in m.items() if k != "seconds"}

    assert run(3) == run(3)
    members = evaluate_membership_inference(model, train, holdout, LABEL, subject_identity=ID, seed=3)
    again = evaluate_membership_inference(model, train, holdout, LABEL, subject_identity=ID, seed=3)
    assert {k: v for k, v in members.measurements.items() if k != "seconds"} == {
        k: v for k, v in again.measurements.items() if k != "seconds"
    }


def test_regression_against_the_champion(separated) -> None:
    train, holdout = separated
    model = _fit(_lr(0.1), train)
    champion = {"robust_accuracy": 1.0, "epsilon": 0.3}
    result = evaluate_robustness(
        model,
        holdout,
        LABEL,
        subject_identity=ID,
        epsilon=0.3,
        champion=champion,
        champion_version="4",
        champion_tolerance=-1.0,  # any robust accuracy counts as a drop here
    )
    assert [f.key for f in result.findings] == ["regression_vs_champion"]
    assert "v4" in result.findings[0].title
    other_epsilon = evaluate_robustness(
        model, holdout, LABEL, subject_identity=ID, champion=champion, champion_tolerance=-1.0
    )
    assert other_epsilon.findings == [], "figures at another epsilon are not comparable"


class _Spy:
    """Wraps a fitted model and keeps every frame the attacks send to it."""

    def __init__(self, model: Any, delay: float = 0.0) -> None:
        self.model, self.delay, self.frames = model, delay, []
        self.classes_ = model.classes_

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        self.frames.append(frame)
        time.sleep(self.delay)
        return self.model.predict_proba(frame)


def test_only_numeric_features_move_and_stay_in_observed_ranges(separated) -> None:
    train, holdout = separated
    rng = np.random.default_rng(1)
    extra = {
        "colour": lambda n: rng.choice(["red", "blue"], n),
        "flag": lambda n: rng.random(n) < 0.5,
        "count": lambda n: rng.integers(0, 10, n),
    }
    train = train.assign(**{k: make(len(train)) for k, make in extra.items()})
    holdout = holdout.assign(**{k: make(len(holdout)) for k, make in extra.items()})
    numeric = ["f0", "f1", "f2", "f3", "count"]
    pick = ColumnTransformer([("numeric", "passthrough", numeric)])  # ignores the other columns
    spy = _Spy(_fit(make_pipeline(pick, StandardScaler(), LogisticRegression(C=0.1)), train))
    result = evaluate_robustness(spy, holdout, LABEL, subject_identity=ID, reference=train, epsilon=1.0)
    assert result.measurements["broken_by"]["greedy"] > 0, "every attack ran"
    both = pd.concat([train, holdout])
    for frame in spy.frames:
        assert list(frame.columns) == list(holdout.drop(columns=[LABEL]).columns)
        assert set(frame["colour"]) <= {"red", "blue"} and frame["flag"].dtype == bool
        assert pd.api.types.is_integer_dtype(frame["count"])
        for column in numeric:
            assert frame[column].between(both[column].min(), both[column].max()).all()


def test_deadline_stops_the_attacks_and_records_coverage(separated) -> None:
    train, holdout = separated
    spy = _Spy(_fit(_lr(0.1), train), delay=0.05)
    progress: dict[str, Any] = {}
    started = time.monotonic()
    with pytest.raises(DeadlineReached) as raised:
        evaluate_robustness(
            spy,
            holdout,
            LABEL,
            subject_identity=ID,
            batch_rows=500,
            progress=progress,
            deadline=time.monotonic() + 0.3,
        )
    assert time.monotonic() - started < 2.0
    coverage = raised.value.coverage
    assert coverage["stopped_at_deadline"] and coverage["sample_size"] == MIN_SAMPLE_ROWS
    assert 0 < coverage["queries"] < 600 * 20 and "greedy" not in coverage["attacks_done"]
    assert progress["stopped_at_deadline"]
    with pytest.raises(DeadlineReached):
        evaluate_membership_inference(
            spy, train, holdout, LABEL, subject_identity=ID, deadline=time.monotonic()
        )


def test_no_numeric_feature_is_not_run() -> None:
    frame = pd.DataFrame({"colour": ["red", "blue"] * 300, LABEL: [0, 1] * 300})

    class Constant:
        classes_ = np.array([0, 1])

        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            return np.tile([0.5, 0.5], (len(X), 1))

    with pytest.raises(CheckNotRun) as raised:
        evaluate_robustness(Constant(), frame, LABEL, subject_identity=ID)
    assert raised.value.finding.severity == Severity.INFO


def test_labels_the_model_never_learnt_fail_instead_of_passing(separated) -> None:
    """Holdout labels "yes"/"no" against a model trained on 0/1: nothing can be measured, so both
    checks raise (an `error` result, critical) rather than report a pass."""
    train, holdout = separated
    model = _fit(_lr(1.0), train)
    renamed = holdout.assign(**{LABEL: holdout[LABEL].map({0: "no", 1: "yes"})})
    with pytest.raises(ValueError, match=r"no label \(no, yes\) is one of the model's classes"):
        evaluate_robustness(model, renamed, LABEL, subject_identity=ID)
    with pytest.raises(ValueError, match=r"no label \(no, yes\) is one of the model's classes"):
        evaluate_membership_inference(model, train, renamed, LABEL, subject_identity=ID)


def test_unknown_label_rows_are_left_out_and_counted(separated) -> None:
    train, holdout = separated
    model = _fit(_lr(1.0), train)
    mixed = holdout.copy()
    mixed.loc[mixed.index[:50], LABEL] = 7  # a class the model never saw
    m = evaluate_membership_inference(model, train, mixed, LABEL, subject_identity=ID).measurements
    assert m["unknown_label_rows"] == 50
    assert m["non_member_sample_size"] == len(holdout) - 50
    r = evaluate_robustness(model, mixed, LABEL, subject_identity=ID).measurements
    assert r["unknown_label_rows"] == 50


def test_integer_features_that_cannot_move_within_epsilon_are_not_run() -> None:
    """Integer features whose box is narrower than one unit cannot be perturbed: not measured
    (info), rather than a robust accuracy equal to the clean one."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.integers(0, 10, size=(800, 3)), columns=["a", "b", "c"])
    frame[LABEL] = (frame["a"] > 4).astype(int)
    model = _fit(_lr(1.0), frame.iloc[:600])
    with pytest.raises(CheckNotRun) as raised:
        evaluate_robustness(model, frame.iloc[600:], LABEL, subject_identity=ID, epsilon=0.1)
    assert raised.value.finding.key == "no_movable_features"


def test_wilson_interval() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(500, 500)
    assert high == 1.0 and 0.99 < low < 1.0
    low, high = wilson_interval(250, 500)
    assert low == pytest.approx(0.4562, abs=1e-3) and high == pytest.approx(0.5438, abs=1e-3)


def test_labels_read_back_as_floats_still_match_integer_classes(separated) -> None:
    train, holdout = separated
    model = _fit(_lr(0.1), train)  # classes_ are integers
    as_floats = holdout.assign(**{LABEL: holdout[LABEL].astype(float)})
    m = evaluate_robustness(model, as_floats, LABEL, subject_identity=ID).measurements
    assert m["clean_accuracy"] >= 0.99


def test_champion_that_cannot_be_attacked_is_a_medium_gap(separated, tmp_path) -> None:
    """The robustness check as the gate runs it: a champion that fails to load is not silently
    skipped; the comparison gap is a medium finding next to the candidate's own results."""
    from checks.load_guard import UntrustedModelError
    from checks.policy import Policy
    from checks.stage_checks import robustness_check
    from pipelines.storage import save_dataset

    train, holdout = separated
    frame = pd.concat([train, holdout], ignore_index=True)
    dataset = save_dataset(
        tmp_path,
        frame,
        name="blobs",
        label=LABEL,
        source="test",
        holdout_rows=list(range(len(train), len(frame))),
    )
    model = _fit(_lr(1.0), train)

    def champion() -> Any:
        raise UntrustedModelError("champion v1 was never scanned by mlgate")

    check = robustness_check(
        lambda: model,
        dataset,
        Policy(),
        identity=ID,
        subject={},
        load_champion=champion,
        champion_version="1",
    )
    progress: dict[str, Any] = {}
    [gap] = [f for f in check(progress) if f.key == "champion_unavailable"]
    assert gap.severity == Severity.MEDIUM
    assert gap.evidence["champion_version"] == "1"
    assert "never scanned" in progress["champion_error"]


def test_slow_champion_is_a_gap_and_leaves_the_candidate_its_time(separated, tmp_path) -> None:
    """A champion too slow to attack within its share of the budget is a medium gap; the
    candidate's own attack still completes (before, it inherited an expired deadline and the
    check timed out, which blocks at critical)."""
    from checks.policy import Policy
    from checks.stage_checks import robustness_check
    from pipelines.storage import save_dataset

    train, holdout = separated
    frame = pd.concat([train, holdout], ignore_index=True)
    holdout_rows = list(range(len(train), len(frame)))
    dataset = save_dataset(
        tmp_path, frame, name="blobs", label=LABEL, source="test", holdout_rows=holdout_rows
    )
    model = _fit(_lr(1.0), train)

    class SlowChampion:
        classes_ = model.classes_

        def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
            time.sleep(0.5)
            return model.predict_proba(rows)

    policy = Policy.model_validate({"checks": {"robustness": {"timeout_seconds": 4.0}}})
    check = robustness_check(
        lambda: model,
        dataset,
        policy,
        identity=ID,
        subject={},
        load_champion=SlowChampion,
        champion_version="1",
    )
    progress: dict[str, Any] = {}
    findings = check(progress)
    assert "DeadlineReached" in progress["champion_error"]
    assert [f.key for f in findings if f.severity >= Severity.MEDIUM] == ["champion_unavailable"]
    assert progress["sample_size"] >= 400
