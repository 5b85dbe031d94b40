"""Jobs: `retrain` (collection to a registered candidate) and `scan_version` (scan and deploy)."""

from __future__ import annotations

import dagster as dg

from pipelines.partitions import model_versions

RETRAIN_ASSETS = ["raw_data", "training_data", "audit_predictions", "candidate_model"]
SCAN_ASSETS = ["model_version", "model_evaluation", "deployment"]

retrain_job = dg.define_asset_job(
    "retrain",
    selection=dg.AssetSelection.assets(*RETRAIN_ASSETS),
    description="Load the source, validate it, audit its labels, train and register a candidate.",
)

scan_version_job = dg.define_asset_job(
    "scan_version",
    selection=dg.AssetSelection.assets(*SCAN_ASSETS),
    partitions_def=model_versions,
    description="Snapshot a registered version, scan it, evaluate it and deploy it if it passes.",
)
