"""Tabular preparation and the detection model: labels, features, out-of-fold probabilities.

Pure scikit-learn; shared by the label-noise check, the retrain and `scan-data`, so the expensive
cross-validated probabilities are computed once and passed to every detector that needs them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MAX_CATEGORIES = 30  # text columns with more distinct values are not one-hot encoded
MAX_CLASSES = 50  # more distinct numeric labels than this reads as a continuous target
ID_UNIQUE_RATIO = 0.95  # a column this unique, text or integer, is treated as an identifier


class DataError(ValueError):
    """Data that cannot be scanned as asked (e.g. a continuous target); the message says why."""


@dataclass
class PreparedData:
    features: pd.DataFrame
    labels: np.ndarray  # encoded 0..k-1, only for rows with a label
    classes: list  # class value for each code
    labelled_rows: np.ndarray  # positions (file order) of rows that have a label
    id_columns: list[str]
    dropped_text_columns: list[str]


def check_classification_target(series: pd.Series, label: str) -> None:
    """Raise DataError for a continuous target: only classification is supported for now."""
    values = series.dropna()
    if values.empty:
        return
    if pd.api.types.is_float_dtype(values) and not np.all(np.mod(values, 1) == 0):
        raise DataError(
            f"label column {label!r} looks continuous (non-integer floats); "
            "only classification targets are supported"
        )
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > MAX_CLASSES:
        raise DataError(
            f"label column {label!r} has {values.nunique()} distinct numeric values; "
            "only classification targets are supported"
        )


def _is_id_like(column: pd.Series) -> bool:
    values = column.dropna()
    if len(values) < 20:
        return False
    integer_or_text = pd.api.types.is_integer_dtype(values) or not pd.api.types.is_numeric_dtype(values)
    return integer_or_text and values.nunique() / len(values) >= ID_UNIQUE_RATIO


def prepare(df: pd.DataFrame, label: str) -> PreparedData:
    """Split features from the label, encode labels, and drop identifier and free-text columns."""
    if label not in df.columns:
        raise DataError(f"label column {label!r} not found (columns: {', '.join(map(str, df.columns))})")
    check_classification_target(df[label], label)
    labelled = df[label].notna().to_numpy()
    classes, codes = np.unique(
        df.loc[labelled, label].astype(str if df[label].dtype == object else df[label].dtype),
        return_inverse=True,
    )
    features = df.drop(columns=[label])
    id_columns = [c for c in features.columns if _is_id_like(features[c])]
    features = features.drop(columns=id_columns)
    text = [
        c
        for c in features.columns
        if not pd.api.types.is_numeric_dtype(features[c]) and not pd.api.types.is_bool_dtype(features[c])
    ]
    dropped = [c for c in text if features[c].nunique() > MAX_CATEGORIES]
    features = features.drop(columns=dropped)
    return PreparedData(
        features.loc[labelled].reset_index(drop=True),
        codes,
        classes.tolist(),
        np.flatnonzero(labelled),
        id_columns,
        dropped,
    )


def preprocessor(features: pd.DataFrame) -> ColumnTransformer:
    """Impute and scale numbers; impute and one-hot encode low-cardinality text."""
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    categorical = [c for c in features.columns if c not in numeric]
    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
                numeric,
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent", keep_empty_features=True),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ],
        sparse_threshold=0,
    )


def make_estimator(name: str, seed: int = 0) -> ClassifierMixin:
    """The named scikit-learn classifier with mlgate's defaults (a table, not an if-chain)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    table = {
        "logistic_regression": lambda: LogisticRegression(max_iter=2000),
        "random_forest": lambda: RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1),
        "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(random_state=seed),
        "knn": lambda: KNeighborsClassifier(n_neighbors=10),
        # RBF SVM with temperature-scaled probabilities (5-fold calibration inside each training
        # fold; needs scikit-learn >= 1.8). Best label-noise detection in bench/RESULTS.md, but
        # kernel cost grows ~quadratically with rows (about 40 s of out-of-fold work at 10k rows).
        "svc": lambda: CalibratedClassifierCV(SVC(), method="temperature"),
    }
    if name not in table:
        raise DataError(f"unknown estimator {name!r} (expected one of: {', '.join(table)})")
    return table[name]()


def make_pipeline_for(features: pd.DataFrame, estimator: str, seed: int = 0) -> Pipeline:
    return Pipeline([("prep", preprocessor(features)), ("model", make_estimator(estimator, seed))])


def fold_count(labels: np.ndarray, max_folds: int = 5) -> int:
    """min(max_folds, smallest class count): stratified folds need every class in every fold."""
    return int(min(max_folds, np.bincount(labels).min()))


def detection_estimator(name: str, rows: int, kernel_max_rows: int = 10_000) -> str:
    """Resolve `auto`: the calibrated RBF SVM (best label-noise F1 in bench/RESULTS.md) up to
    `kernel_max_rows` rows, where its roughly quadratic cost stays under a minute here; beyond
    that, logistic regression, which scales linearly."""
    if name != "auto":
        return name
    return "svc" if rows <= kernel_max_rows else "logistic_regression"


def out_of_fold_probabilities(
    features: pd.DataFrame,
    labels: np.ndarray,
    *,
    estimator: str,
    max_folds: int = 5,
    seed: int = 0,
    kernel_max_rows: int = 10_000,
) -> np.ndarray:
    """Class probabilities for every row from a model that never saw that row (stratified K-fold).

    `estimator` names an entry of `make_estimator`'s table, or `auto` (see detection_estimator).
    Raises DataError when a class has fewer than two rows (no fold split is possible).
    """
    estimator = detection_estimator(estimator, len(labels), kernel_max_rows)
    if len(np.unique(labels)) < 2:
        raise DataError("need at least two classes to estimate label noise")
    folds = fold_count(labels, max_folds)
    if folds < 2:
        raise DataError("a class has a single row; need at least two per class for cross-validation")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(
        make_pipeline_for(features, estimator, seed), features, labels, cv=cv, method="predict_proba"
    )
