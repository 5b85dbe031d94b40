"""The AI-BOM: strict CycloneDX 1.6 from plain inputs, and from a real registry through the
`ai_inventory` asset and `mlgate bom`."""

from __future__ import annotations

import datetime as dt
import json
import socket

import dagster as dg
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from checks.bom import (
    DatasetEntry,
    Inventory,
    Package,
    VersionEntry,
    WaiverEntry,
    build_bom,
    validate_bom,
)
from checks.findings import Finding
from mlgate.cli import main
from tests.conftest import BUNDLED, register_external
from tests.test_cli import mlgate

DIGEST = "d" * 64
OWASP = "https://owasp.org/www-project-machine-learning-security-top-10/"


def _props(element: dict, name: str) -> list[str]:
    return [p["value"] for p in element.get("properties", []) if p["name"] == f"mlgate:{name}"]


def _by_ref(document: dict) -> dict[str, dict]:
    return {c["bom-ref"]: c for c in document["components"]}


def _finding(check: str, severity: str, key: str, **extra) -> Finding:
    return Finding(
        check=check,
        severity=severity,
        title=f"{check} {key}",
        stage="registration",
        subject_identity="m",
        key=key,
        **extra,
    )


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation must never fetch a schema: any connection attempt fails the test."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("network access during BOM validation")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _inventory() -> tuple[Inventory, Finding, Finding]:
    advisory = _finding(
        "dependency_advisories",
        "high",
        "advisory:urllib3:PYSEC-2021-108",
        taxonomy={"owasp_ml": "ML06:2023", "atlas": "AML.T0010.001"},
        evidence={
            "package": "urllib3",
            "version": "1.26.0",
            "advisory": "PYSEC-2021-108",
            "aliases": ["CVE-2021-33503"],
            "severity_source": "CVSS_V3:7.5",
            "references": ["https://github.com/advisories/x"],
        },
        remediation="Pin urllib3==1.26.5 or later.",
    )
    unsigned = _finding(
        "registry_validation",
        "medium",
        "no_signature",
        taxonomy={"owasp_ml": "ML10:2023", "atlas": "AML.T0010"},
    )
    unsigned.status = "waived"
    noise = Finding(
        check="label_noise",
        severity="low",
        title="Some labels look flipped",
        stage="data",
        subject_identity="m:iris",
        key="noise",
        evidence={"rows": [3, 1], "noise_rate": 0.01},
        taxonomy={"owasp_ml": "ML02:2023", "atlas": "AML.T0020"},
    )

    def version(number: str, findings: list[Finding]) -> VersionEntry:
        return VersionEntry(
            name="m",
            version=number,
            registry_uri="sqlite:////tmp/a b/mlflow.db",
            aliases=["champion"] if number == "1" else [],
            tags={"mlgate.verdict": "passed", "mlgate.report_uri": "file:///tmp/r.json"},
            artifact_digest="a" * 64,
            dataset_digest=DIGEST,
            packages=[
                Package("scikit-learn", "1.8.0"),
                Package("urllib3", "1.26.0"),
                Package("numpy", specifier=">=2"),
            ],
            metrics={"accuracy": 0.97},
            holdout_rows=30,
            findings=findings,
            data_findings=[noise],
            scanned=True,
        )

    inventory = Inventory(
        registry_uri="sqlite:////tmp/a b/mlflow.db",
        versions=[version("10", [advisory]), version("1", [advisory, unsigned])],
        datasets=[DatasetEntry(DIGEST, "iris", "/data/iris v2.csv", "species", 150, ["a", "species"], 30)],
        waivers={unsigned.fingerprint: WaiverEntry("alice", "legacy", "2099-01-01")},
        tool_version="1.0",
    )
    return inventory, advisory, unsigned


