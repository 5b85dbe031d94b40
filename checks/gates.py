"""One Dagster gate step per stage: run the stage's checks, store them, tag the verdict, yield.

Each gate is a multi-asset check with one blocking result per check: ERROR when the policy
blocks (Dagster then skips everything downstream in the run), WARN otherwise. A gate that
blocks writes the version's verdict tags itself, because nothing later in the run executes;
the last gate (evaluation) writes them when everything passed.
"""

import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np

from checks.catalog import DATA_CHECKS, MODEL_CHECKS, checks_for_asset, detector_versions
from checks.compliance import compliance_view
from checks.detectors.data_quality import load_suite
from checks.detectors.registry import LINEAGE_TAG, RegistryFacts
from checks.digests import file_digest
from checks.findings import PASSED, Finding, severity_counts, to_jsonable
from checks.gate import execute_checks, outcome_blocks, reuse
from checks.history import (
    FindingsDiff,
    previous_version,
    remediation_diff,
    scanned_versions,
    version_diff,
    version_findings,
)
from checks.html_report import write_html_report
from checks.policy import Policy
from checks.report import build_report
from checks.runner import CheckFn, CheckOutcome
from checks.stage_checks import (
    artifact_safety_check,
    data_quality_check,
    dependency_check,
    label_noise_check,
    membership_check,
    performance_check,
    poisoning_check,
    registry_check,
    robustness_check,
)
from checks.store import FindingsStore, StoredCheck
from checks.verdict import dataset_verdict, version_verdict
from pipelines.audit import compute_audit_predictions
from pipelines.partitions import model_versions
from pipelines.resources import (
    HomeResource,
    PolicyResource,
    RegistryResource,
    StoreResource,
    registry_for_partition,
)
from pipelines.settings import SUITES_DIR
from pipelines.storage import (
    DatasetSnapshot,
    VersionSnapshot,
    alias_lock,
    load_dataset,
    load_version,
    write_json_atomic,
)

__all__ = ["data_quality_gate", "evaluation_gate", "label_noise_gate", "version_gate"]


log = logging.getLogger("mlgate.gates")
REMEDIATION_TAG = "mlgate.remediation_of"  # set by `mlgate remediate` on the version it produces


