"""Thresholds of the poisoning check, the names its findings use, and the cooperative deadline."""

from __future__ import annotations

from dataclasses import dataclass

from checks.runner import DeadlineReached  # noqa: F401 - re-exported: the runner reports it as timeout

VERSION = "2"
CHECK = "poisoning"
TAXONOMY = {"owasp_ml": "ML02:2023", "atlas": "AML.T0020"}
PATTERNS = ("backdoor", "conflicting_duplicates", "targeted_flip", "outliers")


@dataclass(frozen=True)
class PoisoningConfig:
    """Knobs of the poisoning check; the defaults are the ones measured in bench/RESULTS.md."""

    # shared
    neighbors: int = 10  # k of the label-consistency kNN
    reference_rows: int = 10_000  # kNN models are fitted on at most this many rows; every row is scored
    min_group_rows: int = 5  # smallest backdoor group or flipped class pair reported
    seed: int = 0  # subsampling seed
    # (a) backdoor: a rare feature pattern carried by one label, on rows that otherwise look like others
    backdoor_purity: float = 0.9  # share of a rare-value tail that must carry the target label
    backdoor_min_foreign: float = 0.7  # 0 = the group looks like its labelled class, 1 = like the others
    backdoor_severity: str = "high"
    # (b) near-duplicate rows with different labels
    duplicate_tolerance: float = 0.05  # RMS difference per feature (standard deviations) of near-duplicates
    duplicate_medium_fraction: float = 0.001  # conflicting rows / rows at which the finding is medium
    duplicate_high_fraction: float = 0.01  # ... and high; below medium it is low
    # (c) label flips concentrated on one (source -> given) class pair
    flip_min_rate: float = 0.03  # flipped rows / rows of the source class
    flip_ratio: float = 4.0  # times the reverse direction (size-adjusted) plus one
    flip_severity: str = "high"
    # (d) outliers: rows far from every other row
    outlier_threshold: float = 4.0  # robust z of the log distance to the k-th nearest row
    outlier_severity: str = "low"
