"""Jobs: `retrain` (collection to a registered candidate), `scan_version` (scan and deploy) and
`rescan_version` (scan again without deploying: a rescan never moves an alias)."""

from __future__ import annotations

import dagster as dg

from pipelines.partitions import model_versions

RETRAIN_ASSETS = ["raw_data", "training_data", "audit_predictions", "candidate_model"]
SCAN_ASSETS = ["model_version", "model_evaluation", "deployment"]
RESCAN_ASSETS = ["model_version", "model_evaluation"]

retrain_job = dg.define_asset_job(
    "retrain",
    selection=dg.AssetSelection.assets(*RETRAIN_ASSETS),
    description="Load the source, validate it, audit its labels, train and register a candidate.",
)


def _version_job(name: str, assets: list[str], description: str) -> dg.UnresolvedAssetJobDefinition:
    """A job over one `model_versions` partition, run in process (one version, one step chain)."""
    return dg.define_asset_job(
        name,
        selection=dg.AssetSelection.assets(*assets),
        partitions_def=model_versions,
        executor_def=dg.in_process_executor,
        description=description,
    )


scan_version_job = _version_job(
    "scan_version",
    SCAN_ASSETS,
    "Snapshot a registered version, scan it, evaluate it and deploy it if it passes.",
)
rescan_version_job = _version_job(
    "rescan_version",
    RESCAN_ASSETS,
    "Scan a registered version again (new policy, new advisories); never deploys.",
)

refresh_register_job = dg.define_asset_job(
    "refresh_register",
    selection=dg.AssetSelection.assets("findings_register"),
    description="Rebuild the findings register from the store.",
)
