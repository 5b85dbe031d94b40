"""The `mlgate` command line: exit codes, one clear line on bad input, strict JSON on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgate.cli import main
from tests.conftest import BUNDLED, REPO, SHARED_DATA

SUITE = REPO / "suites" / "breast_cancer.json"


def mlgate(*args: str, home: Path | None = None, **extra_env: str) -> subprocess.CompletedProcess:
    """Run the installed console script, as a user would (mlgate/MLflow/Dagster settings cleared)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLGATE_", "MLFLOW_", "DAGSTER_"))}
    env.update(extra_env)
    if home is not None:
        env["MLGATE_HOME"] = str(home)
    exe = Path(sys.executable).with_name("mlgate")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def _noisy_copy(tmp_path: Path, fraction: float = 0.25) -> Path:
    df = pd.read_csv(BUNDLED)
    rng = np.random.default_rng(1)
    rows = rng.choice(len(df), int(fraction * len(df)), replace=False)
    df.loc[rows, "diagnosis"] = df.loc[rows, "diagnosis"].map({"benign": "malignant", "malignant": "benign"})
    path = tmp_path / "noisy.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        (lambda t: ["scan-data", str(t / "missing.csv"), "--label", "y"], "missing.csv: file not found"),
        (lambda t: ["scan-data", str(BUNDLED), "--label", "nope"], "label column 'nope' not found"),
        (lambda t: ["scan-data", str(t / "empty.csv"), "--label", "y"], "empty.csv: file is empty"),
        (lambda t: ["scan-data", str(t / "cont.csv"), "--label", "y"], "looks continuous"),
        (lambda t: ["scan-data", str(t / "data.txt"), "--label", "y"], "unsupported file type .txt"),
        (
            lambda t: ["scan-data", str(BUNDLED), "--label", "diagnosis", "--suite", str(t / "no.json")],
            "no.json: suite file not found",
        ),
        (
            lambda t: ["scan-data", str(BUNDLED), "--label", "diagnosis", "--policy", str(t / "bad.yaml")],
            "bad.yaml: blocking_severity",
        ),
        (lambda t: ["policy", "validate", str(t / "bad.yaml")], "bad.yaml: blocking_severity"),
        (lambda t: ["run", "--data", str(t / "missing.csv")], "missing.csv: file not found"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(tmp_path, capsys, make_args, expected) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "data.txt").write_text("y\n1\n")
    (tmp_path / "bad.yaml").write_text("blocking_severity: severe\n")
    pd.DataFrame({"x": range(100), "y": np.linspace(0, 1, 100) + 0.001}).to_csv(
        tmp_path / "cont.csv", index=False
    )
    code = main(make_args(tmp_path))
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_scan_data_json_is_one_strict_document_and_passes_clean_data() -> None:
    result = mlgate(
        "scan-data", str(BUNDLED), "--label", "diagnosis", "--suite", str(SUITE), "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert report["verdict"] == "passed"
    assert {c["name"]: c["status"] for c in report["checks"]}["data_quality"] == "passed"
    assert set(report["counts"]) == {"critical", "high", "medium", "low", "info"}


def test_scan_data_blocks_noisy_labels_and_lists_the_rows(tmp_path) -> None:
    result = mlgate("scan-data", str(_noisy_copy(tmp_path)), "--label", "diagnosis", "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "blocked"
    [noise] = [f for f in report["findings"] if f["check"] == "label_noise"]
    assert noise["severity"] == "high"
    assert noise["evidence"]["rows"] == sorted(noise["evidence"]["rows"])
    # without --suite the baseline contract runs and says so
    assert any(f["check"] == "data_quality" and f["severity"] == "info" for f in report["findings"])


def test_scan_data_sarif_validates_against_the_schema(tmp_path) -> None:
    schema_path = SHARED_DATA / "sarif-schema-2.1.0.json"
    if not schema_path.is_file():
        pytest.skip(f"SARIF schema not available: {schema_path} (../shared/data is absent)")
    import jsonschema

    result = mlgate("scan-data", str(_noisy_copy(tmp_path)), "--label", "diagnosis", "--format", "sarif")
    assert result.returncode == 1
    sarif = json.loads(result.stdout)
    jsonschema.validate(sarif, json.loads(schema_path.read_text()))
    results = sarif["runs"][0]["results"]
    assert any(r["ruleId"] == "label_noise" and r["level"] == "error" for r in results)
    assert all(r["partialFingerprints"]["mlgate/v1"] for r in results)


def test_init_suite_init_and_policy_validate(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert main(["policy", "validate", "mlgate.yaml"]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["init"]) == 2, "init does not overwrite without --force"
    assert main(["suite", "init", str(BUNDLED), "--label", "diagnosis", "--output", "s.json"]) == 0
    suite = json.loads((tmp_path / "s.json").read_text())
    assert suite["expectations"][0]["type"] == "expect_table_columns_to_match_set"
    capsys.readouterr()
    assert main(["scan-data", str(BUNDLED), "--label", "diagnosis", "--suite", "s.json"]) == 0


def test_run_json_then_findings_list(tmp_path) -> None:
    home = tmp_path / "home"
    result = mlgate("run", "--format", "json", home=home)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["verdict"] == "passed" and report["subject"]["version"] == "1"
    listed = mlgate("findings", "list", "--format", "json", home=home)
    assert listed.returncode == 0
    stored = json.loads(listed.stdout)
    assert {f["fingerprint"] for f in report["findings"]} <= {f["fingerprint"] for f in stored}
    text = mlgate("findings", "list", home=home)
    assert "label_noise" in text.stdout or "registry_validation" in text.stdout


def test_version_flag() -> None:
    result = mlgate("--version")
    assert result.returncode == 0 and result.stdout.startswith("mlgate ")


def test_scan_model_in_another_registry_is_keyed_by_registry_and_promotes_only_on_request(tmp_path) -> None:
    from mlflow import MlflowClient

    home = tmp_path / "home"
    assert mlgate("run", "--quiet", home=home).returncode == 0  # demo v1 in the configured registry
    other = f"sqlite:///{tmp_path / 'other.db'}"
    script = (
        "import mlflow, pandas as pd, skops.io\n"
        "from sklearn.linear_model import LogisticRegression\n"
        f"df = pd.read_csv({str(BUNDLED)!r}); X, y = df.drop(columns=['diagnosis']), df['diagnosis']\n"
        "m = LogisticRegression(max_iter=5000).fit(X, y)\n"
        f"mlflow.set_tracking_uri({other!r})\n"
        f"mlflow.create_experiment('x', {str((tmp_path / 'art').as_uri())!r})\n"
        "with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name('x').experiment_id):\n"
        "    info = mlflow.sklearn.log_model(m, name='model', serialization_format='skops',\n"
        "        pip_requirements=['scikit-learn'],\n"
        "        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(m)))\n"
        "mlflow.register_model(info.model_uri, 'mlgate-demo')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=300)

    scanned = mlgate(
        "scan-model", "models:/mlgate-demo/1", "--tracking-uri", other, "--format", "json", home=home
    )
    assert scanned.returncode == 0, scanned.stderr[-2000:]
    report = json.loads(scanned.stdout)
    assert report["subject"]["registry"] == other and report["verdict"] == "passed"
    foreign = MlflowClient(tracking_uri=other, registry_uri=other)
    assert foreign.get_model_version("mlgate-demo", "1").tags["mlgate.verdict"] == "passed"
    assert not foreign.get_registered_model("mlgate-demo").aliases, "no --promote, no alias"
    # the configured registry's own mlgate-demo v1 is a different subject and untouched
    local = MlflowClient(
        tracking_uri=f"sqlite:///{home / 'mlflow.db'}", registry_uri=f"sqlite:///{home / 'mlflow.db'}"
    )
    assert (
        local.get_model_version("mlgate-demo", "1").tags["mlgate.report_uri"]
        != (foreign.get_model_version("mlgate-demo", "1").tags["mlgate.report_uri"])
    )

    promoted = mlgate("scan-model", "models:/mlgate-demo/1", "--tracking-uri", other, "--promote", home=home)
    assert promoted.returncode == 0, promoted.stderr[-2000:]
    assert str(foreign.get_model_version_by_alias("mlgate-demo", "champion").version) == "1"

    missing = mlgate("scan-model", "models:/mlgate-demo/9", "--tracking-uri", other, home=home)
    assert missing.returncode == 2 and "models:/mlgate-demo/9: not found in registry" in missing.stderr
