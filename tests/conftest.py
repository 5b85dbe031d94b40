"""Shared fixtures: a temporary MLGATE_HOME with a real Dagster instance and a real MLflow registry."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
BUNDLED = REPO / "data" / "breast_cancer.csv"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

ENV_VARS = (
    "MLGATE_HOME",
    "DAGSTER_HOME",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLGATE_STORE_URL",
    "MLGATE_POLICY",
)


@dataclass
class Env:
    """One isolated mlgate deployment: settings, real Definitions, a real Dagster instance."""

    home: Path
    defs: Any
    instance: Any
    settings: Any
    monkeypatch: pytest.MonkeyPatch

    @property
    def store(self):
        from checks.store import FindingsStore

        return FindingsStore(self.settings.store_url)

    @property
    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.settings.tracking_uri, registry_uri=self.settings.registry_uri)

    def retrain(
        self,
        *,
        path: Path | str = BUNDLED,
        label: str = "diagnosis",
        model: str = "demo",
        noise: float = 0.0,
        holdout_fraction: float = 0.2,
        estimator: str = "logistic_regression",
    ):
        config = {
            "ops": {
                "raw_data": {
                    "config": {
                        "path": str(path),
                        "label": label,
                        "model_name": model,
                        "inject_label_noise": noise,
                    }
                },
                "training_data": {"config": {"holdout_fraction": holdout_fraction}},
                "candidate_model": {"config": {"estimator": estimator}},
            },
            **QUIET,
        }
        return self.defs.resolve_job_def("retrain").execute_in_process(
            instance=self.instance, run_config=config, raise_on_error=False
        )

    def scan(self, name: str, version: str | int, *, only: list[str] | None = None):
        from pipelines.partitions import partition_key

        key = partition_key(name, version)
        self.instance.add_dynamic_partitions("model_versions", [key])
        job = self.defs.resolve_job_def("scan_version")
        kwargs: dict[str, Any] = {}
        if only:
            import dagster as dg

            kwargs["asset_selection"] = [dg.AssetKey(a) for a in only]
        return job.execute_in_process(
            instance=self.instance, partition_key=key, run_config=QUIET, raise_on_error=False, **kwargs
        )

    def version_tags(self, name: str, version: str | int) -> dict[str, str]:
        return dict(self.client.get_model_version(name, str(version)).tags)

    def champion(self, name: str, alias: str = "champion") -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def set_policy(self, text: str) -> Path:
        path = self.home / "policy.yaml"
        path.write_text(text)
        self.monkeypatch.setenv("MLGATE_POLICY", str(path))  # undone after the test
        self.rebuild()
        return path

    def rebuild(self) -> None:
        from pipelines.definitions import build_definitions
        from pipelines.settings import load_settings

        self.settings = load_settings()
        self.defs = build_definitions()


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow database, made once and copied into each test's home.

    Creating MLflow's SQLite schema takes seconds; every test still gets its own database file.
    """
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}")
    client.search_experiments()
    client.search_registered_models()
    return path


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_template_db: Path) -> Path:
    """Point every mlgate/Dagster/MLflow location at a fresh temporary folder."""
    home = tmp_path / "mlgate-home"
    home.mkdir()
    shutil.copyfile(mlflow_template_db, home / "mlflow.db")
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLGATE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{home / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def env(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    import dagster as dg

    from pipelines.definitions import build_definitions
    from pipelines.settings import load_settings

    defs = build_definitions()
    # Entering the instance makes it Dagster's current one for this test: helpers such as
    # build_resources enter and dispose an ephemeral instance and leave it current otherwise.
    with dg.DagsterInstance.get() as instance:
        yield Env(isolated_home, defs, instance, load_settings(), monkeypatch)


def register_external(
    env: Env,
    model,
    features,
    *,
    name: str = "demo",
    tags: dict | None = None,
    serialization: str = "skops",
    signature: bool = True,
    log_data: Callable[[], None] | None = None,
) -> str:
    """Log and register a model the way another team's job would (not through mlgate's retrain).

    `log_data` runs inside the training run, e.g. to log its dataset inputs or data artifacts.
    """
    import mlflow
    import skops.io
    from mlflow.models import infer_signature

    from pipelines.resources import RegistryResource

    registry = RegistryResource(
        tracking_uri=env.settings.tracking_uri, registry_uri=env.settings.registry_uri
    )
    mlflow.set_tracking_uri(env.settings.tracking_uri)
    mlflow.set_registry_uri(env.settings.registry_uri)
    experiment = registry.experiment_id(env.settings.artifact_root)
    extra: dict[str, Any] = {}
    if serialization == "skops":
        extra["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    if signature:
        extra["signature"] = infer_signature(features, model.predict(features.head(20)))
        extra["input_example"] = features.head(2)
    with mlflow.start_run(experiment_id=experiment):
        if log_data is not None:
            log_data()
        info = mlflow.sklearn.log_model(model, name="model", serialization_format=serialization, **extra)
    return str(mlflow.register_model(info.model_uri, name, tags=tags or {}).version)
