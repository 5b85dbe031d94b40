"""The findings register from the command line: retrain diffs, risk-ordered filters and exports."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from tests.conftest import BUNDLED, SHARED_DATA, register_external
from tests.test_cli import mlgate


@pytest.fixture()
def three_versions(env):
    """v1 and v3 without a signature (medium findings), v2 with one: fixed, then reintroduced."""
    df = pd.read_csv(BUNDLED)
    features = df.drop(columns=["diagnosis"])
    model = LogisticRegression(max_iter=5000).fit(features, df["diagnosis"])
    for signature in (False, True, False):
        version = register_external(env, model, features, signature=signature)
        assert env.scan("demo", version).success
    env.client.set_registered_model_tag("demo", "owner", "team-a@example.com")
    return env


def _keys(diff: dict, status: str) -> set[str]:
    return {f["title"] for f in diff[status]}


def _diffs_list_fixed_then_reintroduced_findings(env) -> None:
    fixed = json.loads(mlgate("findings", "diff", "models:/demo/2", "--format", "json", home=env.home).stdout)
    assert _keys(fixed["diffs"]["previous"], "fixed") == {
        "Model has no signature",
        "Model has no input example",
    }
    assert fixed["diffs"]["previous"]["against"] == "1"
    back = mlgate(
        "findings", "diff", "models:/demo/3", "--against", "models:/demo/2", "--format", "json", home=env.home
    )
    diff = json.loads(back.stdout)["diffs"]["requested"]
    assert _keys(diff, "reintroduced") == {"Model has no signature", "Model has no input example"}
    assert not diff["new"] and diff["counts"]["recurring"] >= 1
    report = json.loads(
        (env.home / "reports")
        .joinpath(env.version_tags("demo", 3)["mlgate.report_uri"].rsplit("/", 1)[1])
        .read_text()
    )
    assert report["diff"]["previous"]["counts"]["reintroduced"] == 2, "the scan report carries the diff"
    unknown = mlgate("findings", "diff", "models:/demo/9", home=env.home)
    assert unknown.returncode == 2


def _filters_return_exactly_the_matching_findings_sorted_by_risk(env) -> None:
    everything = json.loads(mlgate("findings", "list", "--format", "json", home=env.home).stdout)
    assert [e["risk"]["score"] for e in everything] == sorted(
        (e["risk"]["score"] for e in everything), reverse=True
    )
    for flags, keep in [
        (["--severity", "medium"], lambda e: e["severity"] in ("medium", "high", "critical")),
        (["--check", "registry_validation"], lambda e: e["check"] == "registry_validation"),
        (["--version", "2"], lambda e: "2" in e["versions"]),
        (["--status", "open", "--model", "demo"], lambda e: e["status"] == "open" and e["model"] == "demo"),
        (["--stage", "registration"], lambda e: e["stage"] == "registration"),
    ]:
        listed = json.loads(mlgate("findings", "list", "--format", "json", *flags, home=env.home).stdout)
        assert {e["fingerprint"] for e in listed} == {e["fingerprint"] for e in everything if keep(e)}, flags
        assert listed, flags
    signature = next(e for e in everything if e["title"] == "Model has no signature")
    assert signature["versions"] == ["1", "3"] and signature["status"] == "open"
    assert signature["owner"] == "team-a@example.com" and signature["due_date"]


def _exports_csv_and_sarif_with_waived_findings_as_suppressions(env) -> None:
    listed = json.loads(mlgate("findings", "list", "--format", "json", home=env.home).stdout)
    signature = next(e for e in listed if e["title"] == "Model has no signature")
    env.set_policy(
        f"waivers:\n  - fingerprint: {signature['fingerprint']}\n    owner: sec@example.com\n"
        "    reason: accepted for the batch scorer\n    expires: 2099-01-01\n"
    )
    policy = {"MLGATE_POLICY": str(env.home / "policy.yaml")}
    table = mlgate("findings", "export", "--format", "csv", home=env.home, **policy).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert list(rows[0]) == [
        "fingerprint",
        "title",
        "severity",
        "risk",
        "owner",
        "due_date",
        "status",
        "owasp_ml",
        "atlas",
        "model",
        "check",
        "stage",
        "first_seen",
        "last_seen",
    ]
    assert {r["fingerprint"]: r["status"] for r in rows}[signature["fingerprint"]] == "waived"
    sarif = json.loads(mlgate("findings", "export", "--format", "sarif", home=env.home, **policy).stdout)
    results = sarif["runs"][0]["results"]
    waived = [r for r in results if r["partialFingerprints"]["mlgate/v1"] == signature["fingerprint"]]
    assert waived and waived[0]["suppressions"][0]["kind"] == "external"
    assert all("suppressions" not in r for r in results if r not in waived)
    schema = SHARED_DATA / "sarif-schema-2.1.0.json"
    if schema.is_file():
        import jsonschema

        jsonschema.validate(sarif, json.loads(schema.read_text()))
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["tool"]["driver"]["rules"]


def test_register_diffs_filters_and_exports(three_versions) -> None:
    """One registry of three scanned versions (scans are slow), three behaviours."""
    _diffs_list_fixed_then_reintroduced_findings(three_versions)
    _filters_return_exactly_the_matching_findings_sorted_by_risk(three_versions)
    _exports_csv_and_sarif_with_waived_findings_as_suppressions(three_versions)
