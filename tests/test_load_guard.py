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


def test_guard_refuses_a_version_that_was_never_scanned(env) -> None:
    assert env.retrain().success
    import mlgate

    with pytest.raises(UntrustedModelError, match="no scan of this version"):
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


def malicious_skops(base: bytes, code: str) -> bytes:
    """A skops archive whose schema makes skops call a NumPy helper that executes `code`."""
    import io
    import json
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(base))
    schema = json.loads(source.read("schema.json"))

    def text(value: str) -> dict:
        return {
            "__class__": "str",
            "__module__": "builtins",
            "__loader__": "JsonNode",
            "content": json.dumps(value),
            "is_json": True,
            "__id__": 9_000_001,
        }

    empty = {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": {},
        "key_types": {
            "__class__": "list",
            "__module__": "builtins",
            "__loader__": "ListNode",
            "content": [],
            "__id__": 9_000_002,
        },
        "__id__": 9_000_003,
    }
    attrs = schema["content"]
    attrs["content"]["payload"] = {
        "__class__": "runstring",
        "__module__": "numpy.testing._private.utils",
        "__loader__": "ConstructorFromReduceNode",
        "__id__": 9_000_004,
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [text(code), empty],
            "__id__": 9_000_005,
        },
    }
    attrs["key_types"]["content"].append(
        {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode", "__id__": 9_000_006}
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.namelist():
            data = json.dumps(schema) if item == "schema.json" else source.read(item)
            target.writestr(item, data)
    return out.getvalue()


def test_skops_payload_is_caught_by_the_static_scan_and_never_runs(env, tmp_path) -> None:
    import skops.io

    df = pd.read_csv(BUNDLED)
    features = df.drop(columns=["diagnosis"])
    model = LogisticRegression(max_iter=3000).fit(features, df["diagnosis"])
    canary = tmp_path / "canary.txt"
    payload = malicious_skops(skops.io.dumps(model), f"open({str(canary)!r}, 'w').write('ran')")
    skops.io.loads(payload, trusted=skops.io.get_untrusted_types(data=payload))
    assert canary.exists(), "the payload is live: trusting what the file asks for runs it"
    canary.unlink()

    version = register_external(env, model, features)
    source = env.client.get_model_version("demo", version).source.removeprefix("models:/")
    [artifact] = [p for p in Path(env.settings.artifact_root).rglob("model.skops") if source in str(p)]
    artifact.write_bytes(payload)  # swapped in the artifact store before anyone scanned it
    assert not env.scan("demo", version).success
    assert not canary.exists(), "the artifact was deserialised"
    stored = env.store.checks_of(env.store.latest_scan("model_version", model_name="demo")["id"])
    [finding] = [
        f
        for f in stored["artifact_safety"].findings
        if f.evidence.get("global") == "numpy.testing._private.utils.runstring"
    ]
    assert finding.severity.label == "critical" and finding.evidence["format"] == "zip>skops"
    with pytest.raises(UntrustedModelError):
        load_verified_model(env.store, _snapshot(env, version))
    assert not canary.exists()


def test_a_clean_cloudpickle_model_passes_the_scan_and_loads_through_the_allowlist(env) -> None:
    df = pd.read_csv(BUNDLED)
    features = df.drop(columns=["diagnosis"])
    model = LogisticRegression(max_iter=3000).fit(features, df["diagnosis"])
    version = register_external(env, model, features, serialization="cloudpickle")
    assert env.scan("demo", version).success
    stored = env.store.checks_of(env.store.latest_scan("model_version", model_name="demo")["id"])
    assert stored["artifact_safety"].status == "warned", "the pickle format itself is a medium finding"
    assert stored["performance"].status != "error", "the guard loaded it for evaluation"
    loaded = load_verified_model(env.store, _snapshot(env, version))
    assert (loaded.predict(features.head(5)) == model.predict(features.head(5))).all()


def test_the_guard_unpickler_refuses_names_outside_the_allowlist(tmp_path) -> None:
    from checks.load_guard import _load_pickle

    canary = tmp_path / "canary.txt"
    snapshot = type("S", (), {"name": "m", "version": "1"})()
    with pytest.raises(UntrustedModelError, match="not on the trust list"):
        _load_pickle(snapshot, pickle.dumps(Canary(str(canary))), frozenset())
    assert not canary.exists()
