"""Consumers: `mlgate verify` and `mlgate.load_model` check the registry's current files against a
complete passing scan, and the loader loads exactly the copy it checked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import skops.io
from sklearn.dummy import DummyClassifier

from checks.load_guard import UntrustedModelError
from tests.conftest import BUNDLED
from tests.test_cli import mlgate


def _registry_file(env, version: str, name: str) -> Path:
    model_id = env.client.get_model_version("demo", version).source.removeprefix("models:/")
    [model_dir] = [p for p in Path(env.settings.artifact_root).rglob(model_id) if p.is_dir()]
    return next(model_dir.rglob(name))


def test_verify_exits_0_for_a_passed_version_1_after_its_files_change_and_2_when_unknown(env) -> None:
    assert env.retrain().success and env.scan("demo", 1).success
    ok = mlgate("verify", "models:/demo/1", "--format", "json", home=env.home)
    assert ok.returncode == 0, ok.stderr
    assert '"verdict":"passed"' in ok.stdout.replace(" ", "")
    requirements = _registry_file(env, "1", "requirements.txt")
    requirements.write_text(requirements.read_text() + "evil-package==1.0\n")
    changed = mlgate("verify", "models:/demo/1", home=env.home)
    assert changed.returncode == 1
    assert "no scan of this version with this artifact digest" in changed.stdout
    unknown = mlgate("verify", "models:/demo/7", home=env.home)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "models:/demo/7: not found" in unknown.stderr


def test_verify_exits_1_for_an_unscanned_version(env) -> None:
    assert env.retrain().success
    result = mlgate("verify", "models:/demo/1", home=env.home)
    assert result.returncode == 1 and "no scan of this version" in result.stdout


def test_load_model_loads_the_copy_it_verified_and_refuses_changed_registry_files(env, monkeypatch) -> None:
    import mlgate as facade
    import pipelines.verification as verification

    assert env.retrain().success and env.scan("demo", 1).success
    model_file = _registry_file(env, "1", "model.skops")
    df = pd.read_csv(BUNDLED)
    impostor = DummyClassifier(strategy="constant", constant="benign").fit(
        df.drop(columns="diagnosis"), df.diagnosis
    )
    real_verify = verification.fetch_and_verify

    def swap_after_verifying(*args, **kwargs):
        checked = real_verify(*args, **kwargs)
        model_file.write_bytes(skops.io.dumps(impostor))  # the registry changes after the check
        return checked

    monkeypatch.setattr(verification, "fetch_and_verify", swap_after_verifying)
    loaded = facade.load_model("models:/demo/1")
    assert type(loaded).__name__ != "DummyClassifier", "the verified copy was loaded, not the swapped file"
    assert hasattr(loaded, "predict_proba")
    monkeypatch.setattr(verification, "fetch_and_verify", real_verify)
    with pytest.raises(UntrustedModelError, match="no scan of this version with this artifact digest"):
        facade.load_model("models:/demo/1")
