"""The poisoning check in `mlgate scan-data` and in the retrain gate: a backdoor built by the test
on scikit-learn's digits is flagged with its rows and blocks; the clean digits pass."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from tests.test_cli import mlgate

TARGET = 0


@pytest.fixture(scope="module")
def digits() -> pd.DataFrame:
    data = load_digits(as_frame=True)
    return data.frame.rename(columns={"target": "digit"})


def backdoored(digits: pd.DataFrame, fraction: float = 0.03, seed: int = 7) -> tuple[pd.DataFrame, list[int]]:
    """Set a 4-pixel trigger in the bottom-right corner of `fraction` of the non-target rows and
    relabel them to TARGET (the classic pixel-trigger backdoor)."""
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(digits["digit"].to_numpy() != TARGET)
    rows = np.sort(rng.choice(candidates, round(fraction * len(digits)), replace=False))
    poisoned = digits.copy()
    for pixel in ("pixel_6_6", "pixel_6_7", "pixel_7_6", "pixel_7_7"):
        poisoned.loc[rows, pixel] = 16.0
    poisoned.loc[rows, "digit"] = TARGET
    return poisoned, rows.tolist()


def test_a_pixel_backdoor_blocks_scan_data_with_its_rows(digits, tmp_path) -> None:
    poisoned, rows = backdoored(digits)
    path = tmp_path / "digits.csv"
    poisoned.to_csv(path, index=False)
    result = mlgate("scan-data", str(path), "--label", "digit", "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    [backdoor] = [
        f for f in report["findings"] if f["check"] == "poisoning" and f["key"] == f"backdoor:{TARGET}"
    ]
    assert backdoor["severity"] == "high"
    flagged = set(backdoor["evidence"]["rows"])
    assert len(flagged & set(rows)) >= 0.9 * len(rows) and len(flagged & set(rows)) >= 0.8 * len(flagged)
    assert backdoor["taxonomy"]["owasp_ml"] == "ML02:2023"


def test_clean_digits_raise_no_poisoning_finding_at_medium_or_above(digits, tmp_path) -> None:
    path = tmp_path / "digits.csv"
    digits.to_csv(path, index=False)
    report = json.loads(mlgate("scan-data", str(path), "--label", "digit", "--format", "json").stdout)
    serious = [
        f
        for f in report["findings"]
        if f["check"] == "poisoning" and f["severity"] in ("medium", "high", "critical")
    ]
    assert serious == []


def test_a_backdoored_retrain_is_blocked_before_a_model_is_trained(env, digits, tmp_path) -> None:
    poisoned, rows = backdoored(digits)
    path = tmp_path / "digits.csv"
    poisoned.to_csv(path, index=False)
    result = env.retrain(path=path, label="digit", model="digits")
    assert not result.success
    assert not env.client.search_model_versions("name = 'digits'"), "nothing was registered"
    scan = env.store.latest_scan("dataset", model_name="digits")
    poisoning = env.store.checks_of(scan["id"])["poisoning"]
    assert poisoning.status == "failed"
    [backdoor] = [f for f in poisoning.findings if f.key == f"backdoor:{TARGET}"]
    assert len(set(backdoor.evidence["rows"]) & set(rows)) >= 0.9 * len(rows)
