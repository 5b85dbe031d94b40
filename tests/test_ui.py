"""The Dagster UI end to end: `dagster dev` on the test's state, a scan launched through GraphQL, and the
model_version asset's checks page rendered in headless Chromium.

The browser is Debian's `chromium` driven through `chromedriver`'s W3C WebDriver HTTP API with the
standard library: no extra dependency, and no tool that could download a browser or driver. Without
them the test skips, except in CI (CI=true), where it fails. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.browser import BROWSER, DRIVER, MISSING, NO_BROWSER, needs_browser
from tests.browser import browser as _browser
from tests.browser import free_port as _free_port
from tests.browser import http_json as _http
from tests.browser import run_process as _process
from tests.browser import wait_for as _wait_for
from tests.conftest import REPO, Env

# without a browser: skipped before any set-up, except in CI, where the test fails instead
pytestmark = [pytest.mark.slow, needs_browser]

JOB = "scan_version"
ASSET = "model_version"
# Seconds. Each wait has its own cap, and all of them together share TOTAL_BUDGET (from the start of
# `dagster dev` to the screenshot; about 70 s on 2 busy cores), so the test stays under 3 minutes.
TOTAL_BUDGET = 140.0
SERVER_BUDGET = 90.0  # dagster dev up and the code location loaded
RUN_BUDGET = 100.0  # queued, dequeued by the daemon, executed
PAGE_BUDGET = 45.0  # the checks page rendered with every check and its latest result


# -- helpers -------------------------------------------------------------------------------------


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


class GraphQL:
    """A minimal client for the webserver's /graphql endpoint."""

    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/graphql"

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        reply = _http("POST", self.url, {"query": query, "variables": variables})
        assert not reply.get("errors"), reply["errors"]
        return reply["data"]


def _dagster_env(env: Env) -> dict[str, str]:
    """The test's settings, spelled out for the `dagster dev` process, so it sees the same registry."""
    s = env.settings
    return {
        **os.environ,
        "MLGATE_HOME": str(s.home),
        "DAGSTER_HOME": str(s.dagster_home),
        "MLFLOW_TRACKING_URI": s.tracking_uri,
        "MLFLOW_REGISTRY_URI": s.registry_uri,
        "MLGATE_STORE_URL": s.store_url,
        # the registry sensor would race this test's launch for the same version: let it watch nothing
        "MLGATE_WATCH_MODELS": "not-a-model-of-this-test",
    }


# -- GraphQL -------------------------------------------------------------------------------------

