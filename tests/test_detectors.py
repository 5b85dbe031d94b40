"""Unit tests of the pure detectors: each catches what it claims and leaves the clean case alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import f1_score

from checks.artifact_scan import ScanPolicy
from checks.detectors.artifact import scan_model_artifact
from checks.detectors.data_quality import baseline_contract, draft_suite, validate_suite
from checks.detectors.label_noise import find_label_noise
from checks.detectors.performance import compare_to_champion
from checks.detectors.poisoning import detect_poisoning, feature_matrix
from checks.detectors.poisoning.context import MIN_CLASS_REFERENCE, sample_reference
from checks.detectors.registry import RegistryFacts, validate_registry_entry
from checks.detectors.tabular import DataError, out_of_fold_probabilities, prepare


def _blobs(n: int = 600, seed: int = 0) -> pd.DataFrame:
    X, y = make_blobs(n_samples=n, centers=3, n_features=4, cluster_std=1.0, random_state=seed)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    df["label"] = np.array(["a", "b", "c"])[y]
    return df


def _flip(df: pd.DataFrame, fraction: float, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(df), int(fraction * len(df)), replace=False))
    noisy = df.copy()
    noisy.loc[rows, "label"] = noisy.loc[rows, "label"].map({"a": "b", "b": "c", "c": "a"})
    return noisy, rows


def _noise_findings(df: pd.DataFrame, *, knn: bool = True, estimator: str = "logistic_regression", **kwargs):
    """The label-noise detector as the pipeline runs it (with the kNN vote unless `knn` is False)."""
    prepared = prepare(df, "label")
    probs = out_of_fold_probabilities(prepared.features, prepared.labels, estimator=estimator)
    return find_label_noise(
        prepared.labels,
        probs,
        subject_identity="m:blobs",
        row_positions=prepared.labelled_rows,
        features=feature_matrix(prepared.features)[0],
        **kwargs,
    )


# -- label noise ---------------------------------------------------------------------------------


def test_label_noise_flags_flipped_rows_and_blocks_above_threshold() -> None:
    noisy, flipped = _flip(_blobs(), 0.10)
    [finding] = _noise_findings(noisy, max_noise_rate=0.05)
    assert finding.severity.label == "high"
    rows = finding.evidence["rows"]
    assert rows == sorted(rows)
    caught = len(set(rows) & set(flipped.tolist()))
    assert caught / len(flipped) >= 0.9, "recall on well-separated blobs"
    assert caught / len(rows) >= 0.9, "precision on well-separated blobs"
    assert len(finding.evidence["label_quality"]) == len(rows)
    assert 0.07 <= finding.evidence["noise_rate"] <= 0.13


def test_label_noise_below_threshold_is_low_and_clean_data_is_not_flagged() -> None:
    assert _noise_findings(_blobs()) == []
    noisy, _ = _flip(_blobs(), 0.02)
    [finding] = _noise_findings(noisy, max_noise_rate=0.05)
    assert finding.severity.label == "low"


def test_label_noise_rows_are_file_positions_when_some_labels_are_missing() -> None:
    noisy, flipped = _flip(_blobs(), 0.10)
    noisy.loc[[0, 1, 2], "label"] = None
    [finding] = _noise_findings(noisy)
    assert not {0, 1, 2} & set(finding.evidence["rows"])
    assert len(set(finding.evidence["rows"]) & set(flipped.tolist())) >= 0.8 * len(flipped)


def test_label_noise_finds_random_flips_on_digits() -> None:
    """Issue 5's goal: F1 >= 0.9 on digits with 5% random flips, with the policy's default detection
    model (the calibrated SVM at this size); bench/RESULTS.md has the spread over seeds."""
    digits = load_digits(as_frame=True).frame.rename(columns={"target": "label"})
    rng = np.random.default_rng(0)
    rows = rng.choice(len(digits), round(0.05 * len(digits)), replace=False)
    digits.loc[rows, "label"] = (digits.loc[rows, "label"] + rng.integers(1, 10, len(rows))) % 10

    [finding] = _noise_findings(digits, estimator="auto")
    truth = np.isin(np.arange(len(digits)), rows)
    assert f1_score(truth, np.isin(np.arange(len(digits)), finding.evidence["rows"])) >= 0.9


def _model_doubts_what_features_confirm() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two well-separated clusters labelled by cluster; the model confidently doubts 40 of the 200
    labels (the doubted rows are returned last)."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 100)
    features = np.where(labels[:, None] == 0, -5.0, 5.0) + rng.normal(size=(200, 3))
    probs = np.where(labels[:, None] == np.arange(2), 0.95, 0.05)
    doubted = rng.choice(200, 40, replace=False)
    probs[doubted] = np.where(labels[doubted, None] == np.arange(2), 0.02, 0.98)
    return labels, features, probs, doubted


def test_knn_vote_never_hides_a_blocking_noise_estimate() -> None:
    """Fail closed: the model confidently doubts 20% of the labels while the features agree with
    them; the vote may not pick those rows, but the estimate above the limit still blocks."""
    labels, features, probs, doubted = _model_doubts_what_features_confirm()

    [finding] = find_label_noise(labels, probs, subject_identity="m:x", features=features)
    assert finding.severity.label == "high"
    assert finding.evidence["noise_rate"] == 0.2
    assert sorted(finding.evidence["rows"]) == sorted(doubted.tolist())


def test_knn_vote_lists_as_many_rows_as_cleanlab_counts() -> None:
    """Rows the vote doubts (features among the other class, the model unsure) take slots; the rest
    of cleanlab's count is filled from the rows the model doubts, never from rows nobody doubts."""
    labels, features, probs, doubted = _model_doubts_what_features_confirm()
    odd = np.setdiff1d(np.arange(200), doubted)[:3]
    features[odd] *= -1  # these rows sit among the other class, and the model is unsure of them
    probs[odd] = 0.5

    [finding] = find_label_noise(labels, probs, subject_identity="m:x", features=features)
    listed = set(finding.evidence["rows"])
    assert len(listed) == 40 == finding.evidence["flagged"]
    assert listed <= set(doubted.tolist()) | set(odd.tolist())
    assert set(odd.tolist()) <= listed


