"""Artifact safety: the static scanner (checks.artifact_scan) over every file of a model version,
and the trust decisions the load guard shares with it.

Nothing is imported, unpickled or loaded here: the scanner reads bytes. The load guard later
trusts exactly the names the scanner allows (its built-in exact allowlist plus the policy's
`allow` entries, the denylist always winning), so what the gate passed is what may be loaded.
"""

from __future__ import annotations

from pathlib import Path

from checks.artifact_scan import VERSION as SCANNER_VERSION
from checks.artifact_scan import ScanPolicy, scan_path
from checks.artifact_scan.rules import classify, classify_name
from checks.findings import Finding

VERSION = f"2.{SCANNER_VERSION}"
CHECK = "artifact_safety"
TAXONOMY = {"owasp_ml": "ML06:2023", "atlas": "AML.T0010"}


def scan_model_artifact(
    root: Path, policy: ScanPolicy, *, subject_identity: str, subject: dict | None = None
) -> list[Finding]:
    """Findings for everything in a model version's files that a load could import or run."""
    return scan_path(root, policy=policy, subject_identity=subject_identity, subject=subject)


def trusted_name(full: str, allow: frozenset[str] = frozenset()) -> bool:
    """True when the scanner allows `module.name` outright (never for denied or unknown names)."""
    return classify_name(full, allow).status == "allow"


def trusted_global(module: str, name: str, allow: frozenset[str] = frozenset()) -> bool:
    """The same judgement for a pickle GLOBAL (Python 2 names mapped as pickle maps them)."""
    return classify(module, name, allow).status == "allow"
