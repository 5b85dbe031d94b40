"""Privacy leakage: a membership-inference attack on the model itself, plus its generalisation gap.

Membership inference (OWASP ML04, MITRE ATLAS AML.T0024.000): an attacker who can query the model
guesses whether a record was in its training set. A model that memorises its training rows gives
them a visibly lower loss than unseen rows, and that gap is what the attack exploits. The same
memorisation makes model inversion (ML03: reconstructing training records or sensitive attributes
from outputs) easier, so a high attack score here is also a warning sign for ML03.

Method: the loss-threshold attack (Yeom et al., 2018). Score each row by the log-probability the
model gives its true label (higher = more likely a member); members are a subsample of the
training rows, non-members an equally large subsample of the holdout rows (at least 500 each, or
all when fewer). From the ROC curve of that score:

- ``attack_auc``: probability that a random member scores above a random non-member (ties count
  half); 0.5 is chance. 95% interval from a stratified bootstrap.
- ``advantage``: max over thresholds of TPR − FPR (Yeom's membership advantage).
- ``tpr_at_1pct_fpr``: the fraction of members caught when 1% of non-members are wrongly flagged,
  read off the ROC curve by linear interpolation at FPR = 0.01 (a randomised threshold between
  two ROC points, so tied scores are handled fairly). Needs at least 100 non-members to resolve
  1%; with fewer it is null and not judged.
- ``generalization_gap``: accuracy on the member sample minus accuracy on the non-member sample.
  The gap alone misleads (the same gap can come with very different attack AUCs), so it is a
  low-severity finding of its own and never the only evidence of leakage.

The model is only queried (one ``predict_proba`` call on both samples), never refitted. An
offline LiRA-style test would need reference models trained on other data; it is not done here.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from checks.detectors.robustness import (
    Deadline,
    ModelCheckResult,
    check_sample_rows,
    known_classes,
    labelled,
    probabilities,
    subsample,
    true_class_index,
    wilson_interval,
)
from checks.findings import Finding, Severity, evaluation_finding
from checks.runner import CheckNotRun

VERSION = "2"
CHECK = "membership_inference"
TAXONOMY = {"owasp_ml": "ML04:2023", "atlas": "AML.T0024.000"}
MIN_NON_MEMBERS_FOR_TPR = 100  # 1% FPR needs at least one non-member in a hundred
LOG_FLOOR = 1e-12
REMEDIATION = (
    "Reduce memorisation and retrain: regularise (smaller C, max_depth / larger min_samples_leaf, "
    "fewer boosting rounds, early stopping), reduce model capacity, train on more data and "
    "deduplicate records, or train with differential privacy (e.g. DP-SGD) for sensitive data. At "
    "serving time return labels or rounded probabilities rather than full scores, and rate-limit "
    "queries. Rescan and compare the attack AUC."
)
_finding = functools.partial(evaluation_finding, CHECK, TAXONOMY, remediation=REMEDIATION)


def evaluate_membership_inference(
    model: Any,
    members: pd.DataFrame,
    non_members: pd.DataFrame | None,
    label: str,
    *,
    subject_identity: str,
    subject: dict[str, Any] | None = None,
    champion: dict[str, Any] | None = None,
    champion_version: str | None = None,
    sample_rows: int = 1000,
    max_attack_auc: float = 0.6,
    max_advantage: float = 0.25,
    max_tpr_at_1pct_fpr: float = 0.05,
    max_generalization_gap: float = 0.10,
    severity: str | Severity = "medium",
    gap_severity: str | Severity = "low",
    bootstrap_rounds: int = 200,
    seed: int = 0,
    progress: dict[str, Any] | None = None,
    deadline: float | None = None,
) -> ModelCheckResult:
    """Loss-threshold membership inference on `model`, and the generalisation gap.

    Args:
        model: fitted classifier with ``predict_proba`` and ``classes_``, queried only.
        members: the rows the model was trained on, with the `label` column.
        non_members: holdout rows the model never saw; None or empty raises CheckNotRun with a
            medium finding (holdout not retrievable: a governance gap, Contracts).
        champion: the champion's ``measurements`` from this function, shown in evidence.
        sample_rows: rows drawn from each side, or all of a smaller side (at least 500).
        max_attack_auc, max_advantage, max_tpr_at_1pct_fpr: exceeding any of them is one finding
            of `severity`.
        max_generalization_gap: exceeding it is a separate finding of `gap_severity`.
        progress: the runner's coverage record; deadline: ``time.monotonic()`` value at which to
            stop (raises DeadlineReached).

    Returns findings and measurements (sample sizes, attack AUC with a 95% bootstrap interval,
    advantage, TPR at 1% FPR, accuracies with Wilson intervals, the gap), also written to `progress`.
    """
    check_sample_rows(sample_rows)
    started = time.monotonic()
    progress = {} if progress is None else progress
    clock = Deadline(CHECK, deadline, progress)
    inside = labelled(members, label, "training data")
    outside = None if non_members is None else labelled(non_members, label, "holdout")
    if outside is None or len(outside) == 0 or len(inside) == 0:
        raise CheckNotRun(_not_run(subject_identity, subject or {}, len(inside), outside))
    # a label the model never learnt has no loss to compare: such rows are left out and counted
    inside, unknown_members = known_classes(model, inside, label, "training data")
    outside, unknown_non_members = known_classes(model, outside, label, "holdout")
    inside = subsample(inside, min(sample_rows, len(inside)), np.random.default_rng([seed, 0]))
    outside = subsample(outside, min(sample_rows, len(outside)), np.random.default_rng([seed, 1]))
    progress.update(member_rows=len(inside), non_member_rows=len(outside))
    clock.ensure()
    scores, correct = _membership_scores(model, pd.concat([inside, outside]), label)
    is_member = np.r_[np.ones(len(inside), dtype=bool), np.zeros(len(outside), dtype=bool)]
    measurements = _attack_metrics(scores, is_member)
    measurements["attack_auc_ci95"] = _bootstrap_auc(scores, is_member, bootstrap_rounds, seed, clock)
    measurements.update(_accuracy_gap(correct, is_member))
    measurements.update(
        check=CHECK,
        detector_version=VERSION,
        seed=seed,
        unknown_label_rows=unknown_members + unknown_non_members,
    )
    measurements["seconds"] = round(time.monotonic() - started, 3)
    progress.update(measurements)
    limits = {
        "attack_auc": max_attack_auc,
        "advantage": max_advantage,
        "tpr_at_1pct_fpr": max_tpr_at_1pct_fpr,
    }
    findings = _judge(measurements, limits, Severity.parse(severity), subject_identity, subject or {})
    findings += _judge_gap(
        measurements, max_generalization_gap, Severity.parse(gap_severity), subject_identity, subject or {}
    )
    for finding in findings if champion is not None else []:
        finding.evidence.update(champion=champion, champion_version=champion_version)
    return ModelCheckResult(findings, measurements)


def _membership_scores(model: Any, rows: pd.DataFrame, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Log-probability of the true label (the negated cross-entropy loss) and correctness, per row
    (every label is a model class: `known_classes` left the others out)."""
    proba = probabilities(model, rows.drop(columns=[label]))
    truth = true_class_index(model, rows[label])
    true_p = proba[np.arange(len(truth)), truth]
    return np.log(np.clip(true_p, LOG_FLOOR, 1.0)), proba.argmax(axis=1) == truth