def test_label_noise_rejects_misaligned_features() -> None:
    labels = np.repeat([0, 1], 50)
    probs = np.full((100, 2), 0.5)
    with pytest.raises(ValueError, match="99 feature rows for 100 labels"):
        find_label_noise(labels, probs, subject_identity="m:x", features=np.zeros((99, 2)))


def test_sampled_knn_reference_keeps_rare_classes() -> None:
    """Above the kNN budget the reference is sampled; a rare class keeps enough rows of its own."""
    labels = np.zeros(200_000, dtype=int)
    labels[:30] = 1
    reference = sample_reference(labels, cap=10_000, seed=0)
    assert len(reference) < len(labels)
    assert np.all(np.diff(reference) > 0)
    assert (labels[reference] == 1).sum() == MIN_CLASS_REFERENCE


def test_label_checks_refuse_probabilities_that_are_not_distributions() -> None:
    """NaN probabilities compare false everywhere and would hide every flipped label (a pass)."""
    X = np.random.default_rng(0).normal(size=(50, 3))
    labels = np.repeat([0, 1], 25)
    for bad in (np.full((50, 2), np.nan), np.full((50, 2), 0.9)):
        with pytest.raises(ValueError, match="finite, non-negative and sum to 1"):
            detect_poisoning(X, labels, bad, subject_identity="m:x")
        with pytest.raises(ValueError, match="finite, non-negative and sum to 1"):
            find_label_noise(labels, bad, subject_identity="m:x", features=X)


def test_continuous_target_is_rejected() -> None:
    df = pd.DataFrame({"x": range(100), "label": np.linspace(0, 1, 100) + 0.5})
    with pytest.raises(DataError, match="continuous"):
        prepare(df, "label")


def test_id_like_and_free_text_columns_are_left_out() -> None:
    df = _blobs(200)
    df["customer_id"] = [f"c{i:05d}" for i in range(len(df))]
    df["colour"] = np.where(df["f0"] > 0, "red", "blue")
    prepared = prepare(df, "label")
    assert prepared.id_columns == ["customer_id"]
    assert "colour" in prepared.features.columns


