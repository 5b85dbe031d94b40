"""Registry validation: signature, input example, lineage to checked data, and an owner."""

from __future__ import annotations

from dataclasses import dataclass

from checks.findings import Finding, Severity

VERSION = "2"
CHECK = "registry_validation"
TAXONOMY = {"owasp_ml": "ML10:2023", "atlas": "AML.T0010"}
LINEAGE_TAG = "mlgate.dataset_digest"
OWNER_TAGS = ("owner", "mlgate.owner")


@dataclass(frozen=True)
class RegistryFacts:
    """What the registry says about one version (read without deserialising the model)."""

    has_signature: bool
    has_input_example: bool
    tags: dict[str, str]  # version tags merged over registered-model tags
    data_verdict: str | None  # passed | blocked | None (no stored data checks)
    data_retrievable: bool  # the training snapshot for the lineage digest is available
    policy_owner: str | None = None
    lineage_note: str = ""  # why training data logged with the version could not be retrieved


def validate_registry_entry(
    facts: RegistryFacts, *, subject_identity: str, subject: dict | None = None
) -> list[Finding]:
    """Governance gaps are medium or lower; lineage to data that failed its checks is high."""

    def finding(severity: Severity, key: str, title: str, remediation: str, **evidence) -> Finding:
        return Finding(
            check=CHECK,
            severity=severity,
            title=title,
            stage="registration",
            subject_identity=subject_identity,
            key=key,
            subject=subject or {},
            evidence=evidence,
            taxonomy=TAXONOMY,
            remediation=remediation,
        )

    found = []
    if not facts.has_signature:
        found.append(
            finding(
                Severity.MEDIUM,
                "no_signature",
                "Model has no signature",
                "Log the model with a signature (mlflow.models.infer_signature).",
            )
        )
    if not facts.has_input_example:
        found.append(
            finding(
                Severity.MEDIUM,
                "no_input_example",
                "Model has no input example",
                "Log the model with input_example=...",
            )
        )
    digest = facts.tags.get(LINEAGE_TAG)
    if not digest and facts.lineage_note:
        found.append(
            finding(
                Severity.MEDIUM,
                "training_data_not_retrievable",
                "Training data of this version is not retrievable, so its data checks did not run",
                "Log the training data as a run artifact or as a dataset input with a readable source "
                f"(mlflow.data.from_pandas(df, source=PATH)), or tag the version {LINEAGE_TAG}.",
                reason=facts.lineage_note,
            )
        )
    elif not digest:
        found.append(
            finding(
                Severity.MEDIUM,
                "no_lineage",
                f"No lineage tag {LINEAGE_TAG}",
                f"Tag the version with {LINEAGE_TAG} = the digest of its training data "
                "(mlgate's retrain does this).",
            )
        )
    elif facts.data_verdict == "blocked":
        found.append(
            finding(
                Severity.HIGH,
                "lineage_data_blocked",
                "Model was trained on data that failed mlgate's data checks",
                "Fix the data findings and retrain.",
                dataset_digest=digest,
            )
        )
    elif facts.data_verdict is None:
        reason = (
            "has no stored data-check result"
            if facts.data_retrievable
            else "is not retrievable, so its data checks cannot run"
        )
        found.append(
            finding(
                Severity.MEDIUM,
                "lineage_unverified",
                f"Training data {digest[:12]} {reason}",
                "Retrain through mlgate or keep the training snapshot available.",
                dataset_digest=digest,
            )
        )
    if not facts.policy_owner and not any(facts.tags.get(t) for t in OWNER_TAGS):
        found.append(
            finding(
                Severity.LOW,
                "no_owner",
                "No owner tag",
                "Set an `owner` tag on the registered model or in the policy.",
            )
        )
    return found