def _attack_metrics(scores: np.ndarray, is_member: np.ndarray) -> dict[str, Any]:
    fpr, tpr, _ = roc_curve(is_member, scores, drop_intermediate=False)
    non_members = int((~is_member).sum())
    resolvable = non_members >= MIN_NON_MEMBERS_FOR_TPR
    return {
        "member_sample_size": int(is_member.sum()),
        "non_member_sample_size": non_members,
        "attack": "loss_threshold",
        "attack_auc": round(float(roc_auc_score(is_member, scores)), 6),
        "advantage": round(float(np.max(tpr - fpr)), 6),
        "tpr_at_1pct_fpr": round(tpr_at_fpr(fpr, tpr, 0.01), 6) if resolvable else None,
    }


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """TPR of the ROC curve at FPR = `target`: the best point at or below it, linearly interpolated
    towards the next point above it (what a randomised threshold between the two achieves)."""
    below = int(np.searchsorted(fpr, target, side="right")) - 1  # tpr is highest at the last such point
    if below + 1 >= len(fpr) or fpr[below] == target:
        return float(tpr[below])
    share = (target - fpr[below]) / (fpr[below + 1] - fpr[below])
    return float(tpr[below] + share * (tpr[below + 1] - tpr[below]))


def _bootstrap_auc(
    scores: np.ndarray, is_member: np.ndarray, rounds: int, seed: int, clock: Deadline
) -> tuple[float, float] | None:
    """95% percentile interval of the attack AUC, resampling members and non-members separately.

    Vectorised: a resample is a pair of multinomial weight vectors, and each member's count of
    lower-scoring non-members (ties half) is a difference of cumulative non-member weights.
    """
    if rounds <= 0:
        return None
    clock.ensure()
    rng = np.random.default_rng([seed, 2])
    inside, outside = scores[is_member], np.sort(scores[~is_member])
    below = np.searchsorted(outside, inside, side="left")
    at_or_below = np.searchsorted(outside, inside, side="right")
    w_in = rng.multinomial(len(inside), np.full(len(inside), 1 / len(inside)), size=rounds)
    w_out = rng.multinomial(len(outside), np.full(len(outside), 1 / len(outside)), size=rounds)
    cumulative = np.hstack([np.zeros((rounds, 1)), np.cumsum(w_out, axis=1)])
    beaten = cumulative[:, below] + 0.5 * (cumulative[:, at_or_below] - cumulative[:, below])
    aucs = (w_in * beaten).sum(axis=1) / (len(inside) * len(outside))
    low, high = np.percentile(aucs, [2.5, 97.5])
    return (round(float(low), 6), round(float(high), 6))


