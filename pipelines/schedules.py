"""Schedules: a nightly retrain (stopped by default; start it in the UI)."""

from __future__ import annotations

import dagster as dg

from pipelines.jobs import retrain_job

nightly_retrain = dg.ScheduleDefinition(
    name="nightly_retrain",
    job=retrain_job,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain on the configured source every night; data checks gate the retrain.",
)
