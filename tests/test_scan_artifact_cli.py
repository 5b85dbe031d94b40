"""`mlgate scan-artifact`: exit codes, strict JSON evidence, SARIF 2.1.0, policy allowlist."""

from __future__ import annotations

import gzip
import json
import pickle

import numpy as np
import pytest

from tests.artifact_corpus import SystemCanary, TeamModel
from tests.conftest import SHARED_DATA
from tests.test_cli import mlgate


@pytest.fixture()
def corpus(tmp_path):
    canary = tmp_path / "CANARY"
    evil = tmp_path / "model.joblib"  # the name says joblib; the content is a gzip-wrapped pickle
    evil.write_bytes(gzip.compress(pickle.dumps({"weights": [1, 2], "hook": SystemCanary(canary)})))
    clean = tmp_path / "weights.npy"
    np.save(clean, np.arange(10.0))
    team = tmp_path / "team.pkl"
    team.write_bytes(pickle.dumps(TeamModel()))
    return tmp_path, canary, evil, clean, team


def test_a_payload_blocks_with_global_offset_and_member_evidence(corpus) -> None:
    _, canary, evil, clean, _ = corpus
    result = mlgate("scan-artifact", str(evil), str(clean), "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    [finding] = [f for f in report["findings"] if f["severity"] == "critical"]
    assert finding["evidence"]["global"] in ("posix.system", "os.system")
    assert isinstance(finding["evidence"]["offset"], int) and "member" in finding["evidence"]
    assert finding["taxonomy"]["owasp_ml"] == "ML06:2023"
    assert report["checks"] == [{"name": "artifact_safety", "status": "failed"}]
    assert not canary.exists()


def test_clean_files_pass_and_a_missing_path_exits_2(corpus) -> None:
    tmp, _, _, clean, _ = corpus
    assert mlgate("scan-artifact", str(clean)).returncode == 0
    missing = mlgate("scan-artifact", str(tmp / "nope.pkl"))
    assert missing.returncode == 2 and missing.stderr.strip().endswith("nope.pkl: no such file or directory")


def test_policy_allow_entries_trust_a_team_class(corpus) -> None:
    tmp, _, _, _, team = corpus
    assert mlgate("scan-artifact", str(team)).returncode == 1, "an unknown class that is constructed is high"
    policy = tmp / "policy.yaml"
    policy.write_text("checks:\n  artifact_safety:\n    allow: [tests.artifact_corpus.TeamModel]\n")
    assert mlgate("scan-artifact", str(team), "--policy", str(policy)).returncode == 0
    policy.write_text("checks:\n  artifact_safety:\n    allow: ['tests.*']\n")
    bad = mlgate("scan-artifact", str(team), "--policy", str(policy))
    assert bad.returncode == 2 and "exact module.name" in bad.stderr


def test_sarif_output_is_valid_sarif_2_1_0(corpus) -> None:
    _, _, evil, _, _ = corpus
    sarif = json.loads(mlgate("scan-artifact", str(evil), "--format", "sarif").stdout)
    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0" and run["tool"]["driver"]["name"] == "mlgate"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["artifact_safety"]
    assert {r["level"] for r in run["results"]} == {"error"}
    assert all(r["partialFingerprints"]["mlgate/v1"] for r in run["results"])
    schema = SHARED_DATA / "sarif-schema-2.1.0.json"
    if not schema.is_file():
        pytest.skip(f"SARIF schema not available: {schema} (../shared/data is absent); structure checked")
    import jsonschema

    jsonschema.validate(sarif, json.loads(schema.read_text()))