# -- data quality --------------------------------------------------------------------------------


def test_suite_catches_range_set_and_schema_violations_and_passes_clean_data() -> None:
    clean = _blobs(300)
    suite = draft_suite(clean, "label", "blobs")
    assert validate_suite(clean, suite, subject_identity="m:blobs") == []
    bad = clean.copy()
    bad.loc[7, "f0"] = 1e6
    bad.loc[3, "label"] = "zebra"
    found = {f.evidence["expectation"]: f for f in validate_suite(bad, suite, subject_identity="m:blobs")}
    assert found["expect_column_values_to_be_between"].evidence["rows"] == [7]
    assert found["expect_column_values_to_be_in_set"].evidence["rows"] == [3]
    assert found["expect_column_values_to_be_in_set"].severity.label == "high"
    missing = validate_suite(clean.drop(columns=["f1"]), suite, subject_identity="m:blobs")
    assert missing and all(f.severity.label == "critical" for f in missing)
    assert any("could not run" in f.title for f in missing), "an expectation that errors is critical"


def test_drafted_suite_keeps_key_columns_unique() -> None:
    clean = _blobs(100)
    clean["id"] = range(100)
    suite = draft_suite(clean, "label", "blobs")
    assert {
        "type": "expect_column_values_to_be_unique",
        "kwargs": {"column": "id"},
        "meta": {"severity": "medium"},
    } in suite["expectations"]
    duplicated = clean.copy()
    duplicated.loc[[10, 40], "id"] = 7
    [finding] = validate_suite(duplicated, suite, subject_identity="m:blobs")
    assert finding.evidence["expectation"] == "expect_column_values_to_be_unique"
    assert finding.evidence["rows"] == [7, 10, 40]


def test_suite_files_are_validated(tmp_path: Path) -> None:
    from checks.detectors.data_quality import SuiteError, load_suite

    def write(expectations: list) -> Path:
        path = tmp_path / "suite.json"
        path.write_text(json.dumps({"name": "s", "expectations": expectations}))
        return path

    between = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0}}
    with pytest.raises(SuiteError, match="expectation 1 repeats expectation 0"):
        load_suite(write([between, {**between, "kwargs": {"column": "x", "max_value": 9}}]))
    with pytest.raises(SuiteError, match="unknown expectation type 'expect_magic'"):
        load_suite(write([{"type": "expect_magic", "kwargs": {}}]))
    with pytest.raises(SuiteError, match="unknown severity"):
        load_suite(write([{**between, "meta": {"severity": "urgent"}}]))
    assert load_suite(write([between]))["name"] == "s"


def test_snapshot_digest_covers_label_and_holdout(tmp_path: Path) -> None:
    from pipelines.storage import load_dataset, save_dataset

    df = _blobs(50)
    a = save_dataset(tmp_path, df, name="d", label="label", source="x", holdout_rows=[1, 2])
    b = save_dataset(tmp_path, df, name="d", label="label", source="x", holdout_rows=[3, 4])
    c = save_dataset(tmp_path, df, name="d", label="f0", source="x", holdout_rows=[1, 2])
    assert len({a.digest, b.digest, c.digest}) == 3
    assert load_dataset(tmp_path, b.digest).holdout_rows == [3, 4]
    assert (
        save_dataset(tmp_path, df, name="d", label="label", source="x", holdout_rows=[2, 1]).digest
        == a.digest
    )


def test_baseline_contract() -> None:
    df = _blobs(40)
    df.loc[[5, 2], "label"] = None
    df["empty"] = np.nan
    df.loc[9, "f2"] = np.inf
    found = {
        f.key.split(":")[0]: f for f in baseline_contract(df, "label", subject_identity="m:d", min_rows=50)
    }
    assert found["no_suite"].severity.label == "info"
    assert found["null_label"].evidence["rows"] == [2, 5]
    assert found["too_few_rows"].severity.label == "high"
    assert found["all_null"].evidence["column"] == "empty"
    assert found["infinite"].evidence["rows"] == [9]
    clean = baseline_contract(_blobs(100), "label", subject_identity="m:d")
    assert [f.key for f in clean] == ["no_suite"]


