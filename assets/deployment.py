"""Deployment: re-verify the complete scan of the exact artifact, then move the alias."""

import dagster as dg

from checks.detectors.registry import LINEAGE_TAG
from checks.verdict import version_verdict
from pipelines.partitions import model_versions
from pipelines.resources import (
    HomeResource,
    PolicyResource,
    RegistryResource,
    StoreResource,
    registry_for_partition,
)
from pipelines.storage import alias_lock


@dg.asset(group_name="scan", partitions_def=model_versions, deps=["model_evaluation"], kinds={"mlflow"})
def deployment(
    context: dg.AssetExecutionContext,
    registry: RegistryResource,
    store: StoreResource,
    policy: PolicyResource,
    home: HomeResource,
) -> dg.MaterializeResult:
    """Promote the version only if a complete scan of its current registry files passed.

    Does not trust the run graph: the artifact digest is recomputed from the registry, and the
    verdict from stored findings and the current waivers. The alias moves only forward, only
    past the champion this version was compared with, under a per-alias lock. Refusal fails the
    step and is recorded.
    """
    registry, name, version = registry_for_partition(registry, home, context.partition_key)
    current_policy = policy.load()
    model_policy = current_policy.for_model(name)
    findings_store = store.open()
    client = registry.client()
    mv = client.get_model_version(name, version)
    digest = registry.artifact_digest(name, version)
    verdict = version_verdict(
        findings_store,
        current_policy,
        registry_uri=registry.registry_uri,
        name=name,
        version=version,
        artifact_digest=digest,
        dataset_digest=(mv.tags or {}).get(LINEAGE_TAG),
    )
    record = dict(
        scan_id=verdict.scan_id,
        registry_uri=registry.registry_uri,
        model_name=name,
        version=version,
        artifact_digest=digest,
        policy_digest=current_policy.digest,
        alias=model_policy.alias,
        verdict=verdict.verdict,
        run_id=context.run_id,
    )
    if not verdict.deployable:
        blocking = [f for f in verdict.findings if current_policy.blocks(f, name)]
        why = "; ".join(verdict.reasons + [f"{f.severity.label}: {f.title}" for f in blocking[:5]])
        reason = f"refusing to deploy {name} v{version}: {why or 'scan did not pass'}"
        findings_store.record_decision(action="refuse", reason=reason, **record)
        raise dg.Failure(description=reason)
    covered = verdict.checks["performance"].detail.get("covered", {})
    compared = "compared_with" in covered  # absent when there was no holdout to compare on
    compared_with = covered.get("compared_with")
    with alias_lock(home.path, name, model_policy.alias):
        holder = registry.alias_holder(name, model_policy.alias)
        if not model_policy.auto_promote:
            action, reason = "hold", "passed; auto-promotion is off for this model"
        elif holder is not None and int(holder) >= int(version):
            action, reason = "hold", f"passed; {model_policy.alias} already holds v{holder} (not older)"
        elif compared and holder != compared_with:
            reason = (
                f"refusing to deploy {name} v{version}: it was compared with "
                f"{'v' + compared_with if compared_with else 'no champion'}, but {model_policy.alias} "
                f"now holds v{holder}; rescan it"
            )
            findings_store.record_decision(action="refuse", reason=reason, **record)
            raise dg.Failure(description=reason)
        else:
            action, reason = "promote", f"moved {model_policy.alias} from v{holder or '-'} to v{version}"
        # recorded before the alias moves, so a promotion is never unrecorded
        findings_store.record_decision(action=action, reason=reason, **record)
        if action == "promote":
            client.set_registered_model_alias(name, model_policy.alias, version)
    context.log.info(reason)
    return dg.MaterializeResult(
        metadata={"action": action, "reason": reason, "artifact_digest": digest, "alias": model_policy.alias}
    )
