"""The check callables of each stage: fetch what a detector needs, call it, signal not_run.

Shared by the Dagster gate steps and the CLI (`scan-data`), so both run identical code.
Each returns a `CheckFn` (progress dict in, findings out) for `checks.runner.run_check`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from checks.detectors.artifact import scan_model_artifact
from checks.detectors.data_quality import baseline_contract, validate_suite
from checks.detectors.label_noise import TAXONOMY as NOISE_TAXONOMY
from checks.detectors.label_noise import find_label_noise
from checks.detectors.performance import TAXONOMY as PERFORMANCE_TAXONOMY
from checks.detectors.performance import compare_to_champion
from checks.detectors.registry import RegistryFacts, validate_registry_entry
from checks.findings import Finding, Severity, evaluation_finding
from checks.policy import Policy
from checks.runner import CheckFn, CheckNotRun


def data_quality_check(
    df: pd.DataFrame,
    label: str,
    suite: dict[str, Any] | None,
    policy: Policy,
    *,
    identity: str,
    subject: dict[str, Any],
) -> CheckFn:
    """The dataset's expectation suite when it has one, else the baseline contract."""
    config = policy.checks.data_quality

    def run(progress: dict[str, Any]) -> list[Finding]:
        if suite is None:
            progress["contract"] = "baseline"
            return baseline_contract(
                df, label, subject_identity=identity, min_rows=config.min_rows, subject=subject
            )
        progress["contract"] = suite.get("name")
        progress["expectations"] = len(suite["expectations"])
        return validate_suite(
            df,
            suite,
            subject_identity=identity,
            default_severity=config.default_expectation_severity,
            subject=subject,
        )

    return run


def label_noise_check(
    labels: np.ndarray,
    probabilities: np.ndarray,
    row_positions: np.ndarray,
    policy: Policy,
    *,
    identity: str,
    subject: dict[str, Any],
    features: pd.DataFrame | None = None,
    dropped_columns: list[str] | None = None,
) -> CheckFn:
    """cleanlab on the shared out-of-fold probabilities, with a kNN vote on `features` when given
    (the model's prepared feature frame); dropped ID columns are an info finding."""
    from checks.detectors.poisoning import feature_matrix

    config = policy.checks.label_noise

    def run(progress: dict[str, Any]) -> list[Finding]:
        progress["rows"] = len(labels)
        found = find_label_noise(
            labels,
            probabilities,
            subject_identity=identity,
            max_noise_rate=config.max_noise_rate,
            severity=config.severity,
            row_positions=row_positions,
            subject=subject,
            features=None if features is None else feature_matrix(features)[0],
        )
        if dropped_columns:
            found.append(
                Finding(
                    check="label_noise",
                    severity=Severity.INFO,
                    stage="data",
                    subject_identity=identity,
                    title="Identifier-like columns left out of the detection model: "
                    + ", ".join(dropped_columns),
                    key="dropped_columns",
                    subject=subject,
                    evidence={"columns": dropped_columns},
                    taxonomy=NOISE_TAXONOMY,
                    remediation="None needed unless these columns carry signal.",
                )
            )
        return found

    return run


def artifact_safety_check(
    artifact_dir: Path, policy: Policy, *, identity: str, subject: dict[str, Any]
) -> CheckFn:
    """The static scan of every file of the version (nothing is deserialised)."""
    scan_policy = policy.checks.artifact_safety.scan_policy()

    def run(progress: dict[str, Any]) -> list[Finding]:
        progress["artifact_dir"] = str(artifact_dir)
        return scan_model_artifact(artifact_dir, scan_policy, subject_identity=identity, subject=subject)

    return run


def dependency_check(
    artifact_dir: Path, advisories_dir: Path, policy: Policy, *, identity: str, subject: dict[str, Any]
) -> CheckFn:
    """Pins of the model's environment files against the local OSV database (never the network)."""
    from checks.advisories import open_for_scan
    from checks.detectors.dependencies import scan_dependencies

    def run(progress: dict[str, Any]) -> list[Finding]:
        database, problem = open_for_scan(advisories_dir)
        if database is not None:
            progress["advisory_database"] = database.info.source
        try:
            return scan_dependencies(
                artifact_dir,
                database,
                subject_identity=identity,
                subject=subject,
                database_problem=problem,
                stale_after_days=policy.checks.dependency_advisories.stale_after_days,
            )
        finally:
            if database is not None:
                database.close()

    return run


