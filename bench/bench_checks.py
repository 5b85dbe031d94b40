"""Overhead of mlgate's data-quality and label-noise checks against calling GX / cleanlab directly.

For each size (default 100k and 1M rows) it builds seeded synthetic tabular data: sklearn's bundled
breast_cancer resampled with 1% multiplicative jitter plus a text label column, then drafts a suite
from the clean frame and injects a few out-of-range values, a few nulls and ~5% label flips. It
times, best of N interleaved rounds after one warm-up call each:

  - data quality, mlgate: `execute_checks` + `data_quality_check` (the path the pipeline runs),
    against the same suite run directly through GX Core (ephemeral context, pandas datasource,
    whole-dataframe batch, `ValidationDefinition.run`, result_format COMPLETE);
  - label noise, mlgate: `execute_checks` + `label_noise_check` on synthetic probabilities,
    against `cleanlab.filter.find_label_issues(labels, pred_probs, n_jobs=1)` on the same inputs.

Each pair must give the same answer (findings = failed expectations; flagged rows = flagged rows);
the table shows both counts and the script exits non-zero when they differ.

Run from the repo root: `.venv/bin/python bench/bench_checks.py [--rows 100000 1000000] [--repeat 5]`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from machine import machine

from checks.detectors.data_quality import draft_suite
from checks.gate import execute_checks
from checks.policy import Policy, parse_policy
from checks.stage_checks import data_quality_check, label_noise_check

LABEL = "diagnosis"
IDENTITY = "bench/breast_cancer_synthetic"
GOAL_RATIO = 1.2
FLIP_RATE = 0.05
POLICY_YAML = """
checks:
  data_quality: {timeout_seconds: 3600}
  label_noise: {timeout_seconds: 3600, max_noise_rate: 0.05}
"""


# ---------------------------------------------------------------- data


@dataclass
class Workload:
    """One size's inputs: clean frame (for the suite), dirty frame, labels and probabilities."""

    rows: int
    clean: pd.DataFrame
    dirty: pd.DataFrame
    suite: dict[str, Any]
    labels: np.ndarray  # noisy encoded labels, 0 = benign, 1 = malignant
    probs: np.ndarray
    flipped: np.ndarray  # bool mask of flipped labels


def make_workload(rows: int, seed: int = 0) -> Workload:
    """Seeded synthetic data of `rows` rows; findings exist by construction."""
    from sklearn.datasets import load_breast_cancer

    rng = np.random.default_rng(seed)
    source = load_breast_cancer(as_frame=True)
    pick = rng.integers(0, len(source.data), rows)
    features = source.data.to_numpy()[pick] * (1.0 + rng.normal(0.0, 0.01, (rows, source.data.shape[1])))
    true_codes = source.target.to_numpy()[pick]
    names = np.array(["malignant", "benign"])  # sklearn: target 0 = malignant, 1 = benign
    clean = pd.DataFrame(features, columns=[str(c) for c in source.data.columns])
    clean[LABEL] = names[true_codes]
    suite = draft_suite(clean, LABEL, "bench")

    dirty = clean.copy()
    dirty.loc[rng.choice(rows, 5, replace=False), "mean radius"] = 1e4  # out of range
    dirty.loc[rng.choice(rows, 3, replace=False), "worst area"] = -1e5  # out of range
    dirty.loc[rng.choice(rows, 2, replace=False), "mean texture"] = np.nan  # null in a non-null column
    flipped = rng.random(rows) < FLIP_RATE
    noisy_codes = np.where(flipped, 1 - true_codes, true_codes)
    dirty[LABEL] = names[noisy_codes]

    # Synthetic out-of-fold probabilities: softmax of noisy logits centred on the TRUE class, so
    # the flipped rows disagree with confident predictions (no model training at 1M rows).
    logits = rng.normal(0.0, 1.0, (rows, 2))
    logits[np.arange(rows), true_codes] += 3.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = (noisy_codes == 0).astype(np.int64)  # encode as mlgate's prepare() does: sorted names
    probs = probs[:, [1, 0]]  # column order benign, malignant to match those codes
    return Workload(rows, clean, dirty, suite, labels, probs, flipped)


