"""Versions trained outside mlgate: their training data is resolved through the run's lineage
(dataset inputs with readable sources, or tabular run artifacts) and checked inside scan_version."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from assets.sources import inject_label_noise
from tests.conftest import BUNDLED, register_external

LABEL = "diagnosis"


@pytest.fixture()
def bundled() -> pd.DataFrame:
    return pd.read_csv(BUNDLED)


def _split(df: pd.DataFrame, tmp: Path) -> tuple[Path, Path]:
    train, test = tmp / "train.csv", tmp / "test.csv"
    df.iloc[: int(len(df) * 0.8)].to_csv(train, index=False)
    df.iloc[int(len(df) * 0.8) :].to_csv(test, index=False)
    return train, test


def _fit(path: Path) -> tuple[LogisticRegression, pd.DataFrame]:
    df = pd.read_csv(path)
    features = df.drop(columns=[LABEL])
    return LogisticRegression(max_iter=5000).fit(features, df[LABEL]), features


def _log_inputs(train: Path, test: Path | None = None, *, with_source: bool = True):
    def log() -> None:
        import mlflow

        for path, context in [(train, "training"), (test, "evaluation")]:
            if path is None:
                continue
            df = pd.read_csv(path)
            source = {"source": str(path)} if with_source else {}
            mlflow.log_input(mlflow.data.from_pandas(df, targets=LABEL, name=path.stem, **source), context)

    return log


def _checks(env, name: str, version: str) -> dict:
    scan = env.store.latest_scan("model_version", model_name=name, version=version)
    checks = env.store.checks_of(scan["id"])
    evaluation = env.store.latest_scan("model_evaluation", model_name=name, version=version)
    return checks | (env.store.checks_of(evaluation["id"]) if evaluation else {})


def _data_scan(env, name: str, digest: str) -> dict:
    scan = env.store.latest_scan("dataset", model_name=name, dataset_digest=digest)
    assert scan is not None, "the data checks ran on the resolved training data"
    return env.store.checks_of(scan["id"])


def test_dataset_inputs_with_readable_sources_are_checked_and_used_as_holdout(env, bundled, tmp_path) -> None:
    train, test = _split(bundled, tmp_path)
    model, features = _fit(train)
    version = register_external(env, model, features, name="outside", log_data=_log_inputs(train, test))
    assert env.scan("outside", version).success
    tags = env.version_tags("outside", version)
    assert tags["mlgate.verdict"] == "passed"
    assert tags["mlgate.lineage"] == f"dataset_input:{train}"
    data = _data_scan(env, "outside", tags["mlgate.dataset_digest"])
    assert {data["data_quality"].status, data["label_noise"].status} <= {"passed", "warned"}
    checks = _checks(env, "outside", version)
    assert checks["performance"].status == "passed", "the logged evaluation data is the holdout"
    keys = {f.key for c in checks.values() for f in c.findings}
    assert not keys & {"no_lineage", "training_data_not_retrievable", "lineage_unverified", "no_holdout"}


def test_a_poisoned_run_artifact_blocks_the_version_through_lineage(env, bundled, tmp_path) -> None:
    poisoned, _ = inject_label_noise(bundled, LABEL, 0.15, seed=3)
    path = tmp_path / "training_data.csv"
    poisoned.to_csv(path, index=False)
    model, features = _fit(path)

    def log() -> None:
        import mlflow

        mlflow.log_artifact(str(path), "data")

    version = register_external(env, model, features, name="outside", log_data=log)
    assert not env.scan("outside", version).success
    tags = env.version_tags("outside", version)
    assert tags["mlgate.verdict"] == "blocked"
    assert tags["mlgate.lineage"].startswith("run_artifact:runs:/") and tags["mlgate.lineage"].endswith(
        "data/training_data.csv"
    )
    assert _data_scan(env, "outside", tags["mlgate.dataset_digest"])["label_noise"].status == "failed"
    registry = _checks(env, "outside", version)["registry_validation"]
    assert "lineage_data_blocked" in {f.key for f in registry.findings}


def test_from_pandas_without_a_source_is_not_retrievable(env, bundled, tmp_path) -> None:
    train, test = _split(bundled, tmp_path)
    model, features = _fit(train)
    log = _log_inputs(train, test, with_source=False)
    version = register_external(env, model, features, name="outside", log_data=log)
    assert env.scan("outside", version).success, "a governance gap is medium: the version still passes"
    tags = env.version_tags("outside", version)
    assert tags["mlgate.verdict"] == "passed" and "mlgate.dataset_digest" not in tags
    checks = _checks(env, "outside", version)
    [gap] = [f for f in checks["registry_validation"].findings if f.key == "training_data_not_retrievable"]
    assert gap.severity.label == "medium"
    assert "keeps only a digest, schema and profile" in gap.evidence["reason"]
    for name in ("performance", "robustness", "membership_inference"):
        assert checks[name].status == "not_run", name
        assert checks[name].findings[0].severity.label == "medium", name


def test_a_source_changed_since_training_is_not_used(env, bundled, tmp_path) -> None:
    train, _ = _split(bundled, tmp_path)
    model, features = _fit(train)
    version = register_external(env, model, features, name="outside", log_data=_log_inputs(train))
    pd.read_csv(train).iloc[::-1].to_csv(train, index=False)  # rewritten after the run logged it
    assert env.scan("outside", version).success
    assert "mlgate.dataset_digest" not in env.version_tags("outside", version)
    [gap] = [
        f
        for f in _checks(env, "outside", version)["registry_validation"].findings
        if f.key == "training_data_not_retrievable"
    ]
    assert "no longer matches the digest logged at training time" in gap.evidence["reason"]


def test_training_data_without_a_holdout_leaves_performance_not_run(env, bundled, tmp_path) -> None:
    train, _ = _split(bundled, tmp_path)
    model, features = _fit(train)
    version = register_external(env, model, features, name="outside", log_data=_log_inputs(train))
    assert env.scan("outside", version).success
    checks = _checks(env, "outside", version)
    assert checks["performance"].status == "not_run"
    assert "no holdout was logged" in checks["performance"].findings[0].evidence["reason"]
    assert _data_scan(env, "outside", env.version_tags("outside", version)["mlgate.dataset_digest"])
