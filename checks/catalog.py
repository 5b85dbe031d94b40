"""Every check mlgate runs: its stage, the asset it checks and its detector version.

A new check is one detector module and one line here (plus its callable in the stage's gate).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from checks.detectors import artifact, data_quality, label_noise, performance, registry


@dataclass(frozen=True)
class CheckInfo:
    name: str
    stage: str
    asset: str
    version: str
    description: str


CHECKS = [
    CheckInfo(
        "data_quality",
        "data",
        "training_data",
        data_quality.VERSION,
        "Expectation suite (GX Core) or baseline contract on the training snapshot",
    ),
    CheckInfo(
        "label_noise",
        "data",
        "audit_predictions",
        label_noise.VERSION,
        "Mislabelled / flipped-label rows from out-of-fold probabilities (cleanlab)",
    ),
    CheckInfo(
        "artifact_safety",
        "registration",
        "model_version",
        artifact.VERSION,
        "Static scan of the model artifact before anything loads it",
    ),
    CheckInfo(
        "registry_validation",
        "registration",
        "model_version",
        registry.VERSION,
        "Signature, input example, lineage to checked data, owner",
    ),
    CheckInfo(
        "performance",
        "evaluation",
        "model_evaluation",
        performance.VERSION,
        "Holdout metrics not regressed against the champion",
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