# ---------------------------------------------------------------- the contenders


def run_mlgate_data_quality(work: Workload, policy: Policy) -> int:
    """mlgate's data-quality check; returns the number of findings, raises if it did not complete."""
    subject = {"dataset": "bench", "rows": work.rows}
    fn = data_quality_check(work.dirty, LABEL, work.suite, policy, identity=IDENTITY, subject=subject)
    (outcome,) = execute_checks(
        [("data_quality", fn)], policy, model_name=None, identity=IDENTITY, subject=subject
    )
    if outcome.status in ("error", "timeout"):
        raise RuntimeError(f"data_quality {outcome.status}: {outcome.detail}")
    return len(outcome.findings)


def run_direct_gx(work: Workload) -> int:
    """The same suite through GX Core directly; returns the number of failed expectations."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # as mlgate does
    batch = (
        context.data_sources.add_pandas("bench")
        .add_dataframe_asset("data")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(
        gx.ExpectationSuite(name=work.suite["name"], expectations=work.suite["expectations"])
    )
    if len(suite.expectations) != len(work.suite["expectations"]):
        raise RuntimeError("GX dropped expectations from the suite")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="bench", data=batch, suite=suite)
    )
    result = definition.run(
        batch_parameters={"dataframe": work.dirty}, result_format={"result_format": "COMPLETE"}
    )
    return sum(not r.success for r in result.results)


def run_mlgate_label_noise(work: Workload, policy: Policy) -> int:
    """mlgate's label-noise check; returns the number of flagged rows, raises if it did not complete."""
    subject = {"dataset": "bench", "rows": work.rows}
    fn = label_noise_check(
        work.labels, work.probs, np.arange(work.rows), policy, identity=IDENTITY, subject=subject
    )
    (outcome,) = execute_checks(
        [("label_noise", fn)], policy, model_name=None, identity=IDENTITY, subject=subject
    )
    if outcome.status in ("error", "timeout"):
        raise RuntimeError(f"label_noise {outcome.status}: {outcome.detail}")
    return sum(f.evidence.get("flagged", 0) for f in outcome.findings)


def run_direct_cleanlab(work: Workload) -> int:
    """cleanlab directly; returns the number of flagged rows."""
    from cleanlab.filter import find_label_issues

    return int(find_label_issues(work.labels, work.probs, n_jobs=1).sum())


# ---------------------------------------------------------------- measurement


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False when not permitted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Timing:
    name: str
    rows: int
    best_s: float
    median_s: float
    runs: list[float]
    peak_extra_mib: float | None  # peak RSS above the RSS before the call (max over runs)
    result: int  # findings / failed expectations / flagged rows, for a same-answer check


def _timed_call(fn: Callable[[], int]) -> tuple[float, float | None, int]:
    """One call: (seconds, peak RSS above the starting RSS in MiB or None, result)."""
    gc.collect()
    can_reset = _reset_peak_rss()
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    extra = (peak - before) / 1024 if can_reset and before is not None and peak is not None else None
    return seconds, extra, result


def measure(contenders: dict[str, Callable[[], int]], rows: int, repeat: int) -> dict[str, Timing]:
    """Warm each contender up once (imports, GX's first context), then time `repeat` rounds.

    Rounds are interleaved (a, b, ..., a, b, ...) so that drift on the machine hits every
    contender alike; each call must return the same result as its warm-up.
    """
    expected = {name: fn() for name, fn in contenders.items()}
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    peaks: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, fn in contenders.items():
            seconds, extra, result = _timed_call(fn)
            if result != expected[name]:
                raise RuntimeError(f"{name}: result changed between runs ({expected[name]} -> {result})")
            runs[name].append(seconds)
            if extra is not None:
                peaks[name].append(extra)
    return {
        name: Timing(
            name,
            rows,
            min(runs[name]),
            statistics.median(runs[name]),
            runs[name],
            max(peaks[name]) if peaks[name] else None,
            expected[name],
        )
        for name in contenders
    }