def test_bom_from_plain_inputs_is_strict_and_deterministic(no_network) -> None:
    inventory, advisory, unsigned = _inventory()
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    document = build_bom(inventory, timestamp=at, serial="urn:uuid:00000000-0000-4000-8000-000000000000")
    assert validate_bom(document) == []
    again = build_bom(inventory)
    assert {k: v for k, v in again.items() if k not in ("serialNumber", "metadata")} == {
        k: v for k, v in document.items() if k not in ("serialNumber", "metadata")
    }
    assert again["metadata"]["properties"] == document["metadata"]["properties"]

    # versions in numeric order, then the dataset, then libraries by purl
    refs = [c["bom-ref"] for c in document["components"]]
    assert refs[:3] == ["models:/m/1", "models:/m/10", f"dataset:{DIGEST}"]
    assert refs[3:] == ["pkg:pypi/numpy", "pkg:pypi/scikit-learn@1.8.0", "pkg:pypi/urllib3@1.26.0"]
    v1 = _by_ref(document)["models:/m/1"]
    assert v1["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    assert _props(v1, "alias") == ["champion"] and _props(v1, "verdict") == ["passed"]
    assert v1["modelCard"]["modelParameters"]["datasets"] == [{"ref": f"dataset:{DIGEST}"}]
    assert (
        _by_ref(document)[f"dataset:{DIGEST}"]["data"][0]["contents"]["url"] == "file:///data/iris%20v2.csv"
    )
    deps = {d["ref"]: d.get("dependsOn") for d in document["dependencies"]}
    assert deps["models:/m/1"] == [f"dataset:{DIGEST}", *refs[3:]]

    vulns = {v["bom-ref"]: v for v in document["vulnerabilities"]}
    assert len(vulns) == 3, "one vulnerability per fingerprint, whatever the number of versions"
    dependency = vulns[f"finding:{advisory.fingerprint}"]
    assert dependency["id"] == "PYSEC-2021-108" and dependency["recommendation"] == advisory.remediation
    assert {a["ref"] for a in dependency["affects"]} == {
        "models:/m/1",
        "models:/m/10",
        "pkg:pypi/urllib3@1.26.0",
    }
    assert dependency["ratings"][0] == {"source": {"name": "mlgate"}, "severity": "high", "method": "other"}
    assert dependency["ratings"][1]["score"] == 7.5 and dependency["ratings"][1]["method"] == "CVSSv3"
    assert {
        "id": "ML06:2023",
        "source": {"name": "OWASP Machine Learning Security Top 10", "url": OWASP},
    } in dependency["references"]
    atlas = next(r for r in dependency["references"] if r["id"] == "AML.T0010.001")
    assert atlas["source"]["url"] == "https://atlas.mitre.org/techniques/AML.T0010.001"
    assert _props(dependency, "blocking") == ["true"] and "analysis" not in dependency
    waived = vulns[f"finding:{unsigned.fingerprint}"]
    assert waived["id"] == unsigned.fingerprint and waived["source"] == {"name": "mlgate"}
    assert waived["analysis"]["response"] == ["will_not_fix"] and "alice" in waived["analysis"]["detail"]
    assert _props(waived, "status") == ["waived"] and _props(waived, "blocking") == ["false"]
    data = next(v for v in vulns.values() if _props(v, "check") == ["label_noise"])
    assert {a["ref"] for a in data["affects"]} == {f"dataset:{DIGEST}", "models:/m/1", "models:/m/10"}
    assert "rows" not in data["detail"], "row lists never reach the BOM"
    assert [v["ratings"][0]["severity"] for v in document["vulnerabilities"]] == ["high", "medium", "low"]


def test_validate_bom_names_schema_errors_and_dangling_refs(no_network) -> None:
    document = build_bom(_inventory()[0])
    document["vulnerabilities"][0]["ratings"][0]["severity"] = "severe"
    document["vulnerabilities"][0]["affects"].append({"ref": "models:/m/99"})
    document["components"][0]["externalReferences"][0]["url"] = "not an iri"
    problems = validate_bom(document)
    assert any(p.startswith("vulnerabilities/0/ratings/0/severity") for p in problems)
    assert any(p.startswith("components/0/externalReferences/0/url") for p in problems)
    assert "unknown ref models:/m/99" in problems


def test_inventory_of_a_real_registry_through_the_asset_and_the_cli(env, tmp_path, capsys) -> None:
    from assets.inventory import ai_inventory
    from pipelines.resources import default_resources

    assert env.retrain().success and env.scan("demo", 1).success
    df = pd.read_csv(BUNDLED)
    features = df.drop(columns=["diagnosis"])
    outside = DecisionTreeClassifier(max_depth=3, random_state=0).fit(features, df["diagnosis"])
    version = register_external(env, outside, features, signature=False)  # no signature: medium findings
    assert version == "2"
    assert env.scan("demo", 2, only=["model_version", "model_evaluation"]).success

    result = dg.materialize([ai_inventory], instance=env.instance, resources=default_resources(env.settings))
    assert result.success
    metadata = result.asset_materializations_for_node("ai_inventory")[0].metadata
    assert metadata["versions"].value == 2 and metadata["datasets"].value == 1
    assert metadata["open_medium"].value >= 1
    document = json.loads((env.home / "reports" / "ai_bom.cdx.json").read_text())
    assert validate_bom(document) == []

    components = _by_ref(document)
    v1, v2 = components["models:/demo/1"], components["models:/demo/2"]
    tags = env.version_tags("demo", 1)
    assert (
        v1["type"] == "machine-learning-model"
        and v1["hashes"][0]["content"] == tags["mlgate.artifact_digest"]
    )
    assert _props(v1, "alias") == ["champion"] and _props(v1, "verdict") == ["passed"]
    assert _props(v2, "verdict") == [env.version_tags("demo", 2)["mlgate.verdict"]]
    dataset = components[f"dataset:{tags['mlgate.dataset_digest']}"]
    assert dataset["type"] == "data" and _props(dataset, "rows") == [str(len(df))]
    assert v1["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    deps = {d["ref"]: d.get("dependsOn", []) for d in document["dependencies"]}
    assert dataset["bom-ref"] in deps["models:/demo/1"]
    sklearn = [r for r in deps["models:/demo/1"] if r.startswith("pkg:pypi/scikit-learn@")]
    assert sklearn and components[sklearn[0]]["type"] == "library"
    unsigned = [v for v in document["vulnerabilities"] if v["description"] == "Model has no signature"]
    assert len(unsigned) == 1 and unsigned[0]["affects"] == [{"ref": "models:/demo/2"}]
    assert unsigned[0]["ratings"][0]["severity"] == "medium" and _props(unsigned[0], "status") == ["open"]
    assert {r["id"] for r in unsigned[0]["references"]} == {"ML10:2023", "AML.T0010"}

    # the command line (as a user runs it): one strict document on stdout, the asset's inventory,
    # with the waivers of the policy it is given
    policy = tmp_path / "waive.yaml"
    fingerprint = _props(unsigned[0], "fingerprint")[0]
    policy.write_text(
        f"waivers:\n  - fingerprint: {fingerprint}\n"
        "    owner: alice\n    reason: legacy\n    expires: 2099-01-01\n"
    )
    run = mlgate("bom", "--policy", str(policy), home=env.home)
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    assert validate_bom(printed) == []
    for key in ("components", "dependencies"):
        assert printed[key] == document[key]
    vulns = {v["bom-ref"]: v for v in printed["vulnerabilities"]}
    assert set(vulns) == {v["bom-ref"] for v in document["vulnerabilities"]}
    waived = vulns[unsigned[0]["bom-ref"]]
    assert waived["analysis"]["state"] == "exploitable" and "alice" in waived["analysis"]["detail"]
    assert _props(waived, "status") == ["waived"]

    # waivers granted through the store count too; --output writes the file, stdout stays empty
    example = next(v for v in document["vulnerabilities"] if v["description"] == "Model has no input example")
    env.store.add_waiver(
        fingerprint=_props(example, "fingerprint")[0], owner="bob", reason="r", expires=dt.date(2099, 1, 1)
    )
    output = tmp_path / "bom.json"
    assert main(["bom", "--model", "demo", "-o", str(output), "--no-validate"]) == 0
    assert capsys.readouterr().out == ""
    written = json.loads(output.read_text())
    assert written["components"] == document["components"]
    waived = next(v for v in written["vulnerabilities"] if v["bom-ref"] == example["bom-ref"])
    assert "bob" in waived["analysis"]["detail"]

    # an unknown model is one line on stderr and exit 2
    assert main(["bom", "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert "model 'nope' is not registered" in err and err.count("\n") == 1
