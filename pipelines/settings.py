"""Where mlgate keeps its state, read from the environment (no Dagster import, so the CLI is fast)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DATA = REPO_ROOT / "data" / "breast_cancer.csv"
BUNDLED_LABEL = "diagnosis"
SUITES_DIR = REPO_ROOT / "suites"
DEFAULT_MODEL_NAME = "mlgate-demo"


@dataclass(frozen=True)
class Settings:
    home: Path
    tracking_uri: str
    registry_uri: str
    store_url: str
    policy_path: Path | None

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def advisories_dir(self) -> Path:
        return self.home / "advisories"


def load_settings() -> Settings:
    """Read MLGATE_HOME and friends; defaults keep everything under ./.mlgate."""
    home = Path(os.environ.get("MLGATE_HOME", ".mlgate")).resolve()
    default_db = f"sqlite:///{home / 'mlflow.db'}"
    tracking = os.environ.get("MLFLOW_TRACKING_URI", default_db)
    registry = os.environ.get("MLFLOW_REGISTRY_URI", tracking)
    store = os.environ.get("MLGATE_STORE_URL", f"sqlite:///{home / 'findings.db'}")
    policy = os.environ.get("MLGATE_POLICY")
    if not policy and Path("mlgate.yaml").is_file():
        policy = "mlgate.yaml"
    return Settings(home, tracking, registry, store, Path(policy).resolve() if policy else None)


def prepare_environment(settings: Settings) -> None:
    """Create the state folders, point Dagster at them and turn every telemetry off."""
    for folder in (settings.home, settings.dagster_home, settings.artifact_root, settings.cache_dir):
        folder.mkdir(parents=True, exist_ok=True)
    instance_yaml = settings.dagster_home / "dagster.yaml"
    if not instance_yaml.exists():
        shutil.copyfile(REPO_ROOT / "dagster.yaml", instance_yaml)
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    os.environ.setdefault("MLFLOW_TRACKING_URI", settings.tracking_uri)
    os.environ.setdefault("MLFLOW_REGISTRY_URI", settings.registry_uri)
    for var, value in (
        ("MLFLOW_ENABLE_TELEMETRY", "false"),
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
        ("DO_NOT_TRACK", "1"),
        ("GX_ANALYTICS_ENABLED", "false"),
        ("DAGSTER_DISABLE_TELEMETRY", "1"),
        ("GIT_PYTHON_REFRESH", "quiet"),
        ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
        # fail fast against a remote registry: a gate that waits minutes helps nobody
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "20"),
    ):
        os.environ.setdefault(var, value)
