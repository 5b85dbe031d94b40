"""The detection model's out-of-fold probabilities for a training snapshot, computed once and
kept beside the snapshot (keyed by the detection-model settings), so every check reuses them."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from checks.detectors.tabular import PreparedData, out_of_fold_probabilities, prepare
from checks.policy import DetectionModelConfig
from pipelines.storage import DatasetSnapshot, write_json_atomic


@dataclass
class AuditPredictions:
    """Out-of-fold class probabilities for every labelled row of one snapshot."""

    dataset_digest: str
    path: str
    classes: list
    labels: list[int]
    row_positions: list[int]
    dropped_columns: list[str]

    def probabilities(self) -> np.ndarray:
        return np.load(self.path)


def detection_probabilities(prepared: PreparedData, config: DetectionModelConfig) -> np.ndarray:
    """Out-of-fold probabilities of the policy's detection model on prepared data."""
    return out_of_fold_probabilities(
        prepared.features,
        prepared.labels,
        estimator=config.estimator,
        max_folds=config.max_folds,
        seed=config.seed,
        kernel_max_rows=config.kernel_max_rows,
    )


def compute_audit_predictions(snapshot: DatasetSnapshot, config: DetectionModelConfig) -> AuditPredictions:
    """Compute (or reuse from disk) the detection model's out-of-fold probabilities."""
    key = f"{config.estimator}-k{config.kernel_max_rows}-f{config.max_folds}-s{config.seed}"
    base = Path(snapshot.directory)
    probs_path, meta_path = base / f"oof-{key}.npy", base / f"oof-{key}.json"
    if probs_path.is_file() and meta_path.is_file():
        return AuditPredictions(**json.loads(meta_path.read_text()))
    prepared = prepare(snapshot.frame(), snapshot.label)
    probs = detection_probabilities(prepared, config)
    audit = AuditPredictions(
        snapshot.digest,
        str(probs_path),
        prepared.classes,
        prepared.labels.tolist(),
        prepared.labelled_rows.tolist(),
        prepared.id_columns + prepared.dropped_text_columns,
    )
    fd, tmp = tempfile.mkstemp(dir=base, prefix=".tmp-", suffix=".npy")
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, probs)
    os.replace(tmp, probs_path)
    write_json_atomic(meta_path, asdict(audit))
    return audit
