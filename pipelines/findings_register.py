"""Gather the findings register from the store, the policy and the registry's owner tags."""

from __future__ import annotations

from typing import Any

from checks.history import current_fingerprints
from checks.policy import Policy
from checks.register import build_register
from checks.store import FindingsStore

OWNER_TAGS = ("owner", "mlgate.owner")


def registry_owners(client: Any, models: set[str]) -> dict[str, str]:
    """Each model's owner tag in the registry (registered-model tags); unreachable → none."""
    owners: dict[str, str] = {}
    for name in sorted(m for m in models if m):
        try:
            tags = client.get_registered_model(name).tags or {}
        except Exception:  # noqa: BLE001 - a model missing from this registry simply has no tag here
            continue
        owner = next((tags[t] for t in OWNER_TAGS if tags.get(t)), None)
        if owner:
            owners[name] = owner
    return owners


def load_register(store: FindingsStore, policy: Policy, client: Any | None = None) -> list[dict[str, Any]]:
    """The register, highest risk first, with fixed/open/waived status and owners."""
    rows = store.list_findings(limit=1_000_000)
    owners = registry_owners(client, {r["model_name"] for r in rows}) if client is not None else {}
    return build_register(rows, policy, current=current_fingerprints(store), owners=owners)