# -- artifact safety -----------------------------------------------------------------------------


@pytest.fixture
def sklearn_model_dir(tmp_path: Path) -> Path:
    import mlflow.sklearn
    import skops.io
    from sklearn.linear_model import LogisticRegression

    df = _blobs(100)
    model = LogisticRegression().fit(df.drop(columns=["label"]), df["label"])
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        model,
        str(path),
        serialization_format="skops",
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
        pip_requirements=["scikit-learn"],
    )
    return path


def _artifact_findings(root: Path) -> dict[str, str]:
    found = scan_model_artifact(root, ScanPolicy(), subject_identity="m")
    return {f.key: f.severity.label for f in found}


def test_artifact_scan_accepts_a_plain_skops_model(sklearn_model_dir: Path) -> None:
    assert scan_model_artifact(sklearn_model_dir, ScanPolicy(), subject_identity="m") == []


def test_artifact_scan_flags_pickle_format_foreign_trust_and_code_paths(sklearn_model_dir: Path) -> None:
    mlmodel = yaml.safe_load((sklearn_model_dir / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"]["serialization_format"] = "cloudpickle"
    mlmodel["flavors"]["sklearn"]["skops_trusted_types"] = ["os.system"]
    mlmodel["flavors"]["sklearn"]["code"] = "code"
    (sklearn_model_dir / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    found = _artifact_findings(sklearn_model_dir)
    assert found == {
        "mlmodel:code_paths|": "critical",
        "mlmodel:skops_trusted_types|": "critical",  # os.system is denied outright
        "mlmodel:serialization_format:cloudpickle|": "medium",  # the pickle itself is scanned too
    }


def test_artifact_scan_treats_a_corrupt_mlmodel_as_a_finding(sklearn_model_dir: Path) -> None:
    (sklearn_model_dir / "MLmodel").write_text("flavors: [unclosed\n")
    found = _artifact_findings(sklearn_model_dir)
    assert found and max(found.values(), key=["info", "low", "medium", "high", "critical"].index) in (
        "high",
        "critical",
    ), found


# -- registry and performance --------------------------------------------------------------------


def test_registry_validation_gaps_are_medium_or_lower_and_bad_lineage_is_high() -> None:
    complete = RegistryFacts(True, True, {"mlgate.dataset_digest": "d" * 64, "owner": "me"}, "passed", True)
    assert validate_registry_entry(complete, subject_identity="m") == []
    bare = RegistryFacts(False, False, {}, None, False)
    found = {f.key: f.severity.label for f in validate_registry_entry(bare, subject_identity="m")}
    assert found == {
        "no_signature": "medium",
        "no_input_example": "medium",
        "no_lineage": "medium",
        "no_owner": "low",
    }
    poisoned = RegistryFacts(True, True, {"mlgate.dataset_digest": "d" * 64, "owner": "me"}, "blocked", True)
    [finding] = validate_registry_entry(poisoned, subject_identity="m")
    assert finding.key == "lineage_data_blocked" and finding.severity.label == "high"


def test_performance_regression_beyond_tolerance_is_high() -> None:
    champion = {"accuracy": 0.95}
    assert (
        compare_to_champion(
            {"accuracy": 0.94}, champion, metric="accuracy", tolerance=0.02, subject_identity="m"
        )
        == []
    )
    [finding] = compare_to_champion(
        {"accuracy": 0.90},
        champion,
        metric="accuracy",
        tolerance=0.02,
        subject_identity="m",
        champion_version="3",
    )
    assert finding.severity.label == "high" and finding.evidence["drop"] == pytest.approx(0.05)
    [first] = compare_to_champion(
        {"accuracy": 0.9}, None, metric="accuracy", tolerance=0.02, subject_identity="m"
    )
    assert first.severity.label == "info"


def test_findings_serialise_to_strict_json() -> None:
    noisy, _ = _flip(_blobs(), 0.1)
    [finding] = _noise_findings(noisy)
    text = json.dumps(finding.to_dict(), allow_nan=False)
    assert json.loads(text)["evidence"]["rows"] == finding.evidence["rows"]