def _specs(asset: str, partitioned: bool = False, deps: tuple[str, ...] = ()) -> list[dg.AssetCheckSpec]:
    """Blocking specs for the asset's checks; partitioned checks read their partition's snapshot.

    Partitioned check specs are a Dagster preview feature (1.13); DESIGN relies on them, so the
    preview warning is silenced here rather than in every caller.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _build_specs(asset, partitioned, deps)


def _build_specs(asset: str, partitioned: bool, deps: tuple[str, ...]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            c.name,
            asset=asset,
            blocking=True,
            description=c.description,
            additional_deps=list(deps),
            partitions_def=model_versions if partitioned else None,
        )
        for c in checks_for_asset(asset)
    ]


def _markdown(findings: list) -> str:
    if not findings:
        return "No findings."
    lines = ["| severity | title | status | fingerprint |", "|---|---|---|---|"]
    for f in sorted(findings, key=lambda f: -f.severity)[:50]:
        title = f.title.replace("|", "\\|")
        lines.append(f"| {f.severity.label} | {title} | {f.status} | `{f.fingerprint[:12]}` |")
    return "\n".join(lines)


def _results(
    asset: str,
    outcomes: list[CheckOutcome],
    policy: Policy,
    model_name: str | None,
    extra: dict[str, Any] | None = None,
) -> Iterator[dg.AssetCheckResult]:
    for o in outcomes:
        blocks = outcome_blocks(o, policy, model_name)
        counts = severity_counts(o.findings)
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name=o.name,
            passed=o.status == PASSED,
            severity=dg.AssetCheckSeverity.ERROR if blocks else dg.AssetCheckSeverity.WARN,
            description=f"{o.status}: {sum(counts.values())} open findings",
            metadata={
                "status": o.status,
                "blocks": blocks,
                "policy_digest": policy.digest,
                **{f"findings_{k}": v for k, v in counts.items()},
                "findings": dg.MetadataValue.md(_markdown(o.findings)),
                "seconds": o.detail.get("seconds", 0.0),
                **(extra or {}),
            },
        )


def _write_report(home: HomeResource, scan_id: str, report: dict[str, Any]) -> str:
    path = home.reports_dir / f"{scan_id}.json"
    write_json_atomic(path, to_jsonable(report))
    return path.as_uri()


def _report_checks(checks: dict) -> list[dict[str, str]]:
    return [{"name": name, "status": c.status} for name, c in checks.items()]


# -- data stage --------------------------------------------------------------------------------


def _suite_path(dataset: DatasetSnapshot) -> Path:
    return SUITES_DIR / f"{dataset.name}.json"


def _file_key(path: Path) -> str:
    """Content key of an optional file ("none" when absent)."""
    return file_digest(path)[:16] if path.is_file() else "none"


def _reusable(previous: StoredCheck | None, dataset: DatasetSnapshot) -> bool:
    """A stored data result is reused unless it errored, timed out, or its suite file changed."""
    if previous is None or previous.status in ("error", "timeout"):
        return False
    if previous.check_name == "data_quality":
        return previous.detail.get("covered", {}).get("suite_digest") == _file_key(_suite_path(dataset))
    return True


def _data_check_fn(name: str, dataset: DatasetSnapshot, policy: Policy) -> CheckFn:
    """The named data check on a stored snapshot; loading runs inside the check's budget, so an
    unreadable snapshot or suite file is an `error` result (fail closed), not a crashed step."""
    subject = {"model": dataset.model_name, "dataset": dataset.name, "digest": dataset.digest}

    def data_quality(progress: dict[str, Any]) -> list[Finding]:
        suite_path = _suite_path(dataset)
        progress["suite_digest"] = _file_key(suite_path)
        suite = load_suite(suite_path) if suite_path.is_file() else None
        check = data_quality_check(
            dataset.frame(), dataset.label, suite, policy, identity=dataset.identity, subject=subject
        )
        return check(progress)

    def label_noise(progress: dict[str, Any]) -> list[Finding]:
        from checks.detectors.tabular import prepare

        audit = compute_audit_predictions(dataset, policy.detection_model)
        check = label_noise_check(
            np.asarray(audit.labels),
            audit.probabilities(),
            np.asarray(audit.row_positions),
            policy,
            identity=dataset.identity,
            subject=subject,
            features=prepare(dataset.frame(), dataset.label).features,
            dropped_columns=audit.dropped_columns,
        )
        return check(progress)

    def poisoning(progress: dict[str, Any]) -> list[Finding]:
        from checks.detectors.tabular import prepare

        audit = compute_audit_predictions(dataset, policy.detection_model)
        prepared = prepare(dataset.frame(), dataset.label)
        check = poisoning_check(
            prepared.features,
            np.asarray(audit.labels),
            audit.probabilities(),
            np.asarray(audit.row_positions),
            audit.classes,
            policy,
            identity=dataset.identity,
            subject=subject,
        )
        return check(progress)

    return {"data_quality": data_quality, "label_noise": label_noise, "poisoning": poisoning}[name]


def run_data_checks(
    store: FindingsStore, policy: Policy, dataset: DatasetSnapshot, names: list[str], run_id: str | None
) -> tuple[str, list[CheckOutcome]]:
    """Run (or reuse) the named data checks of a snapshot under the current policy and detectors.

    Results are keyed by (model, dataset digest, policy digest, detector versions); a stored
    result is reused instead of recomputed when `_reusable` says so.
    """
    keys = dict(model_name=dataset.model_name, dataset_name=dataset.name, dataset_digest=dataset.digest)
    versions = detector_versions(DATA_CHECKS)
    scan = store.latest_scan("dataset", policy_digest=policy.digest, detector_versions=versions, **keys)
    scan_id = (
        scan["id"]
        if scan
        else store.open_scan(
            "dataset", policy_digest=policy.digest, detector_versions=versions, run_id=run_id, **keys
        )
    )
    stored = store.checks_of(scan_id)
    outcomes = []
    for name in names:
        previous = stored.get(name)
        if _reusable(previous, dataset):
            outcomes.append(reuse(previous, policy, dataset.model_name))
            continue
        outcomes += execute_checks(
            [(name, _data_check_fn(name, dataset, policy))],
            policy,
            model_name=dataset.model_name,
            identity=dataset.identity,
            subject={"model": dataset.model_name, "dataset": dataset.name, "digest": dataset.digest},
            store=store,
            scan_id=scan_id,
        )
    return scan_id, outcomes


def _data_gate(
    context: dg.AssetCheckExecutionContext,
    asset: str,
    dataset: DatasetSnapshot,
    store: StoreResource,
    policy: PolicyResource,
    home: HomeResource,
) -> Iterator[dg.AssetCheckResult]:
    current, findings_store = policy.load(), store.open()
    names = [c.name for c in checks_for_asset(asset)]
    scan_id, outcomes = run_data_checks(findings_store, current, dataset, names, context.run.run_id)
    extra: dict[str, Any] = {"dataset_digest": dataset.digest}
    if any(outcome_blocks(o, current, dataset.model_name) for o in outcomes):
        verdict = dataset_verdict(findings_store, current, dataset.digest, dataset.model_name)
        report = build_report(
            verdict="blocked",
            subject={"model": dataset.model_name, "dataset": dataset.name, "digest": dataset.digest},
            checks=_report_checks(verdict.checks),
            findings=verdict.findings,
            policy_digest=current.digest,
            stage="data",
            scan_id=scan_id,
        )
        extra["report_uri"] = _write_report(home, scan_id, report)
        findings_store.record_decision(
            action="verdict",
            verdict="blocked",
            scan_id=scan_id,
            model_name=dataset.model_name,
            dataset_digest=dataset.digest,
            policy_digest=current.digest,
            run_id=context.run.run_id,
            reason=f"data checks blocked the retrain of {dataset.name}",
        )
    yield from _results(asset, outcomes, current, dataset.model_name, extra)


@dg.multi_asset_check(specs=_specs("training_data"), ins={"training_data": dg.AssetIn("training_data")})
def data_quality_gate(
    context: dg.AssetCheckExecutionContext,
    training_data: DatasetSnapshot,
    store: StoreResource,
    policy: PolicyResource,
    home: HomeResource,
):
    """Data-quality gate on the training snapshot (GX suite or baseline contract)."""
    yield from _data_gate(context, "training_data", training_data, store, policy, home)


@dg.multi_asset_check(
    specs=_specs("audit_predictions", deps=("training_data",)),
    ins={"training_data": dg.AssetIn("training_data"), "audit_predictions": dg.AssetIn("audit_predictions")},
)
def label_noise_gate(
    context: dg.AssetCheckExecutionContext,
    training_data: DatasetSnapshot,
    audit_predictions: Any,
    store: StoreResource,
    policy: PolicyResource,
    home: HomeResource,
):
    """Label-noise gate on the shared out-of-fold probabilities (cleanlab, rows ranked with a kNN vote)."""
    yield from _data_gate(context, "audit_predictions", training_data, store, policy, home)


# -- model stages ------------------------------------------------------------------------------


def publish_verdict(
    registry: RegistryResource,
    store: FindingsStore,
    policy: Policy,
    home: HomeResource,
    snapshot: VersionSnapshot,
    run_id: str,
) -> tuple[str, dict[str, str]]:
    """Write the version's verdict tags and JSON report from what the store now holds.

    Returns the verdict and one-line diffs against the previous scanned version and the alias
    holder (for the checks' metadata); the report carries the full diffs.
    """
    verdict = version_verdict(
        store,
        policy,
        registry_uri=snapshot.registry_uri,
        name=snapshot.name,
        version=snapshot.version,
        artifact_digest=snapshot.artifact_digest,
        dataset_digest=snapshot.dataset_digest,
    )
    outcome = "passed" if verdict.deployable else "blocked"
    alias = policy.for_model(snapshot.name).alias
    diffs = _diffs(store, snapshot, registry.alias_holder(snapshot.name, alias))
    report = build_report(
        verdict=outcome,
        subject=snapshot.subject,
        checks=_report_checks(verdict.checks),
        findings=verdict.findings,
        policy_digest=policy.digest,
        artifact_digest=snapshot.artifact_digest,
        scan_id=verdict.scan_id,
        reasons=verdict.reasons,
        diff={k: d.as_dict() for k, d in diffs.items()},
    )
    report["compliance"] = compliance_view(report)
    report_uri = _write_report(home, verdict.scan_id or run_id, report)
    tags = {
        **_html_report(registry, store, home, snapshot, report, verdict.scan_id or run_id),
        "mlgate.verdict": outcome,
        "mlgate.scan_run_id": run_id,
        "mlgate.artifact_digest": snapshot.artifact_digest,
        "mlgate.policy_digest": policy.digest,
        "mlgate.report_uri": report_uri,
        **{f"mlgate.findings.{k}": v for k, v in report["counts"].items()},
    }
    if outcome == "blocked" and registry.alias_holder(snapshot.name, alias) == snapshot.version:
        tags["mlgate.at_risk"] = "true"
    record = dict(
        verdict=outcome,
        scan_id=verdict.scan_id,
        registry_uri=snapshot.registry_uri,
        model_name=snapshot.name,
        version=snapshot.version,
        policy_digest=policy.digest,
        run_id=run_id,
    )
    # the store is the record of truth: write it before the registry, which may be unreachable
    store.record_decision(
        action="verdict",
        artifact_digest=snapshot.artifact_digest,
        dataset_digest=snapshot.dataset_digest,
        reason="; ".join(verdict.reasons) or f"scan {outcome}",
        **record,
    )
    registry.set_version_tags(snapshot.name, snapshot.version, tags)
    if "mlgate.at_risk" in tags:
        store.record_decision(
            action="at_risk",
            alias=alias,
            reason=f"v{snapshot.version} holds {alias} and a rescan blocked it",
            **record,
        )
        if policy.for_model(snapshot.name).rollback_on_risk:
            roll_back(registry, store, policy, home, snapshot, run_id)
    return outcome, {f"diff_vs_{k}": d.summary() for k, d in diffs.items()}


def _model_loaders(
    store: FindingsStore, policy: Policy, home: HomeResource, snapshot: VersionSnapshot, evaluation: Path
) -> tuple[Callable[[], Any], Callable[[], Any] | None, str | None]:
    """Load-once accessors for the version's model and for the champion it was compared with,
    both through the load guard (the same trust the artifact scan used)."""
    import functools
    import json

    from checks.load_guard import UntrustedModelError, load_verified_model

    allow = frozenset(policy.checks.artifact_safety.allow)
    load_model = functools.cache(lambda: load_verified_model(store, snapshot, allow))
    champion = json.loads(evaluation.read_text()).get("champion_version") if evaluation.is_file() else None
    if not champion:
        return load_model, None, None

    def champion_model() -> Any:
        held = load_version(home.cache_dir, snapshot.registry_uri, snapshot.name, champion)
        if held is None:
            raise UntrustedModelError(f"champion v{champion} was never scanned by mlgate")
        return load_verified_model(store, held, allow)

    return load_model, functools.cache(champion_model), champion


def _html_report(
    registry: RegistryResource,
    store: FindingsStore,
    home: HomeResource,
    snapshot: VersionSnapshot,
    report: dict[str, Any],
    name: str,
) -> dict[str, str]:
    """Write the HTML report (findings across the model's versions for its plots) and log it with
    the JSON report to an MLflow run of the `mlgate` experiment; returns the tags linking both.
    Logging is best effort: the local files are the record, and the gate never fails on it."""
    uri, model = snapshot.registry_uri, snapshot.name
    history = [
        {"version": v, "counts": severity_counts(version_findings(store, uri, model, v) or [])}
        for v in scanned_versions(store, uri, model)[-20:]
    ]
    html = write_html_report(report, history, home.reports_dir / f"{name}.html")
    tags = {"mlgate.report_html_uri": html.as_uri()}
    try:
        tags["mlgate.report_run_id"] = registry.log_reports(
            [html, home.reports_dir / f"{name}.json"], home.artifact_root, model, snapshot.version
        )
    except Exception as exc:  # noqa: BLE001 - an unreachable tracking server must not fail the gate
        log.warning("scan report of %s v%s not logged to MLflow: %s", model, snapshot.version, exc)
    return tags


def _diffs(store: FindingsStore, snapshot: VersionSnapshot, holder: str | None) -> dict[str, FindingsDiff]:
    """Findings diffs against the previous scanned version and the alias holder, where they exist."""
    keys = (store, snapshot.registry_uri, snapshot.name, snapshot.version)
    baselines = {"previous": previous_version(*keys), "champion": holder}
    diffs = {}
    for label, against in baselines.items():
        if against and against != snapshot.version:
            diff = version_diff(*keys, against)
            if diff is not None:
                diffs[label] = diff
    source = snapshot.tags.get(REMEDIATION_TAG)
    if source and (diff := remediation_diff(*keys, source)) is not None:
        diffs["remediated"] = diff
    return diffs


def roll_back(
    registry: RegistryResource,
    store: FindingsStore,
    policy: Policy,
    home: HomeResource,
    snapshot: VersionSnapshot,
    run_id: str,
) -> str | None:
    """Move the alias from an at-risk version back to the newest older version that still has a
    complete, passing scan of its current files under the current policy; returns that version."""
    name, alias = snapshot.name, policy.for_model(snapshot.name).alias
    record = dict(
        registry_uri=snapshot.registry_uri,
        model_name=name,
        version=snapshot.version,
        policy_digest=policy.digest,
        alias=alias,
        run_id=run_id,
    )
    passed = {
        d["version"]
        for d in store.decisions_for(name)
        if d["action"] == "verdict"
        and d["verdict"] == "passed"
        and d["policy_digest"] == policy.digest
        and d["registry_uri"] == snapshot.registry_uri
        and int(d["version"]) < int(snapshot.version)
    }
    with alias_lock(home.path, name, alias):
        if registry.alias_holder(name, alias) != snapshot.version:
            return None  # the alias moved meanwhile; nothing to roll back
        for version in sorted(passed, key=int, reverse=True):
            tags = registry.client().get_model_version(name, version).tags or {}
            check = version_verdict(
                store,
                policy,
                registry_uri=snapshot.registry_uri,
                name=name,
                version=version,
                artifact_digest=registry.artifact_digest(name, version),
                dataset_digest=tags.get(LINEAGE_TAG),
            )
            if check.deployable:
                store.record_decision(
                    action="rollback",
                    verdict="blocked",
                    reason=f"{alias} moved back from v{snapshot.version} (at risk) to v{version}",
                    **record,
                )
                registry.client().set_registered_model_alias(name, alias, version)
                return version
        store.record_decision(
            action="hold",
            verdict="blocked",
            **record,
            reason=f"v{snapshot.version} is at risk; no older version passes under the "
            "current policy, so the alias stays",
        )
    return None


def _version_context(
    context: dg.AssetCheckExecutionContext, registry: RegistryResource, home: HomeResource
) -> tuple[RegistryResource, VersionSnapshot]:
    """The partition's registry (configured or foreign) and its cached snapshot."""
    registry, name, version = registry_for_partition(registry, home, context.partition_key)
    snapshot = load_version(home.cache_dir, registry.registry_uri, name, version)
    if snapshot is None:
        raise dg.Failure(description=f"{name} v{version}: no cached snapshot to check")
    return registry, snapshot


def _model_gate(
    context: dg.AssetCheckExecutionContext,
    asset: str,
    snapshot: VersionSnapshot,
    checks: list,
    registry: RegistryResource,
    store: StoreResource,
    policy: Policy,
    home: HomeResource,
    *,
    last: bool,
) -> Iterator[dg.AssetCheckResult]:
    findings_store = store.open()
    scan_id = findings_store.open_scan(
        "model_version",
        policy_digest=policy.digest,
        detector_versions=detector_versions(MODEL_CHECKS),
        run_id=context.run.run_id,
        registry_uri=snapshot.registry_uri,
        model_name=snapshot.name,
        version=snapshot.version,
        artifact_digest=snapshot.artifact_digest,
        dataset_digest=snapshot.dataset_digest,
    )
    outcomes = execute_checks(
        checks,
        policy,
        model_name=snapshot.name,
        identity=snapshot.name,
        subject=snapshot.subject,
        store=findings_store,
        scan_id=scan_id,
    )
    blocked = any(outcome_blocks(o, policy, snapshot.name) for o in outcomes)
    extra = {"artifact_digest": snapshot.artifact_digest}
    if blocked or last:
        extra["verdict"], diffs = publish_verdict(
            registry, findings_store, policy, home, snapshot, context.run.run_id
        )
        extra |= diffs
    yield from _results(asset, outcomes, policy, snapshot.name, extra)


def _registry_facts(
    store: FindingsStore, policy: Policy, home: HomeResource, snapshot: VersionSnapshot, run_id: str
) -> RegistryFacts:
    """Resolve lineage: the data verdict of the training snapshot, running its checks if needed."""
    data_verdict, retrievable = None, False
    if snapshot.dataset_digest:
        dataset = load_dataset(home.datasets_dir, snapshot.dataset_digest)
        retrievable = dataset is not None
        if dataset is not None:
            from dataclasses import replace

            run_data_checks(store, policy, replace(dataset, model_name=snapshot.name), DATA_CHECKS, run_id)
            result = dataset_verdict(store, policy, dataset.digest, snapshot.name)
            data_verdict = result.verdict if result.complete else None
    tags = {**snapshot.model_tags, **snapshot.tags}
    return RegistryFacts(
        snapshot.has_signature,
        snapshot.has_input_example,
        tags,
        data_verdict,
        retrievable,
        policy.for_model(snapshot.name).owner,
        snapshot.lineage_note,
    )


@dg.multi_asset_check(specs=_specs("model_version", partitioned=True))
def version_gate(
    context: dg.AssetCheckExecutionContext,
    registry: RegistryResource,
    store: StoreResource,
    policy: PolicyResource,
    home: HomeResource,
):
    """Artifact-safety and registry gate on the cached snapshot (nothing is deserialised)."""
    current = policy.load()
    registry, snapshot = _version_context(context, registry, home)

    def facts() -> RegistryFacts:  # inside the check's budget: lineage may re-run data checks
        return _registry_facts(store.open(), current, home, snapshot, context.run.run_id)

    checks = [
        (
            "artifact_safety",
            artifact_safety_check(
                Path(snapshot.artifact_dir), current, identity=snapshot.name, subject=snapshot.subject
            ),
        ),
        ("registry_validation", registry_check(facts, identity=snapshot.name, subject=snapshot.subject)),
        (
            "dependency_advisories",
            dependency_check(
                Path(snapshot.artifact_dir),
                home.advisories_dir,
                current,
                identity=snapshot.name,
                subject=snapshot.subject,
            ),
        ),
    ]
    yield from _model_gate(
        context, "model_version", snapshot, checks, registry, store, current, home, last=False
    )


@dg.multi_asset_check(specs=_specs("model_evaluation", partitioned=True))
def evaluation_gate(
    context: dg.AssetCheckExecutionContext,
    registry: RegistryResource,
    store: StoreResource,
    policy: PolicyResource,
    home: HomeResource,
):
    """Model-behaviour gate on the evaluation results; writes the final verdict tags."""
    from assets.evaluation import evaluation_path

    current = policy.load()
    registry, snapshot = _version_context(context, registry, home)
    path = evaluation_path(home, registry.registry_uri, snapshot.name, snapshot.version)
    check = performance_check(
        path, snapshot.artifact_digest, current, identity=snapshot.name, subject=snapshot.subject
    )
    load_model, load_champion, champion = _model_loaders(store.open(), current, home, snapshot, path)
    dataset = load_dataset(home.datasets_dir, snapshot.dataset_digest) if snapshot.dataset_digest else None
    identity, subject = snapshot.name, snapshot.subject
    checks = [
        ("performance", check),
        (
            "robustness",
            robustness_check(
                load_model,
                dataset,
                current,
                identity=identity,
                subject=subject,
                load_champion=load_champion,
                champion_version=champion,
            ),
        ),
        (
            "membership_inference",
            membership_check(load_model, dataset, current, identity=identity, subject=subject),
        ),
    ]
    yield from _model_gate(
        context, "model_evaluation", snapshot, checks, registry, store, current, home, last=True
    )
