"""Overhead of mlgate's data-quality and label-noise checks against calling GX / cleanlab directly.

For each size (default 100k and 1M rows) it builds seeded synthetic tabular data: sklearn's bundled
breast_cancer resampled with 1% multiplicative jitter plus a text label column, then drafts a suite
from the clean frame and injects a few out-of-range values, a few nulls and ~5% label flips. It
times, best of N:

  (a) mlgate data quality: `execute_checks` + `data_quality_check` (the path the pipeline runs);
  (b) the same suite run directly through GX Core (ephemeral context, pandas datasource,
      whole-dataframe batch, `ValidationDefinition.run`, result_format COMPLETE);
  (c) mlgate label noise: `execute_checks` + `label_noise_check` on synthetic probabilities;
  (d) `cleanlab.filter.find_label_issues(labels, pred_probs, n_jobs=1)` on the same inputs;
  (c*) (c) with the change proposed for `label_noise.py` (noise rate from `estimate_joint` on the
      already computed confident joint instead of `num_label_issues`, which revalidates every
      label in Python), applied by patching `cleanlab.count.num_label_issues` for the run only.

Run from the repo root: `.venv/bin/python bench/bench_checks.py [--rows 100000 1000000] [--repeat 5]`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from checks.detectors.data_quality import draft_suite  # noqa: E402
from checks.gate import execute_checks  # noqa: E402
from checks.policy import Policy, parse_policy  # noqa: E402
from checks.stage_checks import data_quality_check, label_noise_check  # noqa: E402

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
    dirty.loc[rng.choice(rows, 3, replace=False), "worst area"] = -1.0  # out of range
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


# ---------------------------------------------------------------- the four contenders


def run_mlgate_data_quality(work: Workload, policy: Policy) -> int:
    """(a) Returns the number of findings; raises if the check did not complete."""
    subject = {"dataset": "bench", "rows": work.rows}
    fn = data_quality_check(work.dirty, LABEL, work.suite, policy, identity=IDENTITY, subject=subject)
    (outcome,) = execute_checks(
        [("data_quality", fn)], policy, model_name=None, identity=IDENTITY, subject=subject
    )
    if outcome.status in ("error", "timeout"):
        raise RuntimeError(f"data_quality {outcome.status}: {outcome.detail}")
    return len(outcome.findings)


def run_direct_gx(work: Workload) -> int:
    """(b) The same suite through GX Core directly; returns the number of failed expectations."""
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
    """(c) Returns the number of flagged rows; raises if the check did not complete."""
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
    """(d) Returns the number of flagged rows."""
    from cleanlab.filter import find_label_issues

    return int(find_label_issues(work.labels, work.probs, n_jobs=1).sum())


@contextlib.contextmanager
def proposed_noise_rate() -> Iterator[None]:
    """Temporarily make `num_label_issues(..., confident_joint=J, 'off_diagonal_custom')` skip its
    input revalidation: exactly the proposed label_noise.py change (estimate_joint on J)."""
    import cleanlab.count as count

    original = count.num_label_issues

    def fast(labels: np.ndarray, pred_probs: np.ndarray, *, confident_joint: np.ndarray, **_: Any) -> int:
        joint = count.estimate_joint(labels, pred_probs, confident_joint=confident_joint)
        return int(np.rint((1.0 - joint.trace()) * len(labels)))

    count.num_label_issues = fast
    try:
        yield
    finally:
        count.num_label_issues = original


def run_mlgate_label_noise_proposed(work: Workload, policy: Policy) -> int:
    """(c*) (c) with the proposed label_noise.py change."""
    with proposed_noise_rate():
        return run_mlgate_label_noise(work, policy)


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


def measure(name: str, rows: int, fn: Callable[[], int], repeat: int) -> Timing:
    """Warm up once (imports, GX's first context), then time `repeat` calls."""
    result = fn()
    runs, peaks = [], []
    for _ in range(repeat):
        gc.collect()
        can_reset = _reset_peak_rss()
        before = _status_kib("VmRSS")
        start = time.perf_counter()
        if fn() != result:
            raise RuntimeError(f"{name}: result changed between runs")
        runs.append(time.perf_counter() - start)
        peak = _status_kib("VmHWM")
        if can_reset and before is not None and peak is not None:
            peaks.append((peak - before) / 1024)
    return Timing(
        name,
        rows,
        min(runs),
        statistics.median(runs),
        runs,
        max(peaks) if peaks else None,
        result,
    )


def environment() -> dict[str, Any]:
    import cleanlab
    import great_expectations as gx
    import sklearn

    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0] if Path("/proc/meminfo").exists() else ""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory": meminfo.split(":", 1)[-1].strip(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "cleanlab": cleanlab.__version__,
        "great_expectations": gx.__version__,
    }


