"""What the CLI and the Python facade do: retrain-and-scan, scan a data file, load a model."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.findings import Severity


class UsageError(Exception):
    """Bad input or usage: the CLI prints the message on one line and exits 2."""


@dataclass
class Outcome:
    verdict: str  # passed | blocked
    report: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    completed: bool = True  # False when a step after a passing verdict failed (e.g. a refusal)

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == "passed" and self.completed else 1


def _environment(policy_path: str | None):
    from checks.policy import PolicyError, load_policy
    from pipelines.settings import load_settings, prepare_environment

    if policy_path:
        try:
            load_policy(policy_path)
        except PolicyError as exc:
            raise UsageError(str(exc)) from None
        os.environ["MLGATE_POLICY"] = str(Path(policy_path).resolve())
    settings = load_settings()
    prepare_environment(settings)
    return settings


def _read_input(path: str, label: str):
    from assets.sources import InputError, read_table, require_label
    from checks.detectors.tabular import DataError, check_classification_target

    try:
        df = read_table(path)
        require_label(df, label, path)
        check_classification_target(df[label], label)
    except (InputError, DataError) as exc:
        raise UsageError(str(exc) if str(exc).startswith(path) else f"{path}: {exc}") from None
    return df


def scan_data(
    path: str, label: str, *, suite: str | None = None, policy_path: str | None = None
) -> dict[str, Any]:
    """The data checks on one file, without Dagster state: returns the JSON report."""
    from checks.detectors.data_quality import SuiteError, load_suite
    from checks.detectors.tabular import DataError, prepare
    from checks.findings import Finding
    from checks.gate import execute_checks, outcome_blocks
    from checks.policy import PolicyError, load_policy
    from checks.report import build_report
    from checks.runner import CheckNotRun
    from checks.stage_checks import data_quality_check, label_noise_check, poisoning_check
    from pipelines.audit import detection_probabilities
    from pipelines.settings import load_settings

    df = _read_input(path, label)
    try:
        policy = load_policy(policy_path or load_settings().policy_path)
        suite_doc = load_suite(suite) if suite else None
    except (PolicyError, SuiteError) as exc:
        raise UsageError(str(exc)) from None
    name = Path(path).stem
    subject = {"dataset": name, "path": str(Path(path).resolve()), "rows": len(df)}

    def audit(check: str) -> tuple[Any, Any]:
        """The prepared data and detection-model probabilities, computed once for both checks."""
        try:
            return shared_audit()
        except DataError as exc:
            raise CheckNotRun(
                Finding(
                    check=check,
                    severity=Severity.INFO,
                    stage="data",
                    subject_identity=name,
                    key="not_run",
                    subject=subject,
                    title=f"{check.replace('_', ' ').capitalize()} check could not run: {exc}",
                    remediation="Provide at least two rows per class.",
                )
            ) from None

    @functools.cache
    def shared_audit() -> tuple[Any, Any]:
        prepared = prepare(df, label)
        return prepared, detection_probabilities(prepared, policy.detection_model)

    def poisoning(progress: dict[str, Any]) -> list[Finding]:
        prepared, probs = audit("poisoning")
        return poisoning_check(
            prepared.features,
            prepared.labels,
            probs,
            prepared.labelled_rows,
            prepared.classes,
            policy,
            identity=name,
            subject=subject,
        )(progress)

    def label_noise(progress: dict[str, Any]) -> list[Finding]:
        prepared, probs = audit("label_noise")
        progress["folds_done"] = True
        return label_noise_check(
            prepared.labels,
            probs,
            prepared.labelled_rows,
            policy,
            identity=name,
            subject=subject,
            features=prepared.features,
            dropped_columns=prepared.id_columns + prepared.dropped_text_columns,
        )(progress)

    checks = [
        ("data_quality", data_quality_check(df, label, suite_doc, policy, identity=name, subject=subject)),
        ("label_noise", label_noise),
        ("poisoning", poisoning),
    ]
    outcomes = execute_checks(checks, policy, model_name=None, identity=name, subject=subject)
    blocked = any(outcome_blocks(o, policy, None) for o in outcomes)
    return build_report(
        verdict="blocked" if blocked else "passed",
        subject=subject,
        checks=[{"name": o.name, "status": o.status} for o in outcomes],
        findings=[f for o in outcomes for f in o.findings],
        policy_digest=policy.digest,
    )


def _report_from_uri(uri: str | None) -> dict[str, Any] | None:
    if not uri or not uri.startswith("file://"):
        return None
    from urllib.parse import unquote, urlparse

    path = Path(unquote(urlparse(uri).path))
    return json.loads(path.read_text()) if path.is_file() else None


def run(
    *,
    data: str | None = None,
    label: str | None = None,
    model_name: str | None = None,
    inject_label_noise: float = 0.0,
    policy_path: str | None = None,
    verbose: bool = False,
    dataset_name: str | None = None,
    version_tags: dict[str, str] | None = None,
) -> Outcome:
    """One retrain, then `scan_version` for the new version, both in process.

    `dataset_name` keeps the logical dataset name (and so the fingerprints) of a copy such as a
    remediated one; `version_tags` are set on the new version before it is scanned.
    """
    from pipelines.settings import BUNDLED_DATA, BUNDLED_LABEL, DEFAULT_MODEL_NAME

    data = data or str(BUNDLED_DATA)
    label = label or BUNDLED_LABEL
    model_name = model_name or DEFAULT_MODEL_NAME
    if not 0 <= inject_label_noise < 1:
        raise UsageError(f"--inject-label-noise must be in [0, 1), got {inject_label_noise}")
    _read_input(data, label)
    settings = _environment(policy_path)

    import dagster as dg

    from checks.policy import load_policy
    from checks.store import FindingsStore
    from pipelines.definitions import build_definitions
    from pipelines.partitions import IN_PROCESS_SCAN_TAG, partition_key

    defs = build_definitions()
    instance = dg.DagsterInstance.get()
    source = {
        "path": str(Path(data).resolve()),
        "label": label,
        "model_name": model_name,
        "inject_label_noise": float(inject_label_noise),
        "dataset_name": dataset_name or "",
    }
    # A blocked check is an expected outcome: the report explains it and the UI keeps the logs.
    loggers = {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}}
    retrain = defs.resolve_job_def("retrain").execute_in_process(
        instance=instance,
        run_config={"ops": {"raw_data": {"config": source}}, "loggers": loggers},
        tags={IN_PROCESS_SCAN_TAG: "in_process"},  # the sensor leaves this version to us
        raise_on_error=False,
    )
    store = FindingsStore(settings.store_url)
    if not retrain.success:
        blocked = [
            d
            for d in store.decisions_for(model_name)
            if d["run_id"] == retrain.run_id and d["verdict"] == "blocked"
        ]
        if not blocked:
            raise RuntimeError(f"retrain run {retrain.run_id} failed: {_failure_message(retrain)}")
        _after_run(defs, instance, store, retrain.run_id, loggers)
        report_path = settings.reports_dir / f"{blocked[-1]['scan_id']}.json"
        report = json.loads(report_path.read_text())
        return Outcome(
            "blocked",
            report,
            [f"retrain {retrain.run_id} blocked at the data stage; no model was trained or registered"],
        )
    candidate = retrain.output_for_node("candidate_model")
    if version_tags:
        from pipelines.resources import RegistryResource

        registry = RegistryResource(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
        registry.set_version_tags(candidate["name"], candidate["version"], version_tags)
    key = partition_key(candidate["name"], candidate["version"])
    instance.add_dynamic_partitions("model_versions", [key])
    scan = defs.resolve_job_def("scan_version").execute_in_process(
        instance=instance, partition_key=key, run_config={"loggers": loggers}, raise_on_error=False
    )
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    tags = client.get_model_version(candidate["name"], candidate["version"]).tags
    report = _report_from_uri(tags.get("mlgate.report_uri"))
    if report is None:
        raise RuntimeError(f"scan run {scan.run_id} wrote no verdict for {key}: {_failure_message(scan)}")
    notes = [
        f"registered {candidate['name']} v{candidate['version']} (retrain run {retrain.run_id})",
        f"scan run {scan.run_id}: {'succeeded' if scan.success else 'stopped'}",
    ]
    decisions = store.decisions_for(candidate["name"], candidate["version"])
    notes += [f"deployment: {d['action']}: {d['reason']}" for d in decisions if d["action"] != "verdict"]
    _after_run(defs, instance, store, scan.run_id, loggers)
    alias = load_policy(settings.policy_path).for_model(candidate["name"]).alias
    notes.append(f"{alias} -> v{_alias(client, candidate['name'], alias) or '(none)'}")
    return Outcome(report["verdict"], report, notes, completed=scan.success)


def scan_model(
    uri: str,
    *,
    tracking_uri: str | None = None,
    promote: bool = False,
    policy_path: str | None = None,
    verbose: bool = False,
) -> Outcome:
    """Scan one registered version (any registry) in process; move its alias only with `promote`."""
    settings = _environment(policy_path)
    registry_uri = tracking_uri or settings.registry_uri
    name, version = _resolve_model_uri(uri, registry_uri)

    import dagster as dg

    from pipelines.definitions import build_definitions
    from pipelines.partitions import partition_key
    from pipelines.resources import remember_registry

    prefix = (
        None if registry_uri == settings.registry_uri else remember_registry(str(settings.home), registry_uri)
    )
    key = partition_key(name, version, prefix)
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("model_versions", [key])
    loggers = {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}}
    defs = build_definitions()
    job = defs.resolve_job_def("scan_version" if promote else "rescan_version")
    result = job.execute_in_process(
        instance=instance, partition_key=key, run_config={"loggers": loggers}, raise_on_error=False
    )
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    tags = client.get_model_version(name, version).tags
    report = _report_from_uri(tags.get("mlgate.report_uri"))
    if report is None or tags.get("mlgate.scan_run_id") != result.run_id:
        raise RuntimeError(f"scan run {result.run_id} wrote no verdict for {key}: {_failure_message(result)}")
    notes = [f"scan run {result.run_id} ({job.name}) for partition {key}"]
    from checks.store import FindingsStore

    store = FindingsStore(settings.store_url)
    _after_run(defs, instance, store, result.run_id, loggers)
    notes += [
        f"deployment: {d['action']}: {d['reason']}"
        for d in store.decisions_for(name, version)
        if d["action"] != "verdict" and d["run_id"] == result.run_id
    ]
    return Outcome(report["verdict"], report, notes, completed=result.success)


def _resolve_model_uri(uri: str, registry_uri: str) -> tuple[str, str]:
    """models:/NAME/VERSION or models:/NAME@ALIAS -> (name, version); UsageError when unknown."""
    from mlflow import MlflowClient

    ref = uri.removeprefix("models:/") if uri.startswith("models:/") else None
    if not ref:
        raise UsageError(f"{uri}: expected models:/<name>/<version> or models:/<name>@<alias>")
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return name, str(client.get_model_version_by_alias(name, alias).version)
        name, _, version = ref.rpartition("/")
        if not name or not version.isdigit():
            raise UsageError(f"{uri}: expected models:/<name>/<version> or models:/<name>@<alias>")
        return name, str(client.get_model_version(name, version).version)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - MLflow raises several types for "not found"/"unreachable"
        message = str(exc).splitlines()[0][:300]
        raise UsageError(f"{uri}: not found in registry {registry_uri} ({message})") from None


def _after_run(defs: Any, instance: Any, store: Any, run_id: str, loggers: dict) -> None:
    """What the daemon's run-status sensors do, done by the CLI after an in-process run: alerts,
    then the findings register refresh."""
    from checks.policy import load_policy
    from pipelines.alerts import alerts_for_run, overdue_counts, send
    from pipelines.settings import load_settings

    policy = load_policy(load_settings().policy_path).with_waivers(store.stored_waivers())
    send(alerts_for_run(store, run_id, overdue_counts(store, policy)))
    defs.resolve_job_def("refresh_register").execute_in_process(
        instance=instance, run_config={"loggers": loggers}, raise_on_error=False
    )


def _alias(client, name: str, alias: str) -> str | None:
    try:
        return client.get_model_version_by_alias(name, alias).version
    except Exception:  # noqa: BLE001 - no such alias
        return None


def _failure_message(result) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            return f"step {event.step_key}: {error.message.strip().splitlines()[0]}"
    return "see the run's logs in the Dagster UI (make ui)"


def verify(uri: str, *, tracking_uri: str | None = None, policy_path: str | None = None) -> Outcome:
    """Has this version passed a complete scan, and do its registry files still match it?"""
    import tempfile

    from pipelines.verification import RegistryUnreachable

    settings, registry, name, version = _consumer_context(uri, tracking_uri, policy_path)
    with tempfile.TemporaryDirectory(prefix="mlgate-verify-") as tmp:
        try:
            check = _fetch_and_verify(settings, registry, name, version, Path(tmp))
        except RegistryUnreachable as exc:
            raise UsageError(str(exc)) from None
    verdict = "passed" if check.passed else "blocked"
    subject = {"model": name, "version": version, "registry": registry.registry_uri}
    report = {
        "schema_version": "1",
        "verdict": verdict,
        "subject": subject | {"artifact_digest": check.snapshot.artifact_digest},
        "scan_id": check.verdict.scan_id,
        "reasons": [] if check.passed else [check.why_not],
    }
    note = f"{name} v{version}: " + ("verified" if check.passed else f"not verified: {check.why_not}")
    return Outcome(verdict, report, [note])


def load_model(uri: str, *, tracking_uri: str | None = None) -> Any:
    """Load a version for serving, only if it passed a complete mlgate scan.

    The version's files are copied once into a private temporary directory; that copy is verified
    (artifact digest, complete passing scan under the current policy) and that same copy is
    loaded through the load guard, so files changed in the registry after the check are never
    loaded. Raises UntrustedModelError when the version may not be loaded.
    """
    import tempfile

    from checks.load_guard import UntrustedModelError, load_verified_model
    from checks.policy import load_policy
    from checks.store import FindingsStore
    from pipelines.verification import RegistryUnreachable

    settings, registry, name, version = _consumer_context(uri, tracking_uri, None)
    with tempfile.TemporaryDirectory(prefix="mlgate-load-") as tmp:
        try:
            check = _fetch_and_verify(settings, registry, name, version, Path(tmp))
        except RegistryUnreachable as exc:
            raise UntrustedModelError(f"refusing to load {name} v{version}: {exc}") from None
        if not check.passed:
            raise UntrustedModelError(f"refusing to load {name} v{version}: {check.why_not}")
        allow = frozenset(load_policy(settings.policy_path).checks.artifact_safety.allow)
        return load_verified_model(FindingsStore(settings.store_url), check.snapshot, allow)


def _consumer_context(uri: str, tracking_uri: str | None, policy_path: str | None):
    from pipelines.resources import RegistryResource

    settings = _environment(policy_path)
    registry_uri = tracking_uri or settings.registry_uri
    name, version = _resolve_model_uri(uri, registry_uri)
    registry = RegistryResource(tracking_uri=tracking_uri or settings.tracking_uri, registry_uri=registry_uri)
    return settings, registry, name, version


def _fetch_and_verify(settings: Any, registry: Any, name: str, version: str, destination: Path):
    from checks.policy import load_policy
    from checks.store import FindingsStore
    from pipelines.verification import fetch_and_verify

    store = FindingsStore(settings.store_url)
    policy = load_policy(settings.policy_path).with_waivers(store.stored_waivers())
    return fetch_and_verify(registry, store, policy, name, version, destination)


def findings_diff(uri: str, *, against: str | None = None, tracking_uri: str | None = None) -> dict[str, Any]:
    """A version's findings vs another version (`against`), or vs the previous scanned version and
    the alias holder: new, reintroduced, recurring and fixed, by fingerprint."""
    from checks.gates import REMEDIATION_TAG
    from checks.history import previous_version, remediation_diff, version_diff, version_findings
    from checks.policy import load_policy
    from checks.store import FindingsStore

    settings, registry, name, version = _consumer_context(uri, tracking_uri, None)
    store = FindingsStore(settings.store_url)
    if version_findings(store, registry.registry_uri, name, version) is None:
        raise UsageError(f"{uri}: mlgate has no scan of {name} v{version}")
    if against:
        other_name, other = _resolve_model_uri(against, registry.registry_uri)
        if other_name != name:
            raise UsageError(f"{against}: compare versions of the same model ({name})")
        baselines = {"requested": other}
    else:
        alias = load_policy(settings.policy_path).for_model(name).alias
        baselines = {
            "previous": previous_version(store, registry.registry_uri, name, version),
            alias: registry.alias_holder(name, alias),
        }
    diffs = {}
    source = registry.client().get_model_version(name, version).tags.get(REMEDIATION_TAG)
    remediated = remediation_diff(store, registry.registry_uri, name, version, source) if source else None
    if remediated is not None and not against:
        diffs["remediated"] = remediated.as_dict()
    for label, other in baselines.items():
        if other and other != version:
            diff = version_diff(store, registry.registry_uri, name, version, other)
            if diff is None and label == "requested":
                raise UsageError(f"{against}: mlgate has no scan of v{other}")
            if diff is not None:
                diffs[label] = diff.as_dict()
    return {"model": name, "version": version, "registry": registry.registry_uri, "diffs": diffs}


def remediate(fingerprint: str, *, policy_path: str | None = None, verbose: bool = False) -> Outcome:
    """Drop a data finding's rows from the dataset it was found in, retrain on that copy (keeping
    the logical dataset name, so fingerprints carry over) and scan the new version like any other.
    The new version is tagged with the digest of the data it remediates; its diff shows the fix."""
    from checks.gates import REMEDIATION_TAG
    from checks.store import FindingsStore
    from pipelines.storage import load_dataset, write_json_atomic

    settings = _environment(policy_path)
    store = FindingsStore(settings.store_url)
    rows = [
        r
        for r in store.list_findings(limit=1_000_000)
        if r["payload"]["fingerprint"].startswith(fingerprint) and r["kind"] == "dataset"
    ]
    if len({r["payload"]["fingerprint"] for r in rows}) > 1:
        raise UsageError(f"{fingerprint}: several data findings match; give more of the fingerprint")
    found = next((r for r in rows if r["payload"]["evidence"].get("rows")), None)  # newest first
    if found is None:
        raise UsageError(f"{fingerprint}: no stored data finding with rows to drop")
    scan = store.scan(found["scan_id"])
    dataset = load_dataset(settings.datasets_dir, scan["dataset_digest"]) if scan else None
    if dataset is None:
        raise UsageError(f"{fingerprint}: the dataset it was found in is no longer stored (see mlgate gc)")
    drop = sorted(set(found["payload"]["evidence"]["rows"]))
    frame = dataset.frame()
    cleansed = frame.drop(index=frame.index[drop]).reset_index(drop=True)
    target = settings.home / "remediated" / f"{dataset.digest[:12]}-{found['payload']['fingerprint'][:8]}"
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{dataset.name}.parquet"
    cleansed.to_parquet(path, index=False)
    write_json_atomic(
        target / "remediation.json",
        {"fingerprint": found["payload"]["fingerprint"], "source_digest": dataset.digest, "dropped": drop},
    )
    outcome = run(
        data=str(path),
        label=dataset.label,
        model_name=scan["model_name"],
        policy_path=policy_path,
        verbose=verbose,
        dataset_name=dataset.name,
        version_tags={REMEDIATION_TAG: dataset.digest},
    )
    note = f"dropped {len(drop)} rows of {dataset.name} ({dataset.digest[:12]}); wrote {path}"
    outcome.notes.insert(0, note)
    return outcome
