"""Benchmark the model-stage attack checks: evasion robustness and membership inference.

Two parts:

1. **Scale**: seconds per check at N rows x F features (synthetic ``make_classification``, 80/20
   stratified split as in the retrain), for mlgate's ``logistic_regression`` and ``random_forest``
   pipelines. Goal: each check <= 10 s at 100k x 50. Model fitting is timed apart, not counted.
2. **Controls**: attack figures and verdicts at the detectors' defaults on small real and
   synthetic datasets, for regularised, default and overfit models, on split seeds other than
   the ones the defaults were chosen on (0 and 5).
3. **Built controls**: the brittle and robust constructions of the tests, on other seeds.

    .venv/bin/python bench/bench_model_attacks.py --json bench/results_model_attacks.json
    .venv/bin/python bench/bench_model_attacks.py --parts built_controls --json FILE  # only that part
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from machine import machine
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from checks.detectors.privacy import evaluate_membership_inference
from checks.detectors.robustness import evaluate_robustness
from checks.detectors.tabular import make_pipeline_for, preprocessor
from checks.findings import Severity

LABEL = "label"
GOAL_SECONDS = 10.0
PARTS = ("scale", "controls", "built_controls")


def split(X: np.ndarray | pd.DataFrame, y: np.ndarray, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.DataFrame(X).copy()
    df.columns = [str(c) for c in df.columns]
    df[LABEL] = np.asarray(y).astype(str)
    return train_test_split(df, test_size=0.2, random_state=seed, stratify=df[LABEL])


def fit(model: Pipeline, train: pd.DataFrame) -> Pipeline:
    return model.fit(train.drop(columns=[LABEL]), train[LABEL])


def run_checks(model: Any, train: pd.DataFrame, holdout: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """Both checks at their defaults: wall and CPU seconds, and the figures the check metadata shows.

    CPU seconds are reported too because the machine is shared: wall time includes waiting for a core.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    robust = evaluate_robustness(model, holdout, LABEL, subject_identity="bench", reference=train, seed=seed)
    middle, cpu_middle = time.perf_counter(), time.process_time()
    private = evaluate_membership_inference(model, train, holdout, LABEL, subject_identity="bench", seed=seed)
    ended, cpu_ended = time.perf_counter(), time.process_time()

    def flagged(findings: list) -> list[str]:
        return [f"{f.key}:{f.severity.label}" for f in findings if f.severity >= Severity.MEDIUM]

    r, p = robust.measurements, private.measurements
    return {
        "robustness_seconds": round(middle - started, 3),
        "membership_seconds": round(ended - middle, 3),
        "robustness_cpu_seconds": round(cpu_middle - cpu_started, 3),
        "membership_cpu_seconds": round(cpu_ended - cpu_middle, 3),
        "robustness": {
            k: r[k]
            for k in (
                "sample_size",
                "clean_accuracy",
                "robust_accuracy",
                "robust_accuracy_ci95",
                "accuracy_drop",
                "broken_by",
                "queries",
            )
        },
        "robustness_flags": flagged(robust.findings),
        "membership": {
            k: p[k]
            for k in (
                "member_sample_size",
                "attack_auc",
                "attack_auc_ci95",
                "advantage",
                "tpr_at_1pct_fpr",
                "generalization_gap",
            )
        },
        "membership_flags": flagged(private.findings),
    }


# -- scale ----------------------------------------------------------------------------------------------


def scale(rows: list[int], features: int, repeat: int) -> list[dict[str, Any]]:
    out = []
    for n in rows:
        X, y = make_classification(
            n, features, n_informative=10, n_redundant=10, flip_y=0.05, class_sep=1.0, random_state=7
        )
        train, holdout = split(pd.DataFrame(X, columns=[f"x{i}" for i in range(features)]), y, seed=7)
        for name in ("logistic_regression", "random_forest"):
            started = time.perf_counter()
            model = make_pipeline_for(train.drop(columns=[LABEL]), name, seed=0)
            if name == "random_forest":
                model.set_params(model__n_jobs=2)  # fit on both cores; checks run with n_jobs=1
            fit(model, train)
            if name == "random_forest":
                model.set_params(model__n_jobs=1)
            fit_seconds = round(time.perf_counter() - started, 1)
            runs = [run_checks(model, train, holdout) for _ in range(repeat)]
            row = {"rows": n, "features": features, "model": name, "fit_seconds": fit_seconds, **runs[0]}
            for key in (
                "robustness_seconds",
                "membership_seconds",
                "robustness_cpu_seconds",
                "membership_cpu_seconds",
            ):
                times = [r[key] for r in runs]
                row[key] = {"best": min(times), "median": statistics.median(times), "all": times}
            out.append(row)
            print(json.dumps(_brief(row)), file=sys.stderr, flush=True)
    return out


# -- controls -------------------------------------------------------------------------------------------