def ratio_row(label: str, mlgate: Timing, direct: Timing) -> str:
    ratio = mlgate.best_s / direct.best_s
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    return (
        f"| {label} | {mlgate.rows:,} | {mlgate.best_s:.3f} | {direct.best_s:.3f} | {ratio:.2f} | {verdict} |"
    )


def main() -> None:
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
    table = [
        "| comparison | rows | mlgate best (s) | direct best (s) | ratio | goal <= 1.2 |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for rows in args.rows:
        start = time.perf_counter()
        work = make_workload(rows, args.seed)
        print(
            f"\n{rows:,} rows: data built in {time.perf_counter() - start:.1f}s; "
            f"{len(work.suite['expectations'])} expectations; {int(work.flipped.sum()):,} labels flipped"
        )
        contenders: list[tuple[str, Callable[[], int]]] = [
            ("a_mlgate_data_quality", lambda w=work: run_mlgate_data_quality(w, policy)),
            ("b_direct_gx", lambda w=work: run_direct_gx(w)),
            ("c_mlgate_label_noise", lambda w=work: run_mlgate_label_noise(w, policy)),
            ("d_direct_cleanlab", lambda w=work: run_direct_cleanlab(w)),
            ("c*_mlgate_label_noise_proposed", lambda w=work: run_mlgate_label_noise_proposed(w, policy)),
        ]
        measured = {name: measure(name, rows, fn, args.repeat) for name, fn in contenders}
        for t in measured.values():
            peak = f"{t.peak_extra_mib:.0f} MiB" if t.peak_extra_mib is not None else "n/a"
            runs = ", ".join(f"{r:.3f}" for r in t.runs)
            print(
                f"  {t.name:32s} best {t.best_s:7.3f}s  median {t.median_s:7.3f}s  "
                f"peak +{peak:>8s}  result {t.result:,}  runs [{runs}]"
            )
        if measured["a_mlgate_data_quality"].result != measured["b_direct_gx"].result:
            print("  WARNING: mlgate findings != GX failed expectations")
        if len({measured[k].result for k in ("c_mlgate_label_noise", "d_direct_cleanlab")}) != 1:
            print("  WARNING: mlgate flagged rows != cleanlab flagged rows")
        table.append(ratio_row("data quality (a/b)", measured["a_mlgate_data_quality"], measured["b_direct_gx"]))
        table.append(
            ratio_row("label noise (c/d)", measured["c_mlgate_label_noise"], measured["d_direct_cleanlab"])
        )
        table.append(
            ratio_row(
                "label noise, proposed change (c*/d)",
                measured["c*_mlgate_label_noise_proposed"],
                measured["d_direct_cleanlab"],
            )
        )
        timings.extend(measured.values())
        del work
        gc.collect()

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS (ru_maxrss): {peak_mib:.0f} MiB; best of {args.repeat} runs\n")
    print("\n".join(table))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "environment": env,
                    "repeat": args.repeat,
                    "process_peak_rss_mib": round(peak_mib),
                    "timings": [asdict(t) for t in timings],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
