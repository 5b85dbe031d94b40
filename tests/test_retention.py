"""`mlgate gc` drops old, unreferenced cache entries and keeps what is deployed or has open findings."""

from __future__ import annotations

import os
import time

import pandas as pd
from sklearn.dummy import DummyClassifier

from tests.conftest import BUNDLED, register_external
from tests.test_cli import mlgate


def _age(path, days: int) -> None:
    old = time.time() - days * 86_400
    os.utime(path, (old, old))


def test_gc_keeps_deployed_and_open_finding_entries_and_drops_old_orphans(env) -> None:
    df = pd.read_csv(BUNDLED)
    features = df.drop(columns=["diagnosis"])
    assert env.retrain().success and env.scan("demo", 1).success  # v1 holds the champion alias
    digest = env.version_tags("demo", 1)["mlgate.dataset_digest"]
    weak = DummyClassifier(strategy="constant", constant="benign").fit(features, df["diagnosis"])
    blocked = register_external(env, weak, features, tags={"mlgate.dataset_digest": digest, "owner": "x"})
    assert not env.scan("demo", blocked).success  # an open, blocking finding on its artifact
    artifacts, datasets = env.home / "cache" / "artifacts", env.home / "datasets"
    orphan_tree, orphan_data = artifacts / ("a" * 64), datasets / ("b" * 64)
    for orphan in (orphan_tree, orphan_data):
        orphan.mkdir(parents=True)
        (orphan / "data.bin").write_bytes(b"x" * 1000)
    young = artifacts / ("c" * 64)
    young.mkdir()
    for entry in [*artifacts.iterdir(), *datasets.iterdir()]:
        _age(entry, 400)
    kept_before = sorted(p.name for p in [*artifacts.iterdir(), *datasets.iterdir()])
    os.utime(young, None)  # just written

    dry = mlgate("gc", "--dry-run", home=env.home)
    assert dry.returncode == 0, dry.stderr
    assert f"would delete {orphan_tree}" in dry.stdout and f"would delete {orphan_data}" in dry.stdout
    assert orphan_tree.exists(), "a dry run deletes nothing"

    done = mlgate("gc", "--verbose", home=env.home)
    assert done.returncode == 0, done.stderr
    assert not orphan_tree.exists() and not orphan_data.exists() and young.exists()
    remaining = sorted(p.name for p in [*artifacts.iterdir(), *datasets.iterdir()])
    assert set(remaining) == set(kept_before) - {orphan_tree.name, orphan_data.name}
    assert "holds @champion" in done.stdout and "open finding" in done.stdout
    assert env.scan("demo", 1, only=["deployment"]).success, "the deployed version still verifies"
