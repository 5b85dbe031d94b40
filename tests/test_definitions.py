"""The real Definitions load, and wire what DESIGN promises."""

from __future__ import annotations

import dagster as dg


def test_definitions_load_and_wire_blocking_gates(env) -> None:
    defs = env.defs
    dg.Definitions.validate_loadable(defs)
    jobs = {j.name for j in defs.resolve_all_job_defs()}
    assert {"retrain", "scan_version"} <= jobs
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {
        "raw_data",
        "training_data",
        "audit_predictions",
        "candidate_model",
        "model_version",
        "model_evaluation",
        "deployment",
        "findings_register",
        "ai_inventory",
    }
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert checks == {
        ("training_data", "data_quality"),
        ("audit_predictions", "label_noise"),
        ("audit_predictions", "poisoning"),
        ("model_version", "artifact_safety"),
        ("model_version", "registry_validation"),
        ("model_version", "dependency_advisories"),
        ("model_evaluation", "performance"),
        ("model_evaluation", "robustness"),
        ("model_evaluation", "membership_inference"),
    }
    for key in graph.asset_check_keys:
        assert graph.get_check_spec(key).blocking, f"{key} must be blocking"
    scan = defs.resolve_job_def("scan_version")
    assert scan.partitions_def is not None and scan.partitions_def.name == "model_versions"
    # anything that loads a model sits downstream of the asset whose checks include the artifact scan
    upstream = graph.get(dg.AssetKey("model_evaluation")).parent_keys
    assert dg.AssetKey("model_version") in upstream


def test_workspace_and_instance_files_are_valid(env) -> None:
    import yaml

    from tests.conftest import REPO

    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "pipelines.definitions"
    instance = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert instance["telemetry"]["enabled"] is False and instance["nux"]["enabled"] is False
    assert (env.home / "dagster" / "dagster.yaml").is_file()


def test_the_policy_owner_owns_the_retrain_assets_in_dagster(env) -> None:
    env.set_policy("models:\n  mlgate-demo:\n    owner: ml-team@example.com\n")
    graph = env.defs.resolve_asset_graph()
    owners = {k.to_user_string(): graph.get(k).owners for k in graph.get_all_asset_keys()}
    assert owners["candidate_model"] == ["ml-team@example.com"] == owners["raw_data"]
    assert owners["model_version"] == [], "scanned versions are owned per model through their tags"