def _accuracy_gap(correct: np.ndarray, is_member: np.ndarray) -> dict[str, Any]:
    hits_in, n_in = int(correct[is_member].sum()), int(is_member.sum())
    hits_out, n_out = int(correct[~is_member].sum()), int((~is_member).sum())
    return {
        "member_accuracy": round(hits_in / n_in, 6),
        "member_accuracy_ci95": wilson_interval(hits_in, n_in),
        "non_member_accuracy": round(hits_out / n_out, 6),
        "non_member_accuracy_ci95": wilson_interval(hits_out, n_out),
        "generalization_gap": round(hits_in / n_in - hits_out / n_out, 6),
    }


def _judge(
    m: dict[str, Any], limits: dict[str, float], severity: Severity, identity: str, subject: dict[str, Any]
) -> list[Finding]:
    """One finding when any attack metric exceeds its limit (the title names each one exceeded)."""
    exceeded = [
        f"{name} {m[name]:.3f} > {limit:g}"
        for name, limit in limits.items()
        if m.get(name) is not None and m[name] > limit
    ]
    if not exceeded:
        return []
    title = (
        f"Membership inference: the loss-threshold attack tells training rows from holdout rows "
        f"(AUC {m['attack_auc']:.3f}): " + "; ".join(exceeded)
    )
    evidence = {**m, "limits": limits}
    return [_finding(severity, "loss_threshold_attack", title, identity, subject, evidence)]


def _judge_gap(
    m: dict[str, Any], limit: float, severity: Severity, identity: str, subject: dict[str, Any]
) -> list[Finding]:
    if m["generalization_gap"] <= limit:
        return []
    title = (
        f"Generalisation gap {m['generalization_gap']:.3f} > {limit:g} "
        f"(training accuracy {m['member_accuracy']:.3f}, holdout {m['non_member_accuracy']:.3f})"
    )
    evidence = {**m, "max_generalization_gap": limit}
    return [_finding(severity, "generalization_gap", title, identity, subject, evidence)]


def _not_run(identity: str, subject: dict[str, Any], members: int, outside: pd.DataFrame | None) -> Finding:
    missing = "training rows" if members == 0 else "holdout rows (non-members)"
    return _finding(
        Severity.MEDIUM,
        "no_holdout" if members else "no_training_data",
        f"No labelled {missing}; membership inference not run",
        identity,
        subject,
        {"member_rows": members, "non_member_rows": 0 if outside is None else len(outside)},
        remediation="Train through mlgate, or log the training and evaluation data with the run "
        "(dataset inputs with readable sources, or run artifacts), so both can be retrieved.",
    )
