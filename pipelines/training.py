"""Fitting and scoring the production estimator (shared by the retrain and the evaluation stage)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.pipeline import Pipeline

from checks.detectors.tabular import make_pipeline_for, prepare


def fit_model(train: pd.DataFrame, label: str, estimator: str, seed: int = 0) -> Pipeline:
    """Fit the named estimator behind mlgate's standard preprocessing on the labelled rows.

    Identifier and free-text columns are left out, as in the detection model; the fitted
    column transformer ignores them at prediction time.
    """
    prepared = prepare(train, label)
    targets = np.asarray(prepared.classes, dtype=object)[prepared.labels].astype(str)
    return make_pipeline_for(prepared.features, estimator, seed).fit(prepared.features, targets)


def evaluate(model, holdout: pd.DataFrame, label: str) -> dict[str, float]:
    """Holdout accuracy, balanced accuracy and macro F1 (labels compared as strings)."""
    labelled = holdout[holdout[label].notna()]
    truth = labelled[label].astype(str).to_numpy()
    predicted = np.asarray(model.predict(labelled.drop(columns=[label]))).astype(str)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
        "f1_macro": float(f1_score(truth, predicted, average="macro")),
    }