def environment() -> dict[str, Any]:
    import cleanlab
    import great_expectations as gx
    import sklearn

    return machine(np, pd, sklearn, cleanlab, gx)


# (comparison, mlgate contender, direct contender): the rows of the summary table, per size
COMPARISONS = [
    ("data quality", "mlgate_data_quality", "gx_direct"),
    ("label noise", "mlgate_label_noise", "cleanlab_direct"),
]
TABLE_HEAD = [
    "| comparison | rows | mlgate best (s) | direct best (s) | ratio | goal <= 1.2 "
    "| mlgate median (s) | direct median (s) | mlgate peak +MiB | direct peak +MiB "
    "| answer mlgate / direct |",
    "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
]


def _mib(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "n/a"


def ratio_row(label: str, mlgate: Timing, direct: Timing) -> str:
    """One markdown row: best-of-N times, their ratio and the goal verdict, medians, peak RSS and
    both answers (they must be equal)."""
    ratio = mlgate.best_s / direct.best_s
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    answers = f"{mlgate.result:,} / {direct.result:,}" + ("" if mlgate.result == direct.result else " DIFFER")
    return (
        f"| {label} | {mlgate.rows:,} | {mlgate.best_s:.3f} | {direct.best_s:.3f} | {ratio:.3f} | {verdict} "
        f"| {mlgate.median_s:.3f} | {direct.median_s:.3f} "
        f"| {_mib(mlgate.peak_extra_mib)} | {_mib(direct.peak_extra_mib)} | {answers} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per contender (best of N)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write all timings here")
    args = parser.parse_args()

    policy = parse_policy(POLICY_YAML, "bench policy")
    env = environment()
    print(json.dumps(env, indent=2))
    timings: list[Timing] = []
    table = list(TABLE_HEAD)
    differ = []
    for rows in args.rows:
        start = time.perf_counter()
        work = make_workload(rows, args.seed)
        print(
            f"\n{rows:,} rows: data built in {time.perf_counter() - start:.1f}s; "
            f"{len(work.suite['expectations'])} expectations; {int(work.flipped.sum()):,} labels flipped"
        )
        measured = measure(
            {
                "mlgate_data_quality": lambda w=work: run_mlgate_data_quality(w, policy),
                "gx_direct": lambda w=work: run_direct_gx(w),
                "mlgate_label_noise": lambda w=work: run_mlgate_label_noise(w, policy),
                "cleanlab_direct": lambda w=work: run_direct_cleanlab(w),
            },
            rows,
            args.repeat,
        )
        for t in measured.values():
            runs = ", ".join(f"{r:.3f}" for r in t.runs)
            print(
                f"  {t.name:20s} best {t.best_s:7.3f}s  median {t.median_s:7.3f}s  "
                f"peak +{_mib(t.peak_extra_mib):>5s} MiB  result {t.result:,}  runs [{runs}]"
            )
        for label, mlgate, direct in COMPARISONS:
            same = measured[mlgate].result == measured[direct].result
            print(
                f"  {label}: mlgate {measured[mlgate].result:,}, direct {measured[direct].result:,} -> "
                + ("same answer" if same else "ANSWERS DIFFER")
            )
            if not same:
                differ.append(f"{label} at {rows:,} rows")
            table.append(ratio_row(label, measured[mlgate], measured[direct]))
        timings.extend(measured.values())
        del work, measured
        gc.collect()

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS (ru_maxrss): {peak_mib:.0f} MiB; best of {args.repeat} runs\n")
    print("\n".join(table))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "environment": env,
                    "args": {"rows": args.rows, "repeat": args.repeat, "seed": args.seed},
                    "process_peak_rss_mib": round(peak_mib),
                    "timings": [asdict(t) for t in timings],
                    "table": table,
                    "answers_differ": differ,
                },
                indent=2,
            )
        )
    if differ:
        print(f"\nERROR: mlgate and the direct call disagree: {'; '.join(differ)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