def registry_check(facts: Callable[[], RegistryFacts], *, identity: str, subject: dict[str, Any]) -> CheckFn:
    """Registry validation; `facts` is called inside the budget (resolving lineage can be slow)."""

    def run(progress: dict[str, Any]) -> list[Finding]:
        return validate_registry_entry(facts(), subject_identity=identity, subject=subject)

    return run


def performance_check(
    evaluation_file: Path, artifact_digest: str, policy: Policy, *, identity: str, subject: dict[str, Any]
) -> CheckFn:
    """Compare holdout metrics from the evaluation stage for exactly this artifact.

    A failed or stale evaluation raises (status error); no holdout is not_run with a medium
    finding. The champion version compared with is recorded in the check's coverage, so the
    deployment step can refuse when the alias has moved since.
    """
    config = policy.checks.performance

    def gap(key: str, title: str, remediation: str, **evidence: Any) -> Finding:
        return _evaluation_gap(
            "performance", key, title, remediation, identity, subject, PERFORMANCE_TAXONOMY, evidence
        )

    def run(progress: dict[str, Any]) -> list[Finding]:
        evaluation = json.loads(evaluation_file.read_text())
        if evaluation.get("artifact_digest") != artifact_digest:
            raise RuntimeError("the stored evaluation is of another artifact; rerun model_evaluation")
        if "error" in evaluation:
            raise RuntimeError(f"the model could not be evaluated: {evaluation['error']}")
        if evaluation.get("metrics") is None:
            raise CheckNotRun(
                gap(
                    "no_holdout",
                    "Holdout not retrievable; performance not checked",
                    "Train through mlgate, or log the training and evaluation data with the run "
                    "(dataset inputs with readable sources, or run artifacts).",
                    reason="; ".join(evaluation.get("notes", [])),
                )
            )
        progress["compared_with"] = evaluation.get("champion_version")
        champion = evaluation.get("champion")
        if champion is None and evaluation.get("champion_version"):
            return [
                gap(
                    "champion_unavailable",
                    f"Champion v{evaluation['champion_version']} could not be evaluated",
                    "Rescan the champion so it can be compared.",
                )
            ]
        return compare_to_champion(
            evaluation["metrics"],
            champion,
            metric=config.metric,
            tolerance=config.tolerance,
            subject_identity=identity,
            champion_version=evaluation.get("champion_version"),
            subject=subject,
        )

    return run


def _evaluation_gap(
    check: str,
    key: str,
    title: str,
    remediation: str,
    identity: str,
    subject: dict[str, Any],
    taxonomy: dict[str, str],
    evidence: dict[str, Any] | None = None,
) -> Finding:
    """A governance gap of an evaluation check (something to compare with is missing): medium."""
    return evaluation_finding(
        check, taxonomy, Severity.MEDIUM, key, title, identity, subject, evidence, remediation=remediation
    )


def _holdout_gap(check: str, identity: str, subject: dict[str, Any], taxonomy: dict[str, str]) -> CheckNotRun:
    return CheckNotRun(
        _evaluation_gap(
            check,
            "no_holdout",
            f"Holdout not retrievable; {check.replace('_', ' ')} not checked",
            "Train through mlgate, or log the training and evaluation data with the run.",
            identity,
            subject,
            taxonomy,
        )
    )


def _deadline(budget_seconds: float) -> float:
    """A cooperative deadline a little inside the runner's budget, so the detector stops itself."""
    import time

    return time.monotonic() + budget_seconds * 0.95