WORKSPACE = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message }
        }
      }
    }
  }
}"""

ADD_PARTITION = """
mutation ($key: String!, $partitions: String!, $repo: RepositorySelector!) {
  addDynamicPartition(partitionKey: $key, partitionsDefName: $partitions, repositorySelector: $repo) {
    __typename
    ... on PythonError { message }
  }
}"""

LAUNCH_RUN = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

RUN_STATUS = """
query ($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } }
}"""

ASSET_CHECKS = """
query ($asset: AssetKeyInput!) {
  assetNodes(assetKeys: [$asset]) {
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name blocking } }
    }
  }
}"""

CHECK_EXECUTIONS = """
query ($asset: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $asset, checkName: $check, partition: $partition, limit: 1) {
    runId
    status
    partition
    evaluation {
      success
      severity
      description
      metadataEntries { label ... on TextMetadataEntry { text } ... on BoolMetadataEntry { boolValue } }
    }
  }
}"""

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def _loaded_repository(gql: GraphQL) -> dict[str, str] | None:
    """The repository selector once the code location has loaded; fail on a load error."""
    data = gql(WORKSPACE)["workspaceOrError"]
    assert data["__typename"] == "Workspace", data
    for entry in data["locationEntries"]:
        location = entry["locationOrLoadError"]
        if location and location["__typename"] == "PythonError":
            pytest.fail(f"code location {entry['name']} failed to load: {location['message']}")
        if entry["loadStatus"] == "LOADED" and location:
            repository = location["repositories"][0]["name"]
            return {"repositoryLocationName": location["name"], "repositoryName": repository}
    return None


# -- the test ------------------------------------------------------------------------------------


def test_scan_launched_in_the_ui_shows_its_checks(env: Env, tmp_path: Path) -> None:
    from checks.catalog import checks_for_asset
    from pipelines.partitions import partition_key

    if MISSING:
        pytest.fail(f"CI=true but {NO_BROWSER}; `make test` installs them")
    assert BROWSER and DRIVER
    expected_checks = {c.name for c in checks_for_asset(ASSET)}
    assert {"artifact_safety", "registry_validation"} <= expected_checks

    # a registered version, trained in process on the same MLGATE_HOME the UI will use
    retrain = env.retrain()
    assert retrain.success
    version = retrain.output_for_node("candidate_model")["version"]
    key = partition_key("demo", version)

    instance_yaml = env.settings.dagster_home / "dagster.yaml"
    config = yaml.safe_load(instance_yaml.read_text())
    if config.get("nux") != {"enabled": False}:  # a welcome pop-up would cover the page
        instance_yaml.write_text(yaml.safe_dump({**config, "nux": {"enabled": False}}))

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    gql = GraphQL(base)
    log = tmp_path / "dagster-dev.log"
    command = [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)]
    command += ["-w", str(REPO / "workspace.yaml")]
    with _process(command, log, env=_dagster_env(env), cwd=tmp_path) as dagster_dev:
        until = time.monotonic() + TOTAL_BUDGET

        def repository() -> dict[str, str] | None:
            assert dagster_dev.poll() is None, f"dagster dev exited:\n{_tail(log)}"
            return _loaded_repository(gql)

        selector = _wait_for("dagster dev and its code location", repository, SERVER_BUDGET, until=until)

        # add the partition and launch the scan the way the UI's launchpad does
        added = gql(ADD_PARTITION, key=key, partitions="model_versions", repo=selector)["addDynamicPartition"]
        assert added["__typename"] in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"), added
        params = {
            "selector": {**selector, "jobName": JOB},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
        }
        launched = gql(LAUNCH_RUN, params=params)["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        def finished() -> str | None:
            status = gql(RUN_STATUS, runId=run_id)["runOrError"]["status"]
            return status if status in TERMINAL else None

        status = _wait_for(f"run {run_id} to finish", finished, RUN_BUDGET, 2.0, until)
        assert status == "SUCCESS", f"run {run_id} ended {status}:\n{_tail(log)}"

        # the asset's checks and their results for this partition, through GraphQL
        asset = {"path": [ASSET]}
        nodes = gql(ASSET_CHECKS, asset=asset)["assetNodes"]
        checks = {c["name"]: c for c in nodes[0]["assetChecksOrError"]["checks"]}
        assert set(checks) == expected_checks and all(c["blocking"] for c in checks.values())
        # a clean version: nothing blocks; governance gaps (e.g. no owner tag) may warn, the artifact passes
        for name in sorted(expected_checks):
            [execution] = gql(CHECK_EXECUTIONS, asset=asset, check=name, partition=key)[
                "assetCheckExecutions"
            ]
            assert execution["runId"] == run_id and execution["partition"] == key, execution
            evaluation = execution["evaluation"]
            metadata = {m["label"]: m.get("text", m.get("boolValue")) for m in evaluation["metadataEntries"]}
            assert metadata["blocks"] is False and evaluation["description"].startswith(metadata["status"])
            if name == "artifact_safety" or metadata["status"] == "passed":
                assert metadata["status"] == "passed" and evaluation["success"], execution
                assert execution["status"] == "SUCCEEDED", execution
            else:
                assert metadata["status"] == "warned" and evaluation["severity"] == "WARN", execution
        tags = env.version_tags("demo", version)
        assert tags["mlgate.verdict"] == "passed" and tags["mlgate.scan_run_id"] == run_id

        # the checks page in a real browser: every check listed with its latest result for this partition
        with _browser(tmp_path, BROWSER, DRIVER) as page:
            page.get(f"{base}/assets/{ASSET}?view=checks")
            wanted = [*sorted(expected_checks), "Succeeded", key]

            def listed() -> str | None:
                text = page.script("return document.body ? document.body.innerText : ''")
                return text if all(w in text for w in wanted) else None

            try:
                text = _wait_for(f"{wanted} on the checks page", listed, PAGE_BUDGET, 0.5, until)
            finally:
                shot = page.screenshot(tmp_path / "model_version_checks.png")  # kept for a failure, too
        assert f"Checks ({len(expected_checks)})" in text, text
        assert shot.stat().st_size > 10_000
