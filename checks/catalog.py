"""Every check mlgate runs: its stage, the asset it checks and its detector version.

A new check is one detector module and one line here (plus its callable in the stage's gate).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckInfo:
    """One check; its detector module is imported only when its version or taxonomy is read, so
    commands that need one light detector (scan-artifact) do not pay for the heavy ones."""

    name: str
    stage: str
    asset: str
    detector: str  # module under checks.detectors
    description: str

    @property
    def version(self) -> str:
        return self._module().VERSION

    @property
    def taxonomy(self) -> dict[str, str]:
        return self._module().TAXONOMY

    def _module(self):
        return importlib.import_module(f"checks.detectors.{self.detector}")


def _info(name: str, stage: str, asset: str, detector: str, description: str) -> CheckInfo:
    return CheckInfo(name, stage, asset, detector, description)


CHECKS = [
    _info(
        "data_quality",
        "data",
        "training_data",
        "data_quality",
        "Expectation suite (GX Core) or baseline contract on the training snapshot",
    ),
    _info(
        "label_noise",
        "data",
        "audit_predictions",
        "label_noise",
        "Mislabelled / flipped-label rows: cleanlab on out-of-fold probabilities, ranked with a kNN vote",
    ),
    _info(
        "poisoning",
        "data",
        "audit_predictions",
        "poisoning",
        "Backdoor triggers, conflicting near-duplicates, targeted label flips and outliers",
    ),
    _info(
        "artifact_safety",
        "registration",
        "model_version",
        "artifact",
        "Static scan of the model artifact before anything loads it",
    ),
    _info(
        "registry_validation",
        "registration",
        "model_version",
        "registry",
        "Signature, input example, lineage to checked data, owner",
    ),
    _info(
        "dependency_advisories",
        "registration",
        "model_version",
        "dependencies",
        "Model environment pins against a local OSV advisory snapshot; unpinned requirements",
    ),
    _info(
        "performance",
        "evaluation",
        "model_evaluation",
        "performance",
        "Holdout metrics not regressed against the champion",
    ),
]
CHECKS += [
    _info(
        "robustness",
        "evaluation",
        "model_evaluation",
        "robustness",
        "Robust accuracy under black-box evasion within epsilon, vs a floor and the champion",
    ),
    _info(
        "membership_inference",
        "evaluation",
        "model_evaluation",
        "privacy",
        "Membership-inference attack AUC and advantage on training vs holdout rows",
    ),
]
BY_NAME = {c.name: c for c in CHECKS}
DATA_CHECKS = [c.name for c in CHECKS if c.stage == "data"]
MODEL_CHECKS = [c.name for c in CHECKS if c.stage != "data"]


def checks_for_asset(asset: str) -> list[CheckInfo]:
    return [c for c in CHECKS if c.asset == asset]


def detector_versions(names: list[str]) -> str:
    """Digest of the named checks' detector versions (part of every stored result's key)."""
    table = {n: BY_NAME[n].version for n in sorted(names)}
    return hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()[:16]
