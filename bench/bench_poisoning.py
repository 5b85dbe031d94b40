"""Poisoning detection quality and speed: attacks built here, scored against the rows they poisoned.

For each attack, poison rate (default 1%, 3%, 5% of rows) and seed (default 0..4; the methods were
tuned on seeds 100..109, never on these), it computes the detection model's out-of-fold
probabilities as mlgate does (`out_of_fold_probabilities`, estimator `auto` = the calibrated SVM
at these sizes), runs `detect_poisoning` with default thresholds, and scores the rows of the
finding the attack should produce (its key) against the poisoned rows.

Attacks (digits = scikit-learn's 8x8 digits, 1,797 rows; tabular = make_classification, 3,000 rows,
20 features, 4 classes, class_sep 2, flip_y 0, random_state = seed):
- backdoor_digits: pixels 0, 1, 8, 9 (top-left 2x2 corner) set to 16 on rows of other classes,
  relabelled 0. Fixed, documented trigger.
- backdoor_tabular: features 17, 18, 19 set to their column maximum (of the clean data), rows of
  other classes relabelled 0.
- backdoor_digits_in_range / backdoor_tabular_in_range (known limit): the same, but pixels
  27, 28, 35, 36 set to 8, or features 17-19 set to their column median: values inside the range.
- duplicates_digits: rate*n rows copied (jitter 1e-3 standard deviations) with another label;
  precision counts copies and their originals, recall counts copies.
- flip_digits: rate*n rows of class 3 relabelled 8 (at 5% that is half of class 3);
  flip_tabular: rows of class 1 relabelled 2.
- outliers_digits: a quarter of the features of rate*n rows set 10 standard deviations out.
Clean data: digits, breast_cancer, wine, iris, make_classification (class_sep 2) and, as a stress
row, make_classification with its defaults (class_sep 1, 1% random labels): the share of rows
named by findings at medium or above, and at low.
Label-noise quality is bench_detection_model.py's job.
Speed: make_classification with 10k and 100k rows x 50 features, 5 classes, synthetic
probabilities, a 1% backdoor planted; seconds per pattern, for the whole check, and for the
label-noise detector as the pipeline runs it (cleanlab plus the kNN vote on the features), best of 3.
Duplicate reach: at those sizes, the share of 500 copies found for copy jitters of 0.1%-3% of a
standard deviation per feature.

Run from the repo root: `.venv/bin/python bench/bench_poisoning.py --json bench/results_poisoning.json`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_detection_model import environment

from checks.detectors.label_noise import find_label_noise
from checks.detectors.poisoning import PATTERNS, detect_poisoning
from checks.detectors.tabular import out_of_fold_probabilities
from checks.findings import Finding, Severity

Data = tuple[np.ndarray, np.ndarray]
CORNER = [0, 1, 8, 9]
CENTRE = [27, 28, 35, 36]
TABULAR_TRIGGER = [17, 18, 19]


def digits(seed: int) -> Data:
    X, y = datasets.load_digits(return_X_y=True)
    return X.astype(float), y


def tabular(seed: int, class_sep: float = 2.0, flip_y: float = 0.0) -> Data:
    return datasets.make_classification(
        3000, 20, n_informative=8, n_classes=4, class_sep=class_sep, flip_y=flip_y, random_state=seed
    )


@dataclass
class Poisoned:
    X: np.ndarray
    y: np.ndarray
    truth: np.ndarray  # rows the attack poisoned
    expect: str  # key (prefix) of the finding that should name them
    precision_truth: np.ndarray | None = None  # rows that count as correct when named, if wider


def _rows(rng: np.random.Generator, pool: np.ndarray, rate: float, n: int) -> np.ndarray:
    return np.sort(rng.choice(pool, min(len(pool), round(rate * n)), replace=False))


def backdoor(X: np.ndarray, y: np.ndarray, rate: float, rng, columns, values, target: int = 0) -> Poisoned:
    rows = _rows(rng, np.flatnonzero(y != target), rate, len(y))
    X, y = X.copy(), y.copy()
    X[np.ix_(rows, columns)] = values
    y[rows] = target
    return Poisoned(X, y, rows, f"backdoor:{target}")


def duplicates(X: np.ndarray, y: np.ndarray, rate: float, rng) -> Poisoned:
    originals = _rows(rng, np.arange(len(y)), rate, len(y))
    k = int(y.max()) + 1
    copies = X[originals] + rng.normal(scale=1e-3 * X.std(axis=0), size=(len(originals), X.shape[1]))
    labels = (y[originals] + rng.integers(1, k, len(originals))) % k
    X2, y2 = np.vstack([X, copies]), np.concatenate([y, labels])
    added = np.arange(len(y), len(y2))
    return Poisoned(X2, y2, added, "conflicting_duplicates", np.concatenate([originals, added]))


def flip(X: np.ndarray, y: np.ndarray, rate: float, rng, source: int, given: int) -> Poisoned:
    rows = _rows(rng, np.flatnonzero(y == source), rate, len(y))
    y = y.copy()
    y[rows] = given
    return Poisoned(X, y, rows, f"targeted_flip:{source}->{given}")


def outliers(X: np.ndarray, y: np.ndarray, rate: float, rng) -> Poisoned:
    rows = _rows(rng, np.arange(len(y)), rate, len(y))
    X = X.copy()
    centre, spread = np.median(X, axis=0), np.maximum(X.std(axis=0), 1e-9)
    for row in rows:
        cols = rng.choice(X.shape[1], max(1, X.shape[1] // 4), replace=False)
        X[row, cols] = centre[cols] + 10 * spread[cols] * rng.choice([-1, 1], len(cols))
    return Poisoned(X, y, rows, "outliers")


def _max_of(X: np.ndarray) -> np.ndarray:
    return X[:, TABULAR_TRIGGER].max(axis=0)


def _median_of(X: np.ndarray) -> np.ndarray:
    return np.median(X[:, TABULAR_TRIGGER], axis=0)


AttackFn = Callable[[np.ndarray, np.ndarray, float, np.random.Generator], Poisoned]
ATTACKS: dict[str, tuple[Callable[[int], Data], AttackFn, bool]] = {
    # name: (dataset, attack, known limit)
    "backdoor_digits": (digits, lambda X, y, r, g: backdoor(X, y, r, g, CORNER, 16.0), False),
    "backdoor_tabular": (
        tabular,
        lambda X, y, r, g: backdoor(X, y, r, g, TABULAR_TRIGGER, _max_of(X)),
        False,
    ),
    "backdoor_digits_in_range": (digits, lambda X, y, r, g: backdoor(X, y, r, g, CENTRE, 8.0), True),
    "backdoor_tabular_in_range": (
        tabular,
        lambda X, y, r, g: backdoor(X, y, r, g, TABULAR_TRIGGER, _median_of(X)),
        True,
    ),
    "duplicates_digits": (digits, duplicates, False),
    "flip_digits": (digits, lambda X, y, r, g: flip(X, y, r, g, 3, 8), False),
    "flip_tabular": (tabular, lambda X, y, r, g: flip(X, y, r, g, 1, 2), False),
    "outliers_digits": (digits, outliers, False),
}
CLEAN: dict[str, Callable[[int], Data]] = {
    "digits": digits,
    "breast_cancer": lambda s: datasets.load_breast_cancer(return_X_y=True),
    "wine": lambda s: datasets.load_wine(return_X_y=True),
    "iris": lambda s: datasets.load_iris(return_X_y=True),
    "make_classification_sep2": tabular,
    "make_classification_default (stress)": lambda s: tabular(s, class_sep=1.0, flip_y=0.01),
}


def probabilities(X: np.ndarray, y: np.ndarray, estimator: str) -> np.ndarray:
    return out_of_fold_probabilities(pd.DataFrame(X), y, estimator=estimator)


def scan(X: np.ndarray, y: np.ndarray, P: np.ndarray | None, **kwargs: Any) -> list[Finding]:
    return detect_poisoning(X, y, P, subject_identity="bench", **kwargs)


def named_rows(findings: list[Finding], prefix: str) -> set[int]:
    return {r for f in findings if f.key.startswith(prefix) for r in f.evidence.get("rows", [])}


def attack_cell(name: str, rate: float, seed: int, estimator: str) -> dict[str, Any]:
    load, attack, limit = ATTACKS[name]
    X, y = load(seed)
    poisoned = attack(np.asarray(X, dtype=float), y, rate, np.random.default_rng(seed))
    P = probabilities(poisoned.X, poisoned.y, estimator)
    start = time.perf_counter()
    findings = scan(poisoned.X, poisoned.y, P)
    seconds = time.perf_counter() - start
    named = named_rows(findings, poisoned.expect)
    truth = set(poisoned.truth.tolist())
    counted = set(
        (poisoned.precision_truth if poisoned.precision_truth is not None else poisoned.truth).tolist()
    )
    expected = [f for f in findings if f.key.startswith(poisoned.expect)]
    blocking = named_rows([f for f in findings if f.severity >= Severity.MEDIUM], "")
    return {
        "attack": name,
        "known_limit": limit,
        "rate": rate,
        "seed": seed,
        "poisoned": len(truth),
        "named": len(named),
        "precision": len(named & counted) / len(named) if named else 0.0,
        "recall": len(named & truth) / len(truth),
        "severity": max((f.severity.label for f in expected), default="none", key=_rank),
        "keys": sorted(f.key for f in expected),
        "recall_any_medium_plus": len(blocking & truth) / len(truth),
        "other_rows_medium_plus": len(blocking - counted),
        "seconds": round(seconds, 3),
    }


def _rank(label: str) -> int:
    return -1 if label == "none" else int(Severity.parse(label))


def clean_cell(name: str, seed: int, estimator: str) -> dict[str, Any]:
    X, y = CLEAN[name](seed)
    X = np.asarray(X, dtype=float)
    findings = scan(X, y, probabilities(X, y, estimator))
    high = named_rows([f for f in findings if f.severity >= Severity.MEDIUM], "")
    low = named_rows([f for f in findings if f.severity < Severity.MEDIUM], "")
    return {
        "dataset": name,
        "seed": seed,
        "rows": len(y),
        "rate_medium_plus": len(high) / len(y),
        "rate_low": len(low) / len(y),
        "findings": sorted(
            f"{f.key} ({f.severity.label}, {len(f.evidence.get('rows', []))})" for f in findings
        ),
    }


def synthetic_probabilities(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Softmax of noisy logits centred on the true class (nothing trained)."""
    k = int(y.max()) + 1
    logits = rng.normal(size=(len(y), k))
    logits[np.arange(len(y)), y] += 3.0
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def timing(rows: int, repeat: int) -> dict[str, Any]:
    X, y = datasets.make_classification(rows, 50, n_informative=20, n_classes=5, random_state=0)
    rng = np.random.default_rng(0)
    poisoned = backdoor(X, y, 0.01, rng, [47, 48, 49], X[:, [47, 48, 49]].max(axis=0))
    P = synthetic_probabilities(poisoned.y, rng)
    out: dict[str, Any] = {"rows": rows, "features": 50}
    runs: dict[str, Callable[[], list[Finding]]] = {
        **{p: functools.partial(scan, poisoned.X, poisoned.y, P, patterns=(p,)) for p in PATTERNS},
        "all": functools.partial(scan, poisoned.X, poisoned.y, P, patterns=PATTERNS),
        "label_noise": functools.partial(
            find_label_noise, poisoned.y, P, subject_identity="bench", features=poisoned.X
        ),
    }
    for label, run in runs.items():
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            findings = run()
            best = min(best, time.perf_counter() - start)
        out[label] = round(best, 3)
        if label == "all":
            out["findings"] = sorted(
                f"{f.key} ({f.severity.label}, {len(f.evidence['rows'])})" for f in findings
            )
    return out