def robustness_check(
    load_model: Callable[[], Any],
    dataset: Any,
    policy: Policy,
    *,
    identity: str,
    subject: dict[str, Any],
    load_champion: Callable[[], Any] | None = None,
    champion_version: str | None = None,
) -> CheckFn:
    """Robust accuracy of the version (and, on the same rows and seed, of the champion)."""
    from checks.detectors.robustness import TAXONOMY, evaluate_robustness

    config = policy.checks.robustness

    def run(progress: dict[str, Any]) -> list[Finding]:
        if dataset is None or not dataset.holdout_rows:
            raise _holdout_gap("robustness", identity, subject, TAXONOMY)
        frame = dataset.frame()
        holdout, reference = frame.iloc[dataset.holdout_rows], frame.iloc[dataset.training_rows()]
        deadline = _deadline(config.timeout_seconds)
        kwargs = config.detector_kwargs()
        champion = None
        if load_champion is not None:
            try:
                # at most 40% of the budget: a slow champion is a comparison gap, and must never
                # leave the candidate's own attack without time (a timeout would block it)
                champion = evaluate_robustness(
                    load_champion(),
                    holdout,
                    dataset.label,
                    subject_identity=identity,
                    reference=reference,
                    deadline=_deadline(config.timeout_seconds * 0.4),
                    **kwargs,
                ).measurements
            except Exception as exc:  # noqa: BLE001 - no comparison is a gap: a medium finding
                progress["champion_error"] = f"{type(exc).__name__}: {exc}"[:300]
        result = evaluate_robustness(
            load_model(),
            holdout,
            dataset.label,
            subject_identity=identity,
            subject=subject,
            reference=reference,
            champion=champion,
            champion_version=champion_version,
            progress=progress,
            deadline=deadline,
            **kwargs,
        )
        if "champion_error" not in progress:
            return result.findings
        unavailable = _evaluation_gap(
            "robustness",
            "champion_unavailable",
            f"Champion v{champion_version} could not be attacked; robustness not compared with it",
            "Rescan the champion so it can be compared.",
            identity,
            subject,
            TAXONOMY,
            {"champion_version": champion_version, "error": progress["champion_error"]},
        )
        return [*result.findings, unavailable]

    return run


def membership_check(
    load_model: Callable[[], Any], dataset: Any, policy: Policy, *, identity: str, subject: dict[str, Any]
) -> CheckFn:
    """Membership-inference leakage of the version: training rows vs holdout rows."""
    from checks.detectors.privacy import TAXONOMY, evaluate_membership_inference

    config = policy.checks.membership_inference

    def run(progress: dict[str, Any]) -> list[Finding]:
        if dataset is None or not dataset.holdout_rows:
            raise _holdout_gap("membership_inference", identity, subject, TAXONOMY)
        frame = dataset.frame()
        result = evaluate_membership_inference(
            load_model(),
            frame.iloc[dataset.training_rows()],
            frame.iloc[dataset.holdout_rows],
            dataset.label,
            subject_identity=identity,
            subject=subject,
            progress=progress,
            deadline=_deadline(config.timeout_seconds),
            **config.detector_kwargs(),
        )
        return result.findings

    return run


def poisoning_check(
    features: pd.DataFrame,
    labels: np.ndarray,
    probabilities: np.ndarray,
    row_positions: np.ndarray,
    classes: list,
    policy: Policy,
    *,
    identity: str,
    subject: dict[str, Any],
) -> CheckFn:
    """Backdoors, conflicting duplicates, targeted flips and outliers, on the shared out-of-fold
    probabilities (the detection model is not refitted)."""
    import time

    from checks.detectors.poisoning import detect_poisoning, feature_matrix

    config = policy.checks.poisoning

    def run(progress: dict[str, Any]) -> list[Finding]:
        matrix, names = feature_matrix(features)
        stop_at = time.monotonic() + config.timeout_seconds * 0.95
        progress["rows"] = len(matrix)
        return detect_poisoning(
            matrix,
            labels,
            probabilities,
            subject_identity=identity,
            feature_names=names,
            classes=classes,
            row_positions=row_positions,
            subject=subject,
            config=config.detector_config(),
            progress=progress,
            deadline=lambda: time.monotonic() > stop_at,
        )

    return run
