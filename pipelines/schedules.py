"""Schedules: a nightly retrain and a weekly rescan of every version that holds an alias.

Both are stopped by default; start them in the UI. The rescan runs `rescan_version` (current
detectors and policy, never `deployment`): a new blocking finding marks the holder at risk, fails
the run and, where the policy says so, moves the alias back.
"""

from __future__ import annotations

import dagster as dg

from pipelines.jobs import rescan_version_job, retrain_job
from pipelines.partitions import partition_key
from pipelines.resources import RegistryResource, registry_pages

nightly_retrain = dg.ScheduleDefinition(
    name="nightly_retrain",
    job=retrain_job,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain on the configured source every night; data checks gate the retrain.",
)


def alias_holders(registry: RegistryResource) -> list[str]:
    """Partition keys of every version that holds an alias in the configured registry."""
    keys = {
        partition_key(model.name, version)
        for model in registry_pages(registry.client().search_registered_models)
        for version in (model.aliases or {}).values()
    }
    return sorted(keys)


@dg.schedule(
    job=rescan_version_job,
    cron_schedule="0 3 * * 0",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Rescan every alias holder weekly with the current detectors (never deploys).",
)
def weekly_rescan(context: dg.ScheduleEvaluationContext, registry: RegistryResource) -> list[dg.RunRequest]:
    keys = alias_holders(registry)
    context.instance.add_dynamic_partitions("model_versions", keys)
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(run_key=f"{key}@{stamp}", partition_key=key) for key in keys]
