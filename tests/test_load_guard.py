"""The load guard: the only way mlgate loads a model, and it refuses what was not verified."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from checks.load_guard import UntrustedModelError, load_verified_model
from pipelines.storage import load_version
from tests.conftest import BUNDLED, register_external


def _snapshot(env, version: str):
    return load_version(env.settings.cache_dir, env.settings.registry_uri, "demo", version)


def test_guard_loads_a_scanned_version_and_refuses_an_altered_cache_copy(env) -> None:
    assert env.retrain().success and env.scan("demo", 1).success
    snapshot = _snapshot(env, "1")
    model = load_verified_model(env.store, snapshot)
    assert hasattr(model, "predict_proba")
    model_file = Path(snapshot.artifact_dir) / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    with pytest.raises(UntrustedModelError, match="no longer match the scanned digest"):
        load_verified_model(env.store, snapshot)
    import mlgate

    with pytest.raises(UntrustedModelError):
        mlgate.load_model("models:/demo/1")


def test_guard_refuses_a_version_that_was_never_scanned(env) -> None:
    assert env.retrain().success
    import mlgate

    with pytest.raises(UntrustedModelError, match="not scanned"):
        mlgate.load_model("models:/demo/1")


class Canary:
    """Writes a file when unpickled: the payload must never run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "payload ran"))


class BoobyTrappedModel(LogisticRegression):
    """A working classifier whose pickle carries a canary payload (a harmless stand-in for malware)."""

    def __reduce__(self):
        return (
            _rebuild,
            (self.get_params(), self.coef_, self.intercept_, self.classes_, Canary(self.canary)),
        )


def _rebuild(params, coef, intercept, classes, _payload):
    model = LogisticRegression(**params)
    model.coef_, model.intercept_, model.classes_ = coef, intercept, classes
    return model


def test_pickled_artifact_is_blocked_without_ever_being_loaded(env, tmp_path) -> None:
    df = pd.read_csv(BUNDLED)
    features = df.drop(columns=["diagnosis"])
    canary = tmp_path / "canary.txt"
    model = BoobyTrappedModel(max_iter=3000).fit(features, df["diagnosis"])
    model.canary = str(canary)
    pickle.loads(pickle.dumps(model))
    assert canary.exists(), "the payload is live: plain unpickling runs it"
    canary.unlink()
    version = register_external(env, model, features, serialization="cloudpickle", signature=False)
    canary.unlink(missing_ok=True)  # logging may have round-tripped it; only mlgate's steps count
    scan = env.scan("demo", version)
    assert not scan.success
    assert not canary.exists(), "the artifact was deserialised"
    tags = env.version_tags("demo", version)
    assert tags["mlgate.verdict"] == "blocked"
    stored = env.store.checks_of(env.store.latest_scan("model_version", model_name="demo")["id"])
    assert stored["artifact_safety"].status == "failed"
    assert any("cloudpickle" in f.title for f in stored["artifact_safety"].findings)
    with pytest.raises(UntrustedModelError, match="artifact-safety check failed"):
        load_verified_model(env.store, _snapshot(env, version))
    assert not canary.exists()
