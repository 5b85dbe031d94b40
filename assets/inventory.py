"""Governance: the AI inventory, a CycloneDX 1.6 AI-BOM of every registered model version, its
training data, its dependencies and the findings on them."""

from typing import Any

import dagster as dg

from checks.bom import bom_counts, build_bom, validate_bom
from pipelines.inventory import InventoryError, gather_inventory
from pipelines.resources import HomeResource, PolicyResource, RegistryResource, StoreResource
from pipelines.storage import write_json_atomic

BOM_FILE = "ai_bom.cdx.json"


def _versions_table(document: dict[str, Any]) -> str:
    rows = ["| model | version | verdict | aliases |", "|---|---|---|---|"]
    for c in document["components"]:
        if c["type"] == "machine-learning-model":
            props = c.get("properties", [])
            verdict = next((p["value"] for p in props if p["name"] == "mlgate:verdict"), "")
            aliases = ", ".join(p["value"] for p in props if p["name"] == "mlgate:alias")
            rows.append(f"| {c['name']} | {c['version']} | {verdict} | {aliases} |")
    return "\n".join(rows[:52])


@dg.asset(group_name="governance", deps=["findings_register"], kinds={"mlflow"})
def ai_inventory(
    registry: RegistryResource, store: StoreResource, policy: PolicyResource, home: HomeResource
) -> dg.MaterializeResult:
    """Every registered model version with its digests, aliases and verdict, the datasets it was
    trained on, its Python dependencies and its findings, as a CycloneDX 1.6 AI-BOM (validated
    strictly before it is written)."""
    from mlgate import __version__

    try:
        inventory = gather_inventory(
            registry.client(),
            store.open(),
            policy.load(),
            registry_uri=registry.registry_uri,
            cache_dir=home.cache_dir,
            datasets_dir=home.datasets_dir,
            tool_version=__version__,
        )
    except InventoryError as exc:
        raise dg.Failure(description=str(exc)) from None
    document = build_bom(inventory)
    problems = validate_bom(document)
    if problems:
        raise dg.Failure(description=f"the AI-BOM is not valid CycloneDX 1.6: {'; '.join(problems[:5])}")
    path = home.reports_dir / BOM_FILE
    write_json_atomic(path, document)
    return dg.MaterializeResult(
        metadata={
            **bom_counts(document),
            "versions_table": dg.MetadataValue.md(_versions_table(document)),
            "path": path.as_posix(),
        }
    )