def _datasets() -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    data = {}
    for name, loader in (("breast_cancer", load_breast_cancer), ("wine", load_wine), ("digits", load_digits)):
        bunch = loader(as_frame=True)
        data[name] = (bunch.data, bunch.target.to_numpy())
    X, y = make_classification(3000, 20, n_informative=5, flip_y=0.2, random_state=11)
    data["synthetic_noisy"] = (pd.DataFrame(X), y)
    X, y = make_classification(3000, 20, n_informative=10, flip_y=0.01, class_sep=1.5, random_state=12)
    data["synthetic_clean"] = (pd.DataFrame(X), y)
    return data


def _with_prep(estimator: Any) -> Callable[[pd.DataFrame], Pipeline]:
    return lambda features: Pipeline([("prep", preprocessor(features)), ("model", estimator)])


MODELS: dict[str, Callable[[pd.DataFrame], Pipeline]] = {
    "logistic_regression_C0.1": _with_prep(LogisticRegression(C=0.1, max_iter=5000)),
    "logistic_regression": lambda f: make_pipeline_for(f, "logistic_regression"),
    "random_forest_leaf5": _with_prep(
        RandomForestClassifier(200, min_samples_leaf=5, random_state=0, n_jobs=1)
    ),
    "random_forest": lambda f: make_pipeline_for(f, "random_forest"),
    "decision_tree": _with_prep(DecisionTreeClassifier(random_state=0)),
}


def controls(seeds: list[int]) -> list[dict[str, Any]]:
    out = []
    for dataset, (X, y) in _datasets().items():
        for seed in seeds:
            train, holdout = split(X, y, seed)
            for name, build in MODELS.items():
                out.append(_control_row(dataset, seed, name, build, train, holdout))
    return out


def _control_row(
    dataset: str,
    seed: int,
    name: str,
    build: Callable[[pd.DataFrame], Pipeline],
    train: pd.DataFrame,
    holdout: pd.DataFrame,
) -> dict[str, Any]:
    """Fit one control model and run both checks on it (printing a one-line summary)."""
    model = fit(build(train.drop(columns=[LABEL])), train)
    row = {"dataset": dataset, "seed": seed, "model": name, "train_rows": len(train)}
    row.update(run_checks(model, train, holdout, seed=seed))
    print(json.dumps(_brief(row)), file=sys.stderr, flush=True)
    return row


def _built_controls(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The brittle and robust constructions of tests/test_robustness_privacy.py, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 2000)
    base = rng.normal(size=2000)
    cancelling = np.column_stack([base, base + np.where(y == 1, 0.05, -0.05), rng.normal(size=(2000, 2))])
    stripes = rng.random((2000, 3))
    separated = rng.normal(size=(2000, 4)) + np.where(y[:, None] == 1, 3.0, -3.0)
    return {
        "cancelling": (cancelling, y),
        "stripes": (stripes, (np.floor(stripes[:, 0] * 20) % 2).astype(int)),
        "separated": (separated, y),
    }


BUILT: dict[str, tuple[str, Callable[[pd.DataFrame], Pipeline]]] = {
    "cancelling/logistic_regression_C1e4 (brittle)": (
        "cancelling",
        _with_prep(LogisticRegression(C=1e4, max_iter=5000)),
    ),
    "stripes/decision_tree (brittle)": ("stripes", _with_prep(DecisionTreeClassifier(random_state=0))),
    "separated/logistic_regression_C0.1 (robust)": (
        "separated",
        _with_prep(LogisticRegression(C=0.1, max_iter=5000)),
    ),
}


def built_controls(seeds: list[int]) -> list[dict[str, Any]]:
    out = []
    for seed in seeds:
        data = _built_controls(seed)
        for name, (dataset, build) in BUILT.items():
            train, holdout = split(*data[dataset], seed)
            out.append(_control_row(dataset, seed, name, build, train, holdout))
    return out


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("rows", "dataset", "seed", "model", "fit_seconds", "robustness_seconds", "membership_seconds")
    brief = {k: row[k] for k in keep if k in row}
    brief["robust_accuracy"] = row["robustness"]["robust_accuracy"]
    brief["attack_auc"] = row["membership"]["attack_auc"]
    brief["flags"] = row["robustness_flags"] + row["membership_flags"]
    return brief


def environment() -> dict[str, Any]:
    return machine(np, pd, sklearn)


def timed_part(run: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """One part's rows with when it ran and the machine load around it (2 shared cores)."""
    started = time.time()
    before = os.getloadavg()  # 1, 5, 15 minutes
    rows = run()
    return {
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "load_average_before": before,
        "load_average_after": os.getloadavg(),
        "wall_seconds": round(time.time() - started, 1),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="control split seeds")
    parser.add_argument("--json", type=Path, help="write here; parts not run are kept from the file")
    args = parser.parse_args()
    runners = {
        "scale": lambda: scale(args.rows, args.features, args.repeat),
        "controls": lambda: controls(args.seeds),
        "built_controls": lambda: built_controls(args.seeds),
    }
    result: dict[str, Any] = {}
    if args.json and args.json.exists():
        result = json.loads(args.json.read_text())
    result.update(environment=environment(), goal_seconds=GOAL_SECONDS)
    for part in args.parts:
        result[part] = timed_part(runners[part])
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