def duplicate_reach(rows: int, jitters: list[float]) -> list[dict[str, Any]]:
    """Recall of 500 jittered copies (given another label) among `rows` rows x 50 features: the
    candidate search is exhaustive only for small data (see duplicates._near_pairs)."""
    X, y = datasets.make_classification(rows, 50, n_informative=20, n_classes=5, random_state=0)
    out = []
    for jitter in jitters:
        rng = np.random.default_rng(1)
        originals = rng.choice(rows, 500, replace=False)
        copies = X[originals] + rng.normal(scale=jitter * X.std(axis=0), size=(500, 50))
        X2 = np.vstack([X, copies])
        y2 = np.concatenate([y, (y[originals] + 1) % 5])
        findings = scan(X2, y2, None, patterns=["conflicting_duplicates"])
        found = named_rows(findings, "conflicting_duplicates") & set(range(rows, rows + 500))
        out.append({"rows": rows, "jitter_std": jitter, "recall": len(found) / 500})
    return out


def summarise(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean precision/recall (and min recall) per attack and rate."""
    table = []
    for attack in dict.fromkeys(c["attack"] for c in cells):
        for rate in dict.fromkeys(c["rate"] for c in cells):
            group = [c for c in cells if c["attack"] == attack and c["rate"] == rate]
            if not group:
                continue
            table.append(
                {
                    "attack": attack,
                    "known_limit": group[0]["known_limit"],
                    "rate": rate,
                    "poisoned": int(np.mean([c["poisoned"] for c in group])),
                    "precision": round(float(np.mean([c["precision"] for c in group])), 3),
                    "recall": round(float(np.mean([c["recall"] for c in group])), 3),
                    "min_recall": round(min(c["recall"] for c in group), 3),
                    "min_precision": round(min(c["precision"] for c in group), 3),
                    "recall_any_medium_plus": round(
                        float(np.mean([c["recall_any_medium_plus"] for c in group])), 3
                    ),
                    "severities": sorted({c["severity"] for c in group}),
                    "other_rows_medium_plus": int(sum(c["other_rows_medium_plus"] for c in group)),
                    "seconds": round(float(np.mean([c["seconds"] for c in group])), 3),
                }
            )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.01, 0.03, 0.05])
    parser.add_argument("--attacks", nargs="+", default=list(ATTACKS))
    parser.add_argument("--estimator", default="auto", help="detection-model estimator for the attacks")
    parser.add_argument("--timing-rows", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], choices=["attacks", "clean", "timing"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    result: dict[str, Any] = {"environment": environment(), "args": {**vars(args), "json": str(args.json)}}
    result["environment"]["loadavg_before"] = os.getloadavg()
    if "attacks" not in args.skip:
        cells = [
            attack_cell(a, r, s, args.estimator) for a in args.attacks for r in args.rates for s in args.seeds
        ]
        result["attack_cells"] = cells
        result["attacks"] = summarise(cells)
        _print("attacks", result["attacks"])
    if "clean" not in args.skip:
        result["clean"] = [clean_cell(name, s, args.estimator) for name in CLEAN for s in args.seeds]
        _print("clean", result["clean"])
    if "timing" not in args.skip:
        result["timing"] = [timing(rows, args.repeat) for rows in args.timing_rows]
        _print("timing", result["timing"])
        jitters = [0.001, 0.003, 0.01, 0.03]
        result["duplicate_reach"] = [c for rows in args.timing_rows for c in duplicate_reach(rows, jitters)]
        _print("duplicate reach", result["duplicate_reach"])
    result["environment"]["loadavg_after"] = os.getloadavg()
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=_plain) + "\n")
    print(f"done in {result['seconds']} s", file=sys.stderr)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return asdict(value) if hasattr(value, "__dataclass_fields__") else str(value)


def _print(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n## {title}")
    for row in rows:
        print(json.dumps(row, default=_plain))


if __name__ == "__main__":
    main()
